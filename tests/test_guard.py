"""The guard around one call of a user's layer code: exits, Ctrl-C, time limits, global state, warnings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import numpy as np
import pytest

from backprop.verify.guard import Guard, Interrupted, Outcome, WarningSummary, is_real_interrupt
from backprop.verify.vocabulary import Kind

pytestmark = pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs SIGALRM (POSIX)")


@pytest.fixture(autouse=True)
def default_sigint() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt, as in a plain Python process, whatever the test runner set."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def busy_forever() -> NoReturn:
    n = 0
    while True:
        n += 1


def in_thread(fn: Callable[[], Any]) -> Any:
    """fn() run in a worker thread (where SIGALRM cannot be used), returning its result."""
    box: list[Any] = []
    worker = threading.Thread(target=lambda: box.append(fn()))
    worker.start()
    worker.join(10)
    assert box, "the worker thread did not finish"
    return box[0]


# -- returns and exceptions -----------------------------------------------------------------------------


def test_a_returning_call_gives_its_value() -> None:
    with Guard(timeout=5) as guard:
        outcome = guard.call("forward", lambda: 42)
    assert outcome == Outcome(42)
    assert outcome.ok


def test_an_exception_is_reported_with_its_type_and_message() -> None:
    def fn() -> None:
        raise ValueError("shapes do not match")

    with Guard() as guard:
        outcome = guard.call("backward", fn)
    assert not outcome.ok
    assert outcome.kind is Kind.EXCEPTION
    assert outcome.message == "raised ValueError: shapes do not match"


# -- exits ----------------------------------------------------------------------------------------------


def _exit_zero() -> None:
    sys.exit(0)


def _exit_builtin() -> None:
    exit()


def _raise_keyboard_interrupt() -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    ("fn", "words"),
    [
        (_exit_zero, "called sys.exit(0) inside forward()"),
        (_exit_builtin, "called sys.exit() inside forward()"),
        (_raise_keyboard_interrupt, "raised KeyboardInterrupt inside forward()"),
    ],
    ids=["sys.exit(0)", "exit()", "KeyboardInterrupt"],
)
def test_ending_the_program_from_the_layer_is_an_exit(fn: Callable[[], None], words: str) -> None:
    with Guard(timeout=5) as guard:
        try:
            outcome = guard.call("forward", fn)
        except KeyboardInterrupt:  # would otherwise end the test session rather than fail the test
            pytest.fail("the layer's own KeyboardInterrupt left the guard")
        after = guard.call("backward", lambda: "still running")
    assert outcome.kind is Kind.EXIT
    assert outcome.message == f"{words}: a layer must return, not end the program"
    assert after == Outcome("still running")


def test_a_raised_keyboard_interrupt_off_the_main_thread_is_an_exit_even_unentered() -> None:
    # SIGINT only ever reaches the main thread, so a KeyboardInterrupt in a worker is the code's own.
    outcome = in_thread(lambda: Guard().call("forward", _raise_keyboard_interrupt))
    assert outcome.kind is Kind.EXIT


def test_an_unentered_guard_in_the_main_thread_lets_keyboard_interrupt_through() -> None:
    # Without the SIGINT handler it cannot tell a Ctrl-C from a raised one, and must not swallow a Ctrl-C.
    with pytest.raises(KeyboardInterrupt):
        Guard().call("forward", _raise_keyboard_interrupt)


# -- a real Ctrl-C --------------------------------------------------------------------------------------


def _press_ctrl_c() -> None:
    signal.raise_signal(signal.SIGINT)


def _press_ctrl_c_and_swallow_it() -> str:
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)  # the handler runs here at the latest
    except BaseException:
        pass
    return "carried on"


def _press_ctrl_c_and_exit() -> None:
    try:
        signal.raise_signal(signal.SIGINT)
    except KeyboardInterrupt:
        sys.exit(0)


@pytest.mark.parametrize("fn", [_press_ctrl_c, _press_ctrl_c_and_swallow_it, _press_ctrl_c_and_exit])
@pytest.mark.parametrize("timeout", [None, 5.0])
def test_a_real_ctrl_c_propagates(fn: Callable[[], Any], timeout: float | None) -> None:
    with Guard(timeout=timeout) as guard, pytest.raises(KeyboardInterrupt) as raised:
        guard.call("forward", fn)
    assert is_real_interrupt(raised.value)
    assert isinstance(raised.value, Interrupted)


def test_a_ctrl_c_between_calls_stops_the_run_at_the_next_call_or_on_leaving() -> None:
    # Between two calls into the layer the oracle's own code runs: a Ctrl-C there is raised at the next
    # call or on leaving, not wherever it lands (Python ignores an exception raised in a
    # garbage-collection callback, and Hypothesis's state could be broken)
    with Guard() as guard, pytest.raises(Interrupted):
        _press_ctrl_c_and_swallow_it()  # outside any call, as the oracle's own code runs
        guard.call("forward", lambda: None)
    with pytest.raises(Interrupted), Guard():
        _press_ctrl_c_and_swallow_it()


def test_a_raised_keyboard_interrupt_is_not_a_real_one() -> None:
    assert not is_real_interrupt(KeyboardInterrupt())


def test_the_sigint_handler_is_installed_only_while_entered() -> None:
    with Guard() as guard:
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        guard.call("forward", lambda: None)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_sigint_stays_ignored() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with Guard() as guard:
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        guard.call("forward", lambda: None)
    assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN


# -- time limits ----------------------------------------------------------------------------------------


def _spin() -> None:
    while True:
        pass


def _sleep() -> None:
    time.sleep(5)


def _swallow_exceptions() -> str:
    # Gives up after 3 s, so that a timeout it swallows fails the test instead of hanging it.
    started = time.monotonic()
    while time.monotonic() - started < 3:
        try:  # noqa: SIM105 - the pattern a layer writes, spelled out
            busy_forever()
        except Exception:
            pass
    return "swallowed the timeout"


@pytest.mark.parametrize("fn", [_spin, busy_forever, _sleep, _swallow_exceptions])
def test_a_call_that_does_not_return_times_out(fn: Callable[[], Any]) -> None:
    started = time.monotonic()
    with Guard(timeout=0.5) as guard:
        outcome = guard.call("forward", fn)
    elapsed = time.monotonic() - started
    assert outcome.kind is Kind.TIMEOUT
    assert outcome.message == "forward() did not return within 0.5 s"
    assert 0.45 < elapsed < 1.0


def test_the_time_limit_is_per_call_and_disarmed_after_it() -> None:
    def nap(value: str) -> str:
        time.sleep(0.2)
        return value

    with Guard(timeout=0.3) as guard:
        first = guard.call("forward", lambda: nap("first"))
        second = guard.call("backward", lambda: nap("second"))
        time.sleep(0.4)  # no alarm is left to go off in the caller's own code
    assert (first, second) == (Outcome("first"), Outcome("second"))
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_a_time_limit_off_the_main_thread_uses_a_watchdog() -> None:
    def run() -> tuple[Outcome, float, Outcome]:
        guard = Guard(timeout=0.5)
        started = time.monotonic()
        timed_out = guard.call("forward", busy_forever)
        elapsed = time.monotonic() - started
        # Busy for a while afterwards: a late timeout from the watchdog would surface here.
        after = guard.call("backward", lambda: sum(range(2_000_000)))
        return timed_out, elapsed, after

    timed_out, elapsed, after = in_thread(run)
    assert timed_out.kind is Kind.TIMEOUT
    assert 0.45 < elapsed < 1.0
    assert after == Outcome(sum(range(2_000_000)))


_TRACED_AFTER_A_WATCHDOG_TIMEOUT = """
import sys, threading
from backprop.verify.guard import Guard

