"""Run a function in a child process, so that nothing it does (``os._exit``, a segfault, being killed) can
end the caller: the caller gets the return value, or a ``ChildDied`` that says how the child ended.

``run_isolated(fn, *args, timeout=...)`` knows nothing about layers; the CLI runs a whole check in it for
``--isolate``.

- **Start method.** ``fork`` where the platform has it (Linux, macOS): the child is a copy of the caller, so
  ``fn`` may be a closure or a method of a class loaded from a user's file, and nothing needs to be
  importable. Elsewhere (Windows) it falls back to ``spawn``: then ``fn`` and ``args`` are pickled, so ``fn``
  must be a module-level function of an importable module. A class or function of ``__main__`` travels
  only when ``__main__`` is a file the child can run again (a script, ``python -m``); from a notebook cell,
  ``python -c`` or the prompt it cannot, and ``run_isolated`` raises ``pickle.PicklingError`` saying so
  before starting the child (as pickle does for a closure), instead of reporting the child's death.
  ``verify()`` itself never starts a process, so such a class is checked in the caller's process. Forking a process that runs threads (JAX starts
  some once it computes) is only safe if the child does not need them; JAX may warn about it.
- **Result.** Sent back pickled over a pipe. A result that cannot be pickled in the child or unpickled here
  gives a ``ChildDied`` saying so (the child ends normally; nothing hangs).
- **Exceptions.** An ``Exception`` raised by ``fn`` is raised again here, as if ``fn`` had been called
  directly, with the child's traceback added as a note; one that cannot be pickled is raised as
  ``ChildRaised`` carrying its type, message and traceback. ``SystemExit``, ``KeyboardInterrupt`` and other
  ``BaseException``\\ s raised in the child would end this process if raised again, so they give a
  ``ChildDied`` instead.
- **Time limit.** After ``timeout`` seconds the child is terminated (then killed) and a ``ChildDied`` says so.
- **Ctrl-C** reaches both processes; the caller's ``KeyboardInterrupt`` propagates and the child is stopped.
"""

from __future__ import annotations

import io
import multiprocessing
import pickle
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from types import FunctionType
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # ForkContext does not exist at run time on Windows
    from multiprocessing.context import ForkContext, SpawnContext

__all__ = ["ChildDied", "ChildRaised", "run_isolated"]

T = TypeVar("T")

_GRACE = 2.0  # seconds a terminated child gets before it is killed


@dataclass(frozen=True)
class ChildDied:
    """How the child ended without handing back a result: its exit code (negative when a signal ended it,
    ``None`` if unknown), the signal's name, and a sentence for the report."""

    exitcode: int | None
    signal_name: str | None
    message: str


class ChildRaised(Exception):
    """An exception raised in the child that could not be sent back as itself."""

    def __init__(self, type_name: str, text: str, child_traceback: str) -> None:
        super().__init__(f"{type_name}: {text}")
        self.type_name = type_name
        self.text = text
        self.child_traceback = child_traceback


def _context(fresh: bool = False) -> ForkContext | SpawnContext:
    if not fresh and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


class _MainFinder(pickle.Pickler):
    """A pickler that only notes the classes and functions of ``__main__`` that the pickle refers to."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(), protocol=pickle.HIGHEST_PROTOCOL)
        self.found: list[str] = []

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, type | FunctionType) and getattr(obj, "__module__", None) == "__main__":
            self.found.append(obj.__qualname__)
        return NotImplemented  # pickle as usual


def _main_without_file() -> bool:
    """Whether a spawned child cannot rebuild ``__main__`` (multiprocessing reruns its file or module)."""
    main = sys.modules.get("__main__")
    return getattr(main, "__spec__", None) is None and getattr(main, "__file__", None) is None


def _refuse_main(fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """Raise PicklingError, naming it, if ``fn`` or ``args`` refer to an object of a ``__main__`` that a
    fresh interpreter cannot import; left alone, the child would die unpickling it."""
    if not _main_without_file():
        return
    finder = _MainFinder()
    try:
        finder.dump((fn, args))
    except Exception:  # unpicklable for another reason: process.start() raises that error itself
        return
    if finder.found:
        raise pickle.PicklingError(
            f"{finder.found[0]} is defined in __main__ (a notebook cell, `python -c` or the prompt), which a "
            "fresh Python process cannot import; call it in this process, or move it into a module"
        )


def _child(send: Connection, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """The child's side: call fn, pickle what happened and send it back in one message."""
    try:
        payload: tuple[Any, ...] = ("ok", fn(*args))
    except BaseException as exc:  # everything is reported to the parent, SystemExit included
        payload = ("raised", exc, traceback.format_exc())
    try:
        data = pickle.dumps(payload)
        if payload[0] == "raised":
            # An exception whose __init__ takes other arguments than it stores pickles but fails to unpickle.
            pickle.loads(data)
    except BaseException as exc:  # pickling user objects can raise anything
        why = f"{type(exc).__name__}: {exc}"
        if payload[0] == "ok":
            data = pickle.dumps(("unpicklable", type(payload[1]).__name__, why))
        else:
            error = payload[1]
            data = pickle.dumps(("raised_text", type(error).__name__, _text(error), payload[2]))
    send.send_bytes(data)
    send.close()


