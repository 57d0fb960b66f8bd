"""Run one call into a user's layer code so that nothing it does can end or disturb the check.

A ``Guard`` turns everything a call can do besides returning into an ``Outcome``: an exception, a
``sys.exit()``, a ``KeyboardInterrupt`` raised by the code itself, or a call that never returns (a time
limit per call). A real Ctrl-C is told apart from a raised ``KeyboardInterrupt`` and always propagates, as
``Interrupted``, so the CLI can stop with exit status 130. ``timed_out`` keeps the first call that timed out,
so that a caller can stop calling a layer that hangs. Each call also runs with the caller's NumPy error state
and warning filters saved and restored, under the filters the layer's own module installed (``filters``),
and the warnings it raises are counted, never printed::

    with Guard(timeout=60) as guard:
        outcome = guard.call("forward", lambda: layer.forward(x))
    if not outcome.ok:
        print(outcome.kind, outcome.message)
    print(*guard.notes(), sep="\\n")

Limits: in the main thread (on POSIX) the time limit uses ``SIGALRM``, which also interrupts ``time.sleep``;
elsewhere a watchdog thread raises into the calling thread, which only takes effect when the call next runs
Python bytecode, so a call blocked inside C code (a sleep, one long NumPy operation) is stopped when that
returns. Neither can stop code that catches ``BaseException`` and carries on forever, but such a call is
still reported as timed out as soon as it returns.
"""

from __future__ import annotations

import contextlib
import ctypes
import re
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import Any
from warnings import WarningMessage

import numpy as np

from backprop.verify.vocabulary import Kind

__all__ = ["Filter", "Guard", "Interrupted", "Outcome", "WarningSummary", "is_real_interrupt"]

Filter = tuple[Any, ...]
"""One entry of ``warnings.filters``: (action, message regex, category, module regex, line number)."""

# After the deadline the timeout is raised again at this interval, so that a call which catches it once
# (``except BaseException``) and carries on is interrupted again.
_REPEAT = 0.1
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_NUMPY_2 = int(np.__version__.split(".")[0]) >= 2


class Interrupted(KeyboardInterrupt):
    """A real Ctrl-C: SIGINT delivered to the process while a ``Guard`` watched for it."""


class _Timeout(BaseException):
    """Raised into a call that overran its time limit. A ``BaseException``, so ``except Exception`` in the
    user's code cannot swallow it."""


def is_real_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is a Ctrl-C the user pressed, rather than a ``KeyboardInterrupt`` raised by code.

    Only interrupts seen while a ``Guard`` is entered (in the main thread) are marked; a ``KeyboardInterrupt``
    raised by guarded user code never leaves ``Guard.call``.
    """
    return isinstance(exc, Interrupted)


@dataclass(frozen=True)
class Outcome:
    """What one guarded call did: its return value, or the kind of failure and a message for the report."""

    value: Any
    kind: Kind | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.kind is None


@dataclass(frozen=True)
class WarningSummary:
    """One kind of warning the user's code raised: how often, and in which call first."""

    category: str
    message: str  # the text of the first occurrence
    count: int
    first_call: str


@dataclass
class _Deadline:
    armed: bool = False  # the call is running: the alarm may interrupt it
    fired: bool = False  # the deadline passed while the call ran


def _label(what: str) -> str:
    """``forward`` -> ``forward()``, for messages."""
    return what if what.endswith(")") else f"{what}()"


def _install(filters: Sequence[Filter]) -> None:
    """Put ``filters`` (entries of ``warnings.filters``) first, in their order, through the public API."""
    for action, message, category, module, lineno in reversed(filters):
        warnings.filterwarnings(
            action,
            getattr(message, "pattern", message or ""),
            category,
            getattr(module, "pattern", module or ""),
            lineno,
        )


def _numpy_state() -> contextlib.AbstractContextManager[Any]:
    """A context that restores NumPy's whole error state (the ``seterr`` actions and ``seterrcall``) on exit."""
    if _NUMPY_2:
        return np.errstate()  # one context variable, reset on exit: cheaper than reading it out and back
    return _numpy_1_state()


@contextlib.contextmanager
def _numpy_1_state() -> Iterator[None]:
    saved_err, saved_call = np.geterr(), np.geterrcall()
    try:
        yield
    finally:
        np.seterr(**saved_err)
        np.seterrcall(saved_call)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _async_raise(thread_id: int, exc: type[BaseException]) -> None:
    """Raise ``exc`` in another thread when it next runs bytecode."""
    # Never withdrawn with NULL: CPython 3.11 then still signals a pending exception to the whole
    # interpreter, a flag that only a raised one clears, so every later eval-breaker check fires, and a
    # function entered under sys.settrace re-checks forever (the culprit search hung so in CI).
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc))


def _delivery_point() -> None:
    """A call: entering it runs the eval-breaker check, which raises a pending asynchronous exception."""


