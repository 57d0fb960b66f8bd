"""The result cache: reference results kept by example, so that a warm run needs no JAX at all.

A hit must be exactly what the reference computes (a false pass is the worst defect): these tests pin
that entries round-trip bit for bit with their shapes and dtypes, that the key tells apart every input
that changes the result, that a damaged entry is a miss, that the cache stays within its bound, and that
a warm check, and the report module, never import JAX.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from backprop.verify import cache, get_row
from backprop.verify import runner as runner_module
from backprop.verify.runner import reference_runs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh result cache for this test."""
    monkeypatch.setenv(cache.ENV, str(tmp_path))
    monkeypatch.delenv(cache.OFF, raising=False)
    monkeypatch.setattr(cache._state, "stored", None)
    monkeypatch.setattr(cache._state, "results", True)
    yield tmp_path / "references"


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.ref")) if folder.exists() else []


def _same(a: list[runner_module.Run], b: list[runner_module.Run]) -> None:
    assert len(a) == len(b)
    for (outs_a, grads_a), (outs_b, grads_b) in zip(a, b, strict=True):
        for x, y in zip((*outs_a, *grads_a), (*outs_b, *grads_b), strict=True):
            assert x.shape == y.shape and x.dtype == y.dtype
            assert x.tobytes() == y.tobytes()


@pytest.mark.parametrize(
    "arrays",
    [
        [np.array(1.5), np.array([2.0]), np.zeros((0, 3), np.float32)],
        [np.arange(6, dtype=np.int64).reshape(2, 3), np.array([True, False]), np.float32(-0.0)],
        [np.array([np.nan, np.inf, -np.inf, 5e-324]), np.ones((3, 4), np.float64).T],
    ],
)
def test_entries_round_trip_bit_for_bit_with_shapes_and_dtypes(
    folder: Path, arrays: list[np.ndarray]
) -> None:
    cache.keep("k", [[1, 2]], arrays)
    held = cache.recall("k")
    assert held is not None
    layout, back = held
    assert layout == [[1, 2]]
    for a, b in zip(arrays, back, strict=True):
        a = np.asarray(a)
        assert a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()
    assert cache.recall("another key") is None


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_hit_is_exactly_what_the_reference_computes(folder: Path, dtype: type) -> None:
    row = get_row("affine")
    rng = np.random.default_rng(0)
    values = {"x": rng.normal(size=(3, 4)), "W": rng.normal(size=(4, 2)), "b": rng.normal(size=2)}
    values = {k: v.astype(dtype) for k, v in values.items()}
    cots: tuple[np.ndarray, ...] = (rng.normal(size=(3, 2)).astype(dtype),)
    computed = reference_runs(row, values, cots, dtype)
    assert len(computed) == (2 if dtype == np.float64 else 3)
    assert len(_entries(folder)) == len(computed) - 1  # the float64 pair, and the native run
    _same(reference_runs(row, values, cots, dtype), computed)
    os.environ[cache.OFF] = "1"
    try:
        _same(reference_runs(row, values, cots, dtype), computed)  # and what it computes without the cache
    finally:
        del os.environ[cache.OFF]


def test_the_key_tells_apart_every_input_that_changes_the_result(folder: Path) -> None:
    relu = get_row("relu")
    x = np.array([0.5, -1.0])
    key = runner_module._result_key
    one = key(relu, {"x": x}, (x,), np.float64)
    assert one is not None
    others = [
        key(relu, {"x": x.copy()}, (x,), np.float64),  # the same values: the same key
        key(relu, {"x": np.nextafter(x, 1)}, (x,), np.float64),
        key(relu, {"x": x}, (np.nextafter(x, 1),), np.float64),
        key(relu, {"x": x.astype(np.float32)}, (x,), np.float64),
        key(relu, {"x": x}, (x,), np.float32),
        key(relu, {"x": x.reshape(2, 1)}, (x,), np.float64),
        key(relu, {"x": x, "stride": 1}, (x,), np.float64),
        key(relu, {"x": x, "stride": True}, (x,), np.float64),
        key(relu, {"x": x, "stride": 1.0}, (x,), np.float64),
        key(get_row("sigmoid"), {"x": x}, (x,), np.float64),
    ]
    assert others[0] == one
    keys = [one, *others[1:]]
    assert None not in keys and len(set(keys)) == len(keys)
    zero_d = key(relu, {"x": np.array(0.0)}, (np.array(0.0),), np.float64)
    assert zero_d != key(relu, {"x": np.array([0.0])}, (np.array([0.0]),), np.float64)


