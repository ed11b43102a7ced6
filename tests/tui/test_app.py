"""PosSimApp driven headless with Pilot: keys reach the right device, world changes reach the right panel."""

from __future__ import annotations

import segno
from textual.geometry import Region
from textual.widget import Widget

from sim.devices.contactless_cards import TAP_KEYS
from sim.tui.widgets import CardSlotPanel, PinPadPanel, PrinterView, ScreenView, StatusPanel, qr_lines
from terminal.screens import Key, MenuItem, Screen, t
from tests.tui.conftest import FakeCard, fire_from_thread, until


def plain(widget: Widget) -> str:
    return str(widget.content)  # type: ignore[attr-defined]


def rendered(widget: Widget) -> str:
    """What the widget actually paints, cell by cell (not just what it was given)."""
    width, height = widget.outer_size
    return "\n".join(strip.text for strip in widget.render_lines(Region(0, 0, width, height)))


def test_digits_go_to_the_terminal_keypad(drive, world):
    async def script(app, pilot):
        await pilot.press(*"4071")
        await pilot.press("0", "9")

    drive(script)
    assert world.terminal.pressed == [Key.D4, Key.D0, Key.D7, Key.D1, Key.D0, Key.D9]
    assert world.pinpad.pressed == []


def test_enter_escape_backspace_and_function_keys_map_to_terminal_keys(drive, world):
    async def script(app, pilot):
        await pilot.press("enter", "escape", "backspace", "f1", "f2", "f3", "f4")

    drive(script)
    assert world.terminal.pressed == [Key.ENTER, Key.CANCEL, Key.CLEAR, Key.F1, Key.F2, Key.F3, Key.F4]


def test_keys_go_to_the_pin_pad_while_it_awaits_the_pin(drive, world):
    async def script(app, pilot):
        mode = app.query_one("#mode")
        assert "terminal" in plain(mode)
        world.pinpad.awaiting_pin = True
        world.pinpad.display = ("CNY 30.00", "****")
        fire_from_thread(world.pinpad.fire)
        panel = app.query_one(PinPadPanel)
        await until(pilot, lambda: "****" in plain(panel))
        assert "CNY 30.00" in plain(panel)
        assert "keys → PIN pad" in plain(mode) and mode.has_class("-pin")
        assert panel.has_class("-active")

        await pilot.press("1", "2", "backspace", "3", "enter", "escape", "f2")
        assert world.pinpad.pressed == ["1", "2", "CLEAR", "3", "ENTER", "CANCEL"]
        assert world.terminal.pressed == [Key.F2]  # function keys stay with the terminal

        world.pinpad.awaiting_pin = False
        fire_from_thread(world.pinpad.fire)
        await until(pilot, lambda: not mode.has_class("-pin"))
        await pilot.press("5")
        assert world.terminal.pressed == [Key.F2, Key.D5]
        assert "keys → terminal" in plain(mode)

    drive(script)


def test_routing_follows_the_pin_pad_even_before_its_listener_fires(drive, world):
    async def script(app, pilot):
        world.pinpad.awaiting_pin = True  # no listener fired yet: the key must still go to the PIN pad
        await pilot.press("7")
        assert world.pinpad.pressed == ["7"] and world.terminal.pressed == []
        assert app.query_one("#mode").has_class("-pin")

    drive(script)


def test_choose_insert_and_remove_a_test_card(drive, world):
    async def script(app, pilot):
        panel = app.query_one(CardSlotPanel)
        assert "▶ Visa approved" in plain(panel) and "Slot empty" in plain(panel)
        await pilot.press("right_square_bracket")
        assert "▶ UnionPay PIN" in plain(panel)
        await pilot.press("i")
        assert world.calls == [("insert", "up_pin")]
        world.reader.card_present = True
        fire_from_thread(world.reader.fire)
        await until(pilot, lambda: "Card in slot" in plain(panel))
        assert "已插卡 UnionPay PIN / 银联 密码" in plain(panel)

        await pilot.press("r")
        assert world.calls[-1] == ("remove",)
        world.reader.card_present = False
        fire_from_thread(world.reader.fire)
        await until(pilot, lambda: "Slot empty" in plain(panel))

        await pilot.press("left_square_bracket", "left_square_bracket")  # wraps round to the last card
        assert "▶ Mastercard decline" in plain(panel)
        await pilot.press("down", "down", "up")
        await pilot.press("i")
        assert world.calls[-1] == ("insert", "visa_ok")

    drive(script)


def test_u_pulls_and_plugs_the_reader_cable_and_shift_u_the_pin_pad(drive, world):
    async def script(app, pilot):
        await pilot.press("u")
        await until(pilot, lambda: any("pulled out" in rendered(t) for t in app.screen.query("Toast")))
        await pilot.press("u", "U")
        await until(pilot, lambda: any("plugged back" in rendered(t) for t in app.screen.query("Toast")))

    drive(script)
    assert world.calls == [("cable", "reader"), ("cable", "reader"), ("cable", "pinpad")]


def test_g_saves_the_receipt_as_png(drive, world):
    async def script(app, pilot):
        await pilot.press("g")
        await until(pilot, lambda: any("receipt-1.png" in rendered(t) for t in app.screen.query("Toast")))

    drive(script)
    assert world.calls == [("png",)]


def test_m_swipes_the_chosen_card(drive, world):
    async def script(app, pilot):
        await pilot.press("right_square_bracket", "m")
        await until(pilot, lambda: ("swipe", "up_pin") in world.calls)

    drive(script)


def test_y_picks_a_tap_card_t_taps_it_and_shift_y_takes_it_away(drive, world):
    async def script(app, pilot):
        await pilot.press("y", "t")
        await until(pilot, lambda: ("tap", TAP_KEYS[1]) in world.calls)
        await pilot.press("Y")
        await until(pilot, lambda: world.reader.taken_away == 1)

    drive(script)


def test_a_refused_insert_is_reported_and_the_ui_lives_on(drive, world):
    world.refuse_insert = True

    async def script(app, pilot):
        await pilot.press("i")
        await until(pilot, lambda: len(app.screen.query("Toast")) > 0)
        toast = app.screen.query_one("Toast")
        # Once laid out, the toast shows the reason.
        await until(pilot, lambda: "slot jammed" in rendered(toast))
        assert "Refused" in rendered(toast)
        await pilot.press("3")
        assert world.terminal.pressed == [Key.D3]

    drive(script)
    assert world.calls == []


def test_a_screen_pushed_from_another_thread_is_rendered(drive, world):
    screen = Screen(
        state="sim_entry",
        title=t("SIM number", "SIM 卡号"),
        lines=("ICCID or MSISDN",),
        entry="8986",
        menu=(MenuItem("1", t("Monthly", "月包")), MenuItem("2", t("Annual", "年包"), enabled=False)),
        error=t("Unknown SIM", "未知 SIM 卡"),
        hint="ENTER confirm · CANCEL back",
    )

    async def script(app, pilot):
        view = app.query_one(ScreenView)
        assert "Home / 主页" in plain(view)
        fire_from_thread(world.terminal.fire, screen)
        await until(pilot, lambda: view.screen_model == screen)
        await pilot.pause()
        text = plain(view)
        for expected in (
            "SIM number / SIM 卡号",
            "ICCID or MSISDN",
            "> 8986",
            "[1] Monthly / 月包",
            "[2] Annual / 年包",
            "! Unknown SIM / 未知 SIM 卡",
            "ENTER confirm · CANCEL back",
        ):
            assert expected in text
        assert "SIM number / SIM 卡号" in rendered(view) and "! Unknown SIM" in rendered(view)
        content = view.content
        error_styles = [str(s.style) for s in content.spans if "Unknown" in content.plain[s.start : s.end]]
        assert error_styles and "red" in error_styles[0]  # the error is drawn in red
        assert app.query_one("#screen-box").border_subtitle == "sim_entry"

    drive(script)


def test_busy_screen_shows_an_animated_spinner(drive, world):
    async def script(app, pilot):
        view = app.query_one(ScreenView)
        fire_from_thread(world.terminal.fire, Screen(state="lookup", title="Looking up", busy=True))
        await until(pilot, lambda: "Please wait" in plain(view))
        first = plain(view)
        await until(pilot, lambda: plain(view) != first)  # the spinner moved on

    drive(script)


def test_a_printed_receipt_appears_in_the_printer_panel(drive, world):
    async def script(app, pilot):
        printer = app.query_one(PrinterView)
        assert "No receipt yet" in plain(printer)
        world.printer.receipts.append(
            ["IoT-SIM TOP-UP / 物联网卡充值", "AMOUNT ¥30.00", "CARD 622202******1234"]
        )
        fire_from_thread(world.printer.fire)
        await until(pilot, lambda: "AMOUNT ¥30.00" in plain(printer))
        await pilot.pause()
        assert "CARD 622202******1234" in rendered(printer)
        world.printer.receipts.append(["VOID / 撤销", "AMOUNT ¥50.00"])
        fire_from_thread(world.printer.fire, world.printer.receipts[-1])  # sim.devices.printer passes the lines
        await until(pilot, lambda: "VOID / 撤销" in plain(printer))
        assert "¥30.00" not in plain(printer) and "receipt 2 of 2" in plain(printer)

    drive(script)


def test_status_lines_are_shown_and_refreshed(drive, world):
    async def script(app, pilot):
        status = app.query_one(StatusPanel)
        assert "host ledger: 0" in plain(status)
        world.status = ["host ledger: 1", "carrier top-ups: 1"]
        fire_from_thread(world.printer.fire)
        await until(pilot, lambda: "carrier top-ups: 1" in plain(status))

    drive(script)


def test_a_qr_screen_renders_the_payload_as_half_blocks(drive, world):
    payload = "weixin://wxpay/bizpayurl?pr=ABC123"

    async def script(app, pilot):
        view = app.query_one(ScreenView)
        fire_from_thread(world.terminal.fire, Screen(state="wallet_qr", title="Scan to pay", qr=payload))
        await until(pilot, lambda: view.screen_model is not None and view.screen_model.state == "wallet_qr")
        text = plain(view)
        for line in qr_lines(payload):
            assert line in text

    drive(script)


def test_qr_lines_decode_back_to_the_segno_matrix():
    payload = "https://pay.example/o/20240101-000042"
    lines = qr_lines(payload, border=2)
    expected = [[bool(m) for m in row] for row in segno.make_qr(payload).matrix_iter(border=2)]
    top = {"█": True, "▀": True, "▄": False, " ": False}
    bottom = {"█": True, "▀": False, "▄": True, " ": False}
    decoded = []
    for line in lines:
        decoded.append([top[c] for c in line])
        decoded.append([bottom[c] for c in line])
    assert decoded[: len(expected)] == expected
    assert all(not any(row) for row in decoded[len(expected) :])  # an odd last row is padded light
    assert len(lines) == (len(expected) + 1) // 2


def test_clicking_a_keycap_presses_the_terminal_key(drive, world):
    async def script(app, pilot):
        await pilot.click("#key-7")
        await pilot.click("#key-ENTER")

    drive(script)
    assert world.terminal.pressed == [Key.D7, Key.ENTER]


def test_q_and_ctrl_c_quit(drive, world):
    codes = []

    for key in ("q", "ctrl+c"):

        async def script(app, pilot, key=key):
            assert app.return_code is None
            await pilot.press(key)
            await until(pilot, lambda: app.return_code is not None)
            codes.append(app.return_code)

        drive(script)
    assert codes == [0, 0]
    assert world.terminal.pressed == []


def test_shift_p_toggles_paper_out_for_diagnostics(drive, world):
    async def script(app, pilot):
        await pilot.press("P", "P")
        await until(pilot, lambda: len([c for c in world.calls if c[0] == "fault"]) == 2)

    drive(script)
    assert [c for c in world.calls if c[0] == "fault"] == [("fault", "printer_paper_out")] * 2
    assert world.terminal.pressed == []  # fault keys never reach the keypad


def test_shift_t_and_shift_m_toggle_the_acquirer_faults(drive, world):
    async def script(app, pilot):
        await pilot.press("T", "M")
        await until(pilot, lambda: len([c for c in world.calls if c[0] == "fault"]) == 2)

    drive(script)
    assert [c for c in world.calls if c[0] == "fault"] == [("fault", "acquirer_tls_expired"),
                                                            ("fault", "acquirer_bad_mac")]
    assert world.terminal.pressed == []


def test_shift_a_toggles_the_acquirers_partial_approvals(drive, world):
    async def script(app, pilot):
        await pilot.press("A")
        await until(pilot, lambda: any(c[0] == "fault" for c in world.calls))

    drive(script)
    assert [c for c in world.calls if c[0] == "fault"] == [("fault", "acquirer_partial")]
    assert world.terminal.pressed == []


def test_shift_k_toggles_a_forged_a0_over_the_next_approval(drive, world):
    async def script(app, pilot):
        await pilot.press("K")
        await until(pilot, lambda: any(c[0] == "fault" for c in world.calls))

    drive(script)
    assert [c for c in world.calls if c[0] == "fault"] == [("fault", "acquirer_forged_a0")]
    assert world.terminal.pressed == []


def test_the_selected_card_stays_visible_in_a_long_catalogue(drive, world):
    """Issue 14 item 8: the simulator's catalogue is longer than the card panel; the chosen card is always shown."""
    world.cards.update({f"extra{i:02d}": FakeCard(f"Extra card {i:02d}") for i in range(20)})

    async def script(app, pilot):
        panel = app.query_one(CardSlotPanel)
        app._refresh_cards()
        await pilot.pause()
        assert "▶ Visa approved" in plain(panel) and "↓ 16 more" in plain(panel) and "Extra card 19" not in plain(panel)
        await pilot.press(*["right_square_bracket"] * 12)  # the 13th card: Extra card 09
        await until(pilot, lambda: "▶ Extra card 09" in plain(panel))
        assert "↑ 9 more" in plain(panel) and "↓ 7 more" in plain(panel) and "Visa approved" not in plain(panel)
        await pilot.press("left_square_bracket", "left_square_bracket")
        await until(pilot, lambda: "▶ Extra card 07" in plain(panel))
        await pilot.press(*["left_square_bracket"] * 11)  # wraps round to the last card
        await until(pilot, lambda: "▶ Extra card 19" in plain(panel))
        assert "↓" not in plain(panel) and "↑ 16 more" in plain(panel)

    drive(script)