class Guard:
    """Runs the calls of one layer run; enter it (``with Guard(...) as guard``) to tell Ctrl-C apart.

    ``timeout`` is the limit in seconds for each call, or ``None`` for none; ``filters`` are warning filters
    (entries of ``warnings.filters``) that the layer's own module installed, which take precedence inside
    every call as they would in the layer's own process. Entered in the main thread, it
    installs a SIGINT handler (restoring the previous one on exit) that marks real interrupts; without it, a
    ``KeyboardInterrupt`` in the main thread cannot be told apart and is let through, so that a Ctrl-C is
    never mistaken for the layer's own doing. Entered with a time limit, it also installs its SIGALRM
    handler until exit (unless the caller's own alarm is pending), so that a call only arms the timer.
    Not thread-safe: one guard per thread.
    """

    def __init__(self, timeout: float | None = None, filters: Sequence[Filter] = ()) -> None:
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
        self.timeout = timeout
        self.filters = tuple(filters)
        self.timed_out: tuple[str, Outcome] | None = None
        """The first call that did not return in time: its name and outcome."""
        self._summaries: dict[tuple[str, str], WarningSummary] = {}
        self._watching = False
        self._previous_sigint: Any = None
        self._sigint_seen = False
        self._in_call = False
        self._deadline = _Deadline()
        self._alarm_installed = False
        self._previous_alarm: Any = None

    # -- Ctrl-C -----------------------------------------------------------------------------------------

    def __enter__(self) -> Guard:
        # Only the default handler means "Ctrl-C raises KeyboardInterrupt"; a caller who ignores SIGINT or
        # handles it otherwise keeps that arrangement.
        if _in_main_thread() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous_sigint = signal.signal(signal.SIGINT, self._on_sigint)
            self._watching = True
        if not self._alarm_installed:  # entered again inside itself: the outer entry's handler stays
            self._alarm_installed = self._install_alarm()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._alarm_installed:
            signal.signal(signal.SIGALRM, self._previous_alarm)
            self._alarm_installed = False
        if self._watching:
            signal.signal(signal.SIGINT, self._previous_sigint)
            self._watching = False
        if not isinstance(exc, KeyboardInterrupt):
            self._deliver()  # a Ctrl-C after the last call wins over whatever else is going on
        self._sigint_seen = False

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self._sigint_seen = True
        if self._in_call:
            raise Interrupted()  # stops the layer's code, however long it would run
        # Between calls the oracle's own code runs (Hypothesis, JAX): an exception raised at an arbitrary
        # point there could break its state or be swallowed (Python ignores one raised in a garbage-
        # collection callback). The next call, or leaving the guard, raises it instead.

    def _deliver(self, raised: Interrupted | None = None) -> None:
        """Raise a Ctrl-C seen since the last delivery (the layer's own ``Interrupted`` if it let it out)."""
        if self._sigint_seen:
            self._sigint_seen = False
            raise raised or Interrupted()

    # -- one call ---------------------------------------------------------------------------------------

    def call(self, what: str, fn: Callable[[], Any]) -> Outcome:
        """Run ``fn()``; ``what`` names the call in messages ("forward" reads "forward()").

        Raises ``Interrupted`` on a real Ctrl-C; every other way the call can end is an ``Outcome``.
        """
        self._deliver()  # a Ctrl-C that came between calls
        # catch_warnings restores the filters, so a layer's simplefilter() stays inside the call; "always"
        # records every occurrence, which the summary counts, except where the layer's own module said
        # otherwise ("error" makes its warnings raise, as they do in its own process).
        with _numpy_state(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _install(self.filters)
            self._in_call = True
            try:
                value, error, timed_out = self._attempt(fn)
            finally:
                self._in_call = False
        # A real Ctrl-C wins over whatever the code made of it (caught it, exited, timed out).
        self._deliver(error if isinstance(error, Interrupted) else None)
        self._summarise(caught, what)
        outcome = self._outcome(what, value, error, timed_out)
        if timed_out and self.timed_out is None:
            self.timed_out = (what, outcome)
        return outcome

    def _outcome(self, what: str, value: Any, error: BaseException | None, timed_out: bool) -> Outcome:
        if timed_out:
            return Outcome(None, Kind.TIMEOUT, f"{_label(what)} did not return within {self.timeout:g} s")
        if error is None:
            return Outcome(value)
        label = _label(what)
        if isinstance(error, Exception):
            return Outcome(None, Kind.EXCEPTION, f"raised {type(error).__name__}: {error}")
        ending = "a layer must return, not end the program"
        if isinstance(error, SystemExit):
            code = "" if error.code is None else repr(error.code)
            return Outcome(None, Kind.EXIT, f"called sys.exit({code}) inside {label}: {ending}")
        if isinstance(error, KeyboardInterrupt):
            if not self._watching and _in_main_thread():
                raise error  # cannot tell it from a Ctrl-C, so it must not be swallowed
            return Outcome(None, Kind.EXIT, f"raised KeyboardInterrupt inside {label}: {ending}")
        # Another BaseException (GeneratorExit, a user's own subclass): an exception the layer raised.
        return Outcome(None, Kind.EXCEPTION, f"raised {type(error).__name__}: {error}")

    def _attempt(self, fn: Callable[[], Any]) -> tuple[Any, BaseException | None, bool]:
        """``(value, error, timed_out)`` of one call under the time limit."""
        if self.timeout is None:
            try:
                return fn(), None, False
            except BaseException as exc:  # classified by the caller, Ctrl-C included
                return None, exc, False
        if self._alarm_installed and _in_main_thread():
            return self._attempt_alarm(fn, self.timeout)
        # signal.getsignal() is None for a handler installed outside Python, which could not be restored.
        alarm = hasattr(signal, "setitimer") and _in_main_thread()
        if alarm and signal.getsignal(signal.SIGALRM) is not None:
            return self._attempt_alarm(fn, self.timeout)
        return self._attempt_watchdog(fn, self.timeout)

    # -- the time limit by SIGALRM ------------------------------------------------------------------------

    def _install_alarm(self) -> bool:
        """Install the alarm handler for the whole entered guard, so that a call only arms and disarms the
        timer; whether it did. Not while the caller's own alarm is pending: between calls that one must
        reach the caller's handler, so then each call swaps the handlers in and out."""
        if self.timeout is None or not hasattr(signal, "setitimer") or not _in_main_thread():
            return False
        # signal.getsignal() is None for a handler installed outside Python, which could not be restored.
        if signal.getsignal(signal.SIGALRM) is None or signal.getitimer(signal.ITIMER_REAL)[0] > 0:
            return False
        self._previous_alarm = signal.signal(signal.SIGALRM, self._on_alarm)
        return True

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        # Only while a call runs: an alarm that arrives once the call is over must do nothing.
        if self._deadline.armed:
            self._deadline.fired = True
            raise _Timeout()

    def _attempt_alarm(self, fn: Callable[[], Any], timeout: float) -> tuple[Any, BaseException | None, bool]:
        state = self._deadline = _Deadline()
        swap = not self._alarm_installed
        previous_handler = signal.signal(signal.SIGALRM, self._on_alarm) if swap else None
        started = time.monotonic()
        # Armed before the try below, but harmless there: the handler is not armed yet, and the alarm
        # repeats, so one that fires this early is caught by the next.
        previous_delay, previous_interval = signal.setitimer(signal.ITIMER_REAL, timeout, _REPEAT)
        result: tuple[Any, BaseException | None]
        try:
            try:
                state.armed = True
                value = fn()
            finally:
                # The first statement after fn, reached without a check for signals in between, so the
                # timeout is raised inside the try or not at all.
                state.armed = False
            result = value, None
        except BaseException as exc:  # _Timeout and everything fn raised
            result = None, exc
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            if swap:
                signal.signal(signal.SIGALRM, previous_handler)
            if previous_delay > 0:
                # The caller's own alarm, delayed by at most this call; one already due fires at once.
                remaining = previous_delay - (time.monotonic() - started)
                signal.setitimer(signal.ITIMER_REAL, max(remaining, 1e-6), previous_interval)
        return result[0], result[1], state.fired

    @staticmethod
    def _attempt_watchdog(fn: Callable[[], Any], timeout: float) -> tuple[Any, BaseException | None, bool]:
        state = _Deadline()
        target = threading.get_ident()
        stop = threading.Event()

        def watch() -> None:
            wait = timeout
            while not stop.wait(wait):
                if state.armed:
                    state.fired = True
                    _async_raise(target, _Timeout)
                wait = _REPEAT

        watchdog = threading.Thread(target=watch, name="backprop-guard-watchdog", daemon=True)
        watchdog.start()
        result: tuple[Any, BaseException | None]
        try:
            try:
                state.armed = True
                value = fn()
            finally:
                state.armed = False
            result = value, None
        except BaseException as exc:  # _Timeout and everything fn raised
            result = None, exc
        # The watchdog may have queued a timeout just as fn returned: once it has stopped, one call lets
        # any still pending surface here, where it is absorbed, and not later in the caller's code.
        while True:
            try:
                stop.set()
                watchdog.join()
                if state.fired:
                    _delivery_point()
                break
            except _Timeout:
                continue
        return result[0], result[1], state.fired

    # -- warnings ---------------------------------------------------------------------------------------

    def _summarise(self, caught: list[WarningMessage], what: str) -> None:
        for w in caught:
            category = w.category.__name__
            text = str(w.message)
            # Numbers normalised, so "overflow at index 3" and "... index 7" count as one warning.
            key = (category, _NUMBER.sub("#", text))
            seen = self._summaries.get(key)
            if seen is None:
                self._summaries[key] = WarningSummary(category, text, 1, what)
            else:
                self._summaries[key] = WarningSummary(category, seen.message, seen.count + 1, seen.first_call)

    @property
    def warnings(self) -> list[WarningSummary]:
        """The warnings raised by all calls so far, in the order first seen."""
        return list(self._summaries.values())

    def notes(self) -> list[str]:
        """One line per warning, e.g. "RuntimeWarning: overflow encountered in exp (90 times, first in
        forward())"."""
        lines = []
        for w in self._summaries.values():
            where = f"once, in {_label(w.first_call)}"
            if w.count > 1:
                where = f"{w.count} times, first in {_label(w.first_call)}"
            lines.append(f"{w.category}: {w.message} ({where})")
        return lines