def test_a_row_with_a_reference_of_its_own_or_an_unkeyable_value_is_not_cached(folder: Path) -> None:
    relu = get_row("relu")
    own = dataclasses.replace(relu, reference=lambda x: x * 0)  # a user's row, named like the library's
    x = np.array([1.0, 2.0])
    assert runner_module._result_key(own, {"x": x}, (x,), np.float64) is None
    assert runner_module._result_key(relu, {"x": x, "flag": object()}, (x,), np.float64) is None
    (outs, _), _ = reference_runs(own, {"x": x}, (x,))
    assert np.all(outs[0] == 0) and not _entries(folder)


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "other key"])
def test_a_damaged_entry_is_a_miss_and_is_computed_again(folder: Path, damage: str) -> None:
    row = get_row("relu")
    x = np.array([[0.5, -2.0, 3.0]])
    right = reference_runs(row, {"x": x}, (x,))
    (entry,) = _entries(folder)
    data = entry.read_bytes()
    if damage == "flip":
        at = len(data) - 40  # inside the arrays: a value changed, its digest not
        data = data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1 :]
    elif damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "empty":
        data = b""
    else:
        key = runner_module._result_key(row, {"x": x}, (x,), np.float64)
        assert key is not None
        cache.keep(key + "?", [[1, 1], [1, 1]], [x * 7, x * 7, x * 7, x * 7])
        data = max(_entries(folder), key=lambda p: p.stat().st_mtime_ns).read_bytes()
    entry.write_bytes(data)
    _same(reference_runs(row, {"x": x}, (x,)), right)
    assert cache.recall(runner_module._result_key(row, {"x": x}, (x,), np.float64) or "") is not None


def test_the_cache_keeps_within_its_bound(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "RESULTS_MAX_BYTES", 20_000)
    for i in range(40):
        cache.keep(f"entry {i}", [], [np.full(100, float(i))])
    total = sum(p.stat().st_size for p in _entries(folder))
    assert 0 < total <= 20_000
    assert cache.recall("entry 39") is not None  # the newest stay


def test_no_cache_neither_reads_nor_writes_results(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cache.OFF, "1")
    x = np.array([1.0, -1.0])
    reference_runs(get_row("relu"), {"x": x}, (x,))
    cache.keep("k", [], [x])
    assert not _entries(folder) and cache.recall("k") is None


_CHECK = """
import sys
from backprop.activations import Relu
from backprop.verify import verify
from backprop.verify.search import compilations
assert verify(Relu, "relu", max_examples=8, dtype="{dtype}").passed
print("jax" in sys.modules, *compilations())
"""


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_warm_check_never_imports_jax(tmp_path: Path, dtype: str) -> None:
    env = {**os.environ, cache.ENV: str(tmp_path), "PYTHONPATH": str(ROOT)}
    env.pop(cache.OFF, None)
    runs = [
        subprocess.run(
            [sys.executable, "-c", _CHECK.format(dtype=dtype)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        for _ in range(2)
    ]
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    cold, warm = (r.stdout.split() for r in runs)
    assert cold[0] == "True" and warm[0] == "False", (cold, warm)
    built = int(cold[1])
    assert built > 0 and warm[1:] == [str(built), str(built)]  # every reference shape supplied by the cache


def test_the_report_module_imports_no_jax() -> None:
    code = "import sys, backprop.verify.report, backprop.verify.witness; print('jax' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr
