"""The persistent compilation cache: where it lives, that a second run reads it, that ``--no-cache``
bypasses it, and that processes sharing it at once neither fail nor warn."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import platformdirs
import pytest

from backprop.verify import cache

ROOT = Path(__file__).resolve().parents[1]
RUN = [sys.executable, "-m", "backprop.verify.cli", "relu", "--dtype", "float64", "--examples", "4"]


def test_the_cache_lives_in_the_users_cache_directory_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(cache.ENV, raising=False)
    assert cache.location() == Path(platformdirs.user_cache_dir("backprop")) / "jax"
    monkeypatch.setenv(cache.ENV, str(tmp_path / "elsewhere"))
    assert cache.location() == tmp_path / "elsewhere"


def _start(folder: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, cache.ENV: str(folder), "PYTHONPATH": str(ROOT)}
    env.pop(cache.OFF, None)
    return subprocess.Popen(
        [*RUN, "--json", "-", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def _finish(process: subprocess.Popen[str]) -> tuple[dict[str, Any], str]:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    (layer,) = json.loads(out)["layers"]
    return layer["compiles"], err


def _entries(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("*-cache")}


def test_a_second_run_reads_what_the_first_compiled(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    # two processes at once on an empty cache: both compile and write, neither fails nor warns
    first = [_finish(p) for p in [_start(folder), _start(folder)]]
    needed = {compiles["hits"] + compiles["misses"] for compiles, _ in first}
    assert len(needed) == 1 and needed.pop() > 0, first  # one may read what the other just wrote
    assert all("Warning" not in err for _, err in first), first
    total = first[0][0]["hits"] + first[0][0]["misses"]
    written = _entries(folder)
    assert len(written) == total
    again, _ = _finish(_start(folder))
    assert again == {"hits": total, "misses": 0}, again
    # --no-cache neither reads nor writes it
    off, _ = _finish(_start(folder, "--no-cache"))
    assert off["hits"] == 0 and off["misses"] > 0
    assert _entries(folder) == written
