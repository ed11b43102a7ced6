"""Storage and journal integrity texts: a damaged or rolled-back journal (out of service, technician recovery),
journal writes that fail mid-sale (disk full), quarantined rows, free space and the audit chain."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["TEXTS"]

TEXTS: Mapping[str, tuple[str, str]] = {
    # --- what the boot check found (terminal.journal_chain.DAMAGE_KINDS) ---
    "journal.damage.missing": ("The journal file is missing, but its high-water record says it held sales",
                               "流水库文件丢失，但高水位记录显示曾有交易"),
    "journal.damage.empty": ("The journal file is empty (0 bytes), but its high-water record says it held sales",
                             "流水库文件为空（0 字节），但高水位记录显示曾有交易"),
    "journal.damage.older": ("The journal lost its latest records (rolled back): the last sales may be missing",
                             "流水库丢失了最近的记录（已回退）：最近的交易可能缺失"),
    "journal.damage.broken": ("The journal is damaged: a record does not match its seal ({row})",
                              "流水库已损坏：记录与校验链不符（{row}）"),
    "journal.damage.unreadable": ("The journal cannot be read", "流水库无法读取"),
    "journal.damage.record": ("The journal's high-water record is missing or unreadable",
                              "流水库的高水位记录丢失或无法读取"),
    "journal.oos_stop": ("Sales are stopped. Counters continue safely; nothing was overwritten.",
                         "已停止收款。流水号等计数器安全延续，未覆盖任何数据。"),
    "journal.oos_kept": ("Kept for the technician: {file}", "已为技术员保留：{file}"),
    "journal.oos_call": ("Call a technician: F4 technician recovery", "请联系技术员：F4 技术员恢复"),
    "oos.hint_recovery": ("ENTER retry · F4 technician recovery", "确认 重试 · F4 技术员恢复"),
    "journal.tech_id": ("Technician ID, then ENTER", "技术员编号，按确认"),
    "journal.tech_pw": ("Technician password, then ENTER", "技术员密码，按确认"),
    "journal.tech_only": ("Technician login only — recovery refused", "仅限技术员登录，恢复被拒绝"),
    "journal.confirm": ("F1 accept the journal as it is now and resume sales · CANCEL back",
                        "F1 按当前流水库恢复营业 · 取消 返回"),
    "journal.recovered": ("Journal accepted by technician {user}; sales resume",
                          "技术员 {user} 已确认流水库，恢复营业"),
    # --- writes that fail (disk full, I/O error) ---
    "journal.write_failed": ("The journal could not be written (storage full or faulty): sales are stopped",
                             "流水库无法写入（存储已满或故障）：已停止收款"),
    "journal.write_action": ("If a card was charged it is reversed automatically once the journal can be written "
                             "again. Free storage space or call a technician.",
                             "如已扣款，流水库恢复写入后将自动冲正。请清理存储空间或联系技术员。"),
    "journal.resumed": ("The journal can be written again: sales resume", "流水库已恢复写入，恢复营业"),
    # what a failed write was, by SQLite's result code (terminal/storage_fault.py); SQLite's text only in the log
    "storage.full": ("storage full", "存储空间已满"),
    "storage.io": ("storage read/write error", "存储读写错误"),
    "storage.read_only": ("storage is read-only", "存储为只读"),
    "storage.corrupt": ("journal file damaged", "流水库文件损坏"),
    "storage.other": ("storage fault", "存储故障"),
    "result.no_outcome": ("The sale ended without a result ({error}). Check Open items before charging again.",
                          "交易未返回结果（{error}）。再次收款前请查看未结事项。"),
    "pay.disk_low": ("Only {mb} MB of storage left: no new sale until space is freed",
                     "存储空间仅剩 {mb} MB：清理空间前不能收款"),
    # --- rows that cannot be decoded ---
    "journal.rows_skipped": ("Skipped damaged journal row(s): {rows}", "已跳过损坏的流水记录：{rows}"),
    # --- diagnostics ---
    "dev.audit": ("Audit log", "审计日志"),
    "fault.chain": ("seal broken at {row}", "校验链在 {row} 处断开"),
    "fault.write_failed": ("writes fail: {error}", "写入失败：{error}"),
    "ok.disk": ("{mb} MB free", "剩余 {mb} MB"),
    "boot.selftest_error": ("Self-test could not finish ({error}) — call a technician",
                            "自检未能完成（{error}），请联系技术员"),
}