def work():
    Guard(timeout=0.2).call("forward", lambda: [None for _ in iter(int, 1)])
    sys.settrace(lambda frame, event, arg: None)  # as the culprit search's line tracer does
    (lambda: None)()
    sys.settrace(None)
    print("returned", flush=True)

thread = threading.Thread(target=work, daemon=True)
thread.start()
thread.join(20)
"""


def test_a_watchdog_timeout_leaves_no_pending_exception_behind() -> None:
    # Withdrawing a queued timeout with PyThreadState_SetAsyncExc(id, NULL) leaves CPython 3.11's
    # interpreter-wide "exception pending" flag set for good: a function then entered under a trace
    # function spins forever at its first instruction (the culprit search hung CI so, long after the
    # test whose watchdog fired). Run apart, so that a spinning thread cannot take the suite with it.
    done = subprocess.run(
        [sys.executable, "-c", _TRACED_AFTER_A_WATCHDOG_TIMEOUT], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "returned", done.stderr


def test_the_previous_alarm_handler_and_timer_are_restored() -> None:
    alarms: list[int] = []

    def mine(signum: int, frame: Any) -> None:
        alarms.append(signum)

    previous = signal.signal(signal.SIGALRM, mine)
    try:
        signal.setitimer(signal.ITIMER_REAL, 30)
        with Guard(timeout=0.3) as guard:
            guard.call("forward", lambda: None)
            guard.call("forward", busy_forever)
        assert signal.getsignal(signal.SIGALRM) is mine
        delay, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 28 < delay <= 30
        assert alarms == []
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_the_callers_alarm_handler_is_restored_after_a_timeout_with_no_alarm_pending() -> None:
    alarms: list[int] = []

    def mine(signum: int, frame: Any) -> None:
        alarms.append(signum)

    previous = signal.signal(signal.SIGALRM, mine)
    try:
        with Guard(timeout=0.3) as guard:
            before = guard.call("forward", lambda: "before")
            hung = guard.call("forward", busy_forever)
            after = guard.call("backward", lambda: "after")
        assert signal.getsignal(signal.SIGALRM) is mine
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
        time.sleep(0.3)  # a repeat of the guard's alarm would reach the caller's handler here
        assert (before, hung.kind, after) == (Outcome("before"), Kind.TIMEOUT, Outcome("after"))
        assert alarms == []
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_the_callers_alarm_due_between_calls_reaches_the_callers_handler() -> None:
    alarms: list[int] = []

    def mine(signum: int, frame: Any) -> None:
        alarms.append(signum)

    previous = signal.signal(signal.SIGALRM, mine)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with Guard(timeout=5) as guard:
            first = guard.call("forward", lambda: "first")
            time.sleep(0.4)  # the oracle's own code between two calls, when the caller's alarm is due
            assert alarms == [signal.SIGALRM]
            second = guard.call("backward", lambda: "second")
        assert (first, second) == (Outcome("first"), Outcome("second"))
        assert signal.getsignal(signal.SIGALRM) is mine
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_non_positive_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="timeout"):
        Guard(timeout=0)


# -- global state ---------------------------------------------------------------------------------------


def test_numpy_error_state_is_restored() -> None:
    before = np.geterr()

    def careless() -> None:
        np.seterr(all="ignore")
        raise RuntimeError("and then it failed")

    with Guard() as guard:
        guard.call("forward", lambda: np.seterr(all="raise"))
        guard.call("backward", careless)
    assert np.geterr() == before


def test_warning_filters_are_restored() -> None:
    before = list(warnings.filters)

    def careless() -> None:
        warnings.simplefilter("ignore")
        warnings.filterwarnings("error", category=UserWarning)

    with Guard() as guard:
        guard.call("forward", careless)
    assert warnings.filters == before


# -- warnings -------------------------------------------------------------------------------------------


def _overflow() -> None:
    for _ in range(90):
        np.exp(np.array([1000.0]))


def test_warnings_do_not_reach_the_caller() -> None:
    with warnings.catch_warnings(record=True) as leaked:
        warnings.simplefilter("always")
        with Guard() as guard:
            guard.call("forward", _overflow)
    assert leaked == []
    assert guard.warnings


@pytest.mark.parametrize("callers_filter", ["default", "ignore", "error"])
def test_repeated_warnings_are_counted_whatever_the_callers_filter(callers_filter: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter(callers_filter)  # type: ignore[arg-type]
        with Guard() as guard:
            outcome = guard.call("forward", _overflow)
    assert outcome.ok
    assert guard.warnings == [WarningSummary("RuntimeWarning", "overflow encountered in exp", 90, "forward")]
    assert guard.notes() == ["RuntimeWarning: overflow encountered in exp (90 times, first in forward())"]


def _filters(*installs: tuple[str, str, type[Warning]]) -> tuple[tuple[Any, ...], ...]:
    """The entries of ``warnings.filters`` that ``filterwarnings(action, message, category)`` installs."""
    with warnings.catch_warnings():
        for action, message, category in installs:
            warnings.filterwarnings(action, message, category)  # type: ignore[arg-type]
        return tuple(warnings.filters[: len(installs)])


def test_the_layers_own_filters_hold_inside_its_calls_whatever_the_callers() -> None:
    before = list(warnings.filters)
    own = _filters(("error", "", RuntimeWarning))
    with Guard(filters=own) as guard:
        outcome = guard.call("forward", _overflow)
    assert (outcome.kind, outcome.message) == (
        Kind.EXCEPTION,
        "raised RuntimeWarning: overflow encountered in exp",
    )
    assert guard.warnings == []  # raised, as in the layer's own process; not counted as a warning
    assert warnings.filters == before


def test_the_layers_own_filters_keep_their_order_message_and_category() -> None:
    # first the later filterwarnings call, as warnings.filters holds them: overflow ignored, others errors
    own = _filters(("error", "", UserWarning), ("ignore", "OVERFLOW", RuntimeWarning))
    with Guard(filters=own) as guard:
        quiet = guard.call("forward", _overflow)
        loud = guard.call("backward", lambda: warnings.warn("clipped", UserWarning, stacklevel=1))
        counted = guard.call(
            "backward", lambda: warnings.warn("deprecated", DeprecationWarning, stacklevel=1)
        )
    assert quiet.ok and counted.ok
    assert (loud.kind, loud.message) == (Kind.EXCEPTION, "raised UserWarning: clipped")
    assert guard.notes() == ["DeprecationWarning: deprecated (once, in backward())"]


def test_warnings_differing_only_in_numbers_are_one_entry_across_calls() -> None:
    with Guard() as guard:
        guard.call("forward", lambda: warnings.warn("clipped 3 values to 1e-7", UserWarning, stacklevel=1))
        guard.call("backward", lambda: warnings.warn("clipped 12 values to 1e-7", UserWarning, stacklevel=1))
        guard.call("backward", lambda: warnings.warn("something else", DeprecationWarning, stacklevel=1))
    assert guard.notes() == [
        "UserWarning: clipped 3 values to 1e-7 (2 times, first in forward())",
        "DeprecationWarning: something else (once, in backward())",
    ]
