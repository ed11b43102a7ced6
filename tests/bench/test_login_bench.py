"""The failed-login timing bench (``make bench``, cashier block) runs through the real user store, audit log and a
journal file, and reports each answer an attacker could time (measured there, never asserted here)."""

from sim.bench.cashier import _login_classes_ms


def test_the_failed_login_bench_times_every_answer() -> None:
    report = _login_classes_ms(runs=1)
    assert sorted(report) == ["locked", "unknown_id", "wrong_password"]
    assert all(isinstance(ms, float) and ms > 0 for ms in report.values())
