"""The persistent caches: compiled references, and the references' results by example, kept on disk.

The compilation cache lets a second run skip XLA. The result cache (``recall``, ``keep``) lets a run of
examples already seen (a derandomized run, a check run again) skip JAX altogether, import included. Both
live in the same directory and are turned off together.

A compiled reference costs 40-100 ms per distinct shape; from the cache it costs a few. The cache lives in
the user's cache directory (``platformdirs``), or in ``$BACKPROP_CACHE_DIR``; ``--no-cache``,
``BACKPROP_NO_CACHE=1`` or ``disable()`` turn it off. It is bounded (``MAX_BYTES``, least recently used entries go first) and shared safely by
concurrent processes: every read and write holds a file lock. A JAX cache the user configured
themselves is left as it is, and used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

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
    results: bool = True
    """The result cache is usable: turned off for the process when its directory cannot be written."""
    stored: int | None = None
    """Bytes in the result cache, as last counted and then added to by this process's own writes."""


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


# ---- the result cache -----------------------------------------------------------------------------------
#
# One file per reference request, named by a digest of its key: a magic line, the header's length, a JSON
# header (the key itself, the caller's layout, each array's dtype and shape), the arrays' bytes, and a
# BLAKE2b digest of all that. An entry is used only when its digest, its header and its key all check out:
# a truncated, corrupted or colliding file is a miss and is overwritten, never trusted. Writers write a
# temporary file and rename it into place, so a reader sees a whole entry or none, and two processes
# writing the same entry write the same bytes.

RESULTS_MAX_BYTES = 256 * 2**20
"""The result cache's bound on disk; beyond it the least recently used entries go, down to three
quarters. An affine example at the usual shapes takes 10-100 kB."""
_MAGIC = b"BPREF01\n"
_CHECK = 32
_ALIGN = 16
_KINDS = "biufc"
_STALE_TEMPORARY = 3600.0


def results_location() -> Path:
    """Where reference results are kept: ``references`` in the cache directory."""
    return location() / "references"


def results_enabled() -> bool:
    """Whether reference results are read and written: off with the compilation cache (``--no-cache``,
    ``BACKPROP_NO_CACHE=1``, ``disable()``) or when the directory cannot be written."""
    return _state.enabled and _state.results and os.environ.get(OFF, "") in ("", "0")


def _entry(key: str) -> Path:
    return results_location() / (hashlib.blake2b(key.encode(), digest_size=20).hexdigest() + ".ref")


def _padded(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


def recall(key: str) -> tuple[Any, list[NDArray[Any]]] | None:
    """(layout, arrays) kept under ``key``, read-only; None when absent or not whole and right."""
    path = _entry(key)
    try:
        data = path.read_bytes()
    except OSError:
        return None
    held = _decode(data, key)
    if held is not None:
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: the last to be evicted
    return held


def _decode(data: bytes, key: str) -> tuple[Any, list[NDArray[Any]]] | None:
    start = len(_MAGIC) + 4
    if len(data) < start + _CHECK or not data.startswith(_MAGIC):
        return None
    body = memoryview(data)[:-_CHECK]
    if hashlib.blake2b(body, digest_size=_CHECK).digest() != data[-_CHECK:]:
        return None
    try:
        size = int.from_bytes(body[len(_MAGIC) : start], "little")
        header = json.loads(bytes(body[start : start + size]))
        if not isinstance(header, dict) or header.get("key") != key:
            return None
        offset = _padded(start + size)
        arrays = []
        for dtype_text, shape in header["arrays"]:
            dtype = np.dtype(dtype_text)
            if dtype.kind not in _KINDS or not all(type(n) is int and n >= 0 for n in shape):
                return None
            count = math.prod(shape)
            if offset + count * dtype.itemsize > len(body):
                return None
            arr = (
                np.frombuffer(body, dtype=dtype, count=count, offset=offset) if count else np.empty(0, dtype)
            )
            arrays.append(arr.reshape(shape))
            offset = _padded(offset + count * dtype.itemsize)
        if offset != len(body):
            return None
        return header["layout"], arrays
    except (ValueError, TypeError, KeyError):
        return None


def keep(key: str, layout: Any, arrays: Sequence[NDArray[Any]]) -> None:
    """Keep ``arrays`` (numbers only) and a JSON-able ``layout`` under ``key``; quietly nothing when the
    cache is off or cannot be written."""
    if not results_enabled() or any(np.asarray(a).dtype.kind not in _KINDS for a in arrays):
        return
    # not np.ascontiguousarray, which makes a 0-d array 1-d
    contiguous = [np.asarray(a) for a in arrays]
    header = json.dumps(
        {"key": key, "layout": layout, "arrays": [[a.dtype.str, list(a.shape)] for a in contiguous]}
    ).encode()
    parts = [_MAGIC, len(header).to_bytes(4, "little"), header]
    at = len(_MAGIC) + 4 + len(header)
    for arr in contiguous:
        parts.append(b"\x00" * (_padded(at) - at))
        at = _padded(at)
        parts.append(arr.tobytes())
        at += arr.nbytes
    parts.append(b"\x00" * (_padded(at) - at))
    body = b"".join(parts)
    data = body + hashlib.blake2b(body, digest_size=_CHECK).digest()
    folder = results_location()
    temporary = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, _entry(key))
    except OSError:
        _state.results = False  # the compilation cache says so in one line, when it is the same folder
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        return
    _account(folder, len(data))


def _account(folder: Path, written: int) -> None:
    """Count a write; evict the least recently used entries once the cache is over its bound."""
    if _state.stored is None:
        _state.stored = _evict(folder, None)
    _state.stored += written
    if _state.stored > RESULTS_MAX_BYTES:
        _state.stored = _evict(folder, RESULTS_MAX_BYTES * 3 // 4)


def _evict(folder: Path, target: int | None) -> int:
    """Remove abandoned temporary files and, down to ``target`` bytes, the entries least recently used;
    the bytes left. Another process evicting at once only makes some removals fail, harmlessly."""
    entries = []
    now = time.time()
    with contextlib.suppress(OSError), os.scandir(folder) as listing:
        for item in listing:
            with contextlib.suppress(OSError):
                stat = item.stat()
                if item.name.endswith(".tmp"):
                    if now - stat.st_mtime > _STALE_TEMPORARY:
                        os.unlink(item.path)
                elif item.name.endswith(".ref"):
                    entries.append((stat.st_mtime, stat.st_size, item.path))
    total = sum(size for _, size, _ in entries)
    if target is None:
        return total
    for _, size, path in sorted(entries):
        if total <= target:
            break
        with contextlib.suppress(OSError):
            os.unlink(path)
            total -= size
    return total
