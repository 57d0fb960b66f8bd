"""The persistent compilation cache: compiled references kept on disk, so a second run skips XLA.

A compiled reference costs 40-100 ms per distinct shape; from the cache it costs a few. The cache lives in
the user's cache directory (``platformdirs``), or in ``$BACKPROP_CACHE_DIR``; ``--no-cache``,
``BACKPROP_NO_CACHE=1`` or ``disable()`` turn it off. It is bounded (``MAX_BYTES``, least recently used entries go first) and shared safely by
concurrent processes: every read and write holds a file lock. A JAX cache the user configured
themselves is left as it is, and used.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV = "BACKPROP_CACHE_DIR"
OFF = "BACKPROP_NO_CACHE"
MAX_BYTES = 64 * 2**20
"""The cache's bound on disk. An entry is 5-20 kB: a run of every row in both dtypes writes about 2 MB."""


@dataclass
class _State:
    enabled: bool = True
    configured: Path | None = None
    turned_off: bool = False
    hits: int = 0
    counting: bool = False
    listening: bool = False


_state = _State()


def _config() -> Any:
    """JAX's configuration, untyped: its settings are attributes made at run time."""
    import jax

    return jax.config


def location() -> Path:
    """Where the cache is kept: ``$BACKPROP_CACHE_DIR``, else the user's cache directory."""
    env = os.environ.get(ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs  # only the oracle needs it, and only here

    return Path(platformdirs.user_cache_dir("backprop")) / "jax"


def disable() -> None:
    """Compile every reference afresh in this process (``--no-cache``); call before the first check."""

    _state.enabled = False
    if _state.configured is not None and _config().jax_compilation_cache_dir == str(_state.configured):
        _config().update("jax_compilation_cache_dir", None)
        _state.configured = None
    ensure()


def ensure() -> Path | None:
    """Turn the cache on before the first compilation (once per process); the directory in use, or None
    when it is off or the directory cannot be created (the run goes on without it)."""

    _listen()
    if not _state.enabled or os.environ.get(OFF, "") not in ("", "0"):
        if not _state.turned_off:  # a JAX cache of the user's own included: off means off
            _config().update("jax_enable_compilation_cache", False)
            _reset()
            _state.turned_off = True
        return None
    if _state.configured is not None:
        return _state.configured
    own = _config().jax_compilation_cache_dir
    if own:  # the user's own JAX cache: used as it is
        return Path(own)
    path = location()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path):  # written to, not only there
            pass
    except OSError as exc:
        _state.enabled = False
        why = exc.strerror or str(exc)
        print(
            f"backprop: cannot write the compilation cache {path} ({why}); compiling without it",
            file=sys.stderr,
        )
        return ensure()
    _config().update("jax_compilation_cache_dir", str(path))
    # Our compiles take 20-100 ms: JAX's default keeps only those over a second.
    _config().update("jax_persistent_cache_min_compile_time_secs", 0.0)
    _config().update("jax_persistent_cache_min_entry_size_bytes", -1)
    # A size bound turns on JAX's file lock around every read and write: safe for concurrent processes.
    _config().update("jax_compilation_cache_max_size", MAX_BYTES)
    _reset()
    _state.configured = path
    return path


def _reset() -> None:
    """Let JAX read the configuration again even if something compiled before it was set."""
    try:
        from jax.experimental.compilation_cache import compilation_cache

        compilation_cache.reset_cache()
    except (ImportError, AttributeError):  # an older or newer JAX: the setting applies from its next check
        pass


def _listen() -> None:
    if _state.listening:
        return
    _state.listening = True
    import jax

    def on_event(event: str, **kwargs: Any) -> None:
        # only the references' own compilations: not a user's eager JAX code, nor an --allow epsilon loss
        if _state.counting and event == "/jax/compilation_cache/cache_hits":
            _state.hits += 1

    jax.monitoring.register_event_listener(on_event)


@contextlib.contextmanager
def counting() -> Iterator[None]:
    """Count the persistent cache's hits inside this block (a reference's first call, which compiles)."""
    _state.counting = True
    try:
        yield
    finally:
        _state.counting = False


def hits() -> int:
    """How many references the persistent cache has supplied so far in this process."""
    return _state.hits