def _text(obj: object) -> str:
    try:
        return str(obj)
    except Exception:  # a user's __str__ may itself fail
        return f"<{type(obj).__name__} whose str() failed>"


def _signal_name(exitcode: int | None) -> str | None:
    if exitcode is None or exitcode >= 0:
        return None
    try:
        return signal.Signals(-exitcode).name
    except ValueError:
        return f"signal {-exitcode}"


def _died(process: multiprocessing.process.BaseProcess) -> ChildDied:
    """The ChildDied of a child that ended without sending anything."""
    process.join(_GRACE)
    code = process.exitcode
    name = _signal_name(code)
    if name is not None:
        return ChildDied(code, name, f"the process was killed by {name} during the check")
    if code is None:
        return ChildDied(None, None, "the process closed its result pipe during the check without ending")
    return ChildDied(code, None, f"the process ended with exit code {code} during the check (os._exit?)")


def _stop(process: multiprocessing.process.BaseProcess) -> None:
    if process.is_alive():
        process.terminate()
        process.join(_GRACE)
    if process.is_alive():
        process.kill()
        process.join()


def _from_payload(payload: tuple[Any, ...], exitcode: int | None) -> Any:
    """The result the child sent, raised or turned into a ChildDied as the module docstring says."""
    tag = payload[0]
    if tag == "ok":
        return payload[1]
    if tag == "unpicklable":
        _, type_name, why = payload
        return ChildDied(
            exitcode, None, f"the result ({type_name}) could not be pickled to send it back: {why}"
        )
    if tag == "raised_text":
        _, type_name, text, child_tb = payload
        raise ChildRaised(type_name, text, child_tb)
    exc, child_tb = payload[1], payload[2]
    if isinstance(exc, Exception):
        exc.add_note(f"raised in the isolated child process:\n{child_tb}")
        raise exc
    if isinstance(exc, SystemExit):
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        shown = "" if exc.code is None else repr(exc.code)
        return ChildDied(code, None, f"the process called sys.exit({shown}) during the check")
    return ChildDied(exitcode, None, f"the process raised {type(exc).__name__} during the check")


def run_isolated(
    fn: Callable[..., T], *args: Any, timeout: float | None = None, fresh: bool = False
) -> T | ChildDied:
    """``fn(*args)`` called in a child process: its return value, or a ``ChildDied``.

    Raises what ``fn`` raised (an ``Exception``; see the module docstring) and ``KeyboardInterrupt`` on
    Ctrl-C; ``pickle.PicklingError`` if a fresh child could not rebuild ``fn`` or ``args``. ``timeout`` is in seconds, ``None`` for no limit. ``fresh`` starts a new interpreter (spawn)
    rather than forking this one: needed once this process runs JAX, whose threads do not survive a fork;
    ``fn`` and its arguments must then be importable and picklable.
    """
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
    ctx = _context(fresh)
    if ctx.get_start_method() == "spawn":
        _refuse_main(fn, args)
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(send, fn, args), name="backprop-isolated")
    try:
        process.start()
        # Only the child may hold the sending end, so that its death shows here as end of file.
        send.close()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            ready = wait([receive, process.sentinel], remaining)
            if not ready:
                _stop(process)
                return ChildDied(
                    process.exitcode,
                    _signal_name(process.exitcode),
                    f"the check did not finish within {timeout:g} s and its process was stopped",
                )
            # Read before joining: a large result fills the pipe, and the child cannot end until it is read.
            if receive in ready or receive.poll():
                break
            if not process.is_alive():
                return _died(process)
        try:
            data = receive.recv_bytes()
        except (EOFError, OSError):
            return _died(process)
        process.join(_GRACE)
        try:
            payload = pickle.loads(data)
        except Exception as exc:  # a class the child could pickle but this process cannot import
            why = f"{type(exc).__name__}: {exc}"
            return ChildDied(process.exitcode, None, f"the result could not be unpickled here: {why}")
        result: T | ChildDied = _from_payload(payload, process.exitcode)
        return result
    finally:
        _stop(process)
        send.close()
        receive.close()
