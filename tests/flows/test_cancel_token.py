"""``CancelToken.on_cancel`` (issue 17 item 3): a blocking port call is woken by the cancel instead of looking at
the flag every 50 ms. The waker runs once, on the cancelling thread; one taken back is never called."""

from __future__ import annotations

import queue
import threading

from flows.ports import CancelToken


def test_a_waker_runs_once_when_the_token_is_cancelled() -> None:
    token, calls = CancelToken(), []
    token.on_cancel(lambda: calls.append("woken"))
    assert calls == []
    token.cancel()
    token.cancel()  # a second CANCEL key: no second wake
    assert calls == ["woken"] and token.cancelled


def test_a_token_already_cancelled_wakes_at_once() -> None:
    token, calls = CancelToken(), []
    token.cancel()
    token.on_cancel(lambda: calls.append("woken"))()
    assert calls == ["woken"]


def test_a_waker_taken_back_is_not_called_and_others_still_are() -> None:
    token, calls = CancelToken(), []
    forget = token.on_cancel(lambda: calls.append("first"))
    token.on_cancel(lambda: calls.append("second"))
    forget()
    forget()  # twice: harmless
    token.cancel()
    assert calls == ["second"]


def test_a_waiter_blocked_without_a_timeout_is_woken_from_another_thread() -> None:
    token, notes = CancelToken(), queue.SimpleQueue[str]()
    token.on_cancel(lambda: notes.put("cancelled"))
    threading.Timer(0.05, token.cancel).start()
    assert notes.get(timeout=10) == "cancelled"  # 10 s: a missing wake fails the test, never a timing target
