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

pytestmark = pytest.mark.oracle  # every test here runs the oracle

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


def test_the_hits_count_only_the_references_own_compilations(tmp_path: Path) -> None:
    # --allow epsilon evaluates a JAX loss eagerly: its many small compilations are not the references'
    book = str(ROOT / "tests/fixtures/learner/book_layers.py")
    extra = ("--layer", f"{book}:SoftmaxWithLoss", "--against", "softmax_with_loss", "--allow", "epsilon")
    env = {**os.environ, cache.ENV: str(tmp_path), "PYTHONPATH": str(ROOT)}
    env.pop(cache.OFF, None)
    runs = []
    for _ in range(2):
        command = [
            sys.executable,
            "-m",
            "backprop.verify.cli",
            *extra,
            "--dtype",
            "float64",
            "--examples",
            "6",
        ]
        done = subprocess.run([*command, "--json", "-"], capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode in (0, 1), (
            done.stderr
        )  # the book's loss ignores dout: the verdict is not the point
        (layer,) = json.loads(done.stdout)["layers"]
        runs.append(layer["compiles"])
    assert runs[0]["hits"] == 0 and runs[0]["misses"] > 0
    assert runs[1] == {"hits": runs[0]["misses"], "misses": 0}


def test_no_cache_also_bypasses_a_jax_cache_of_the_users_own(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "JAX_COMPILATION_CACHE_DIR": str(tmp_path),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run([*RUN, "--no-cache"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.iterdir())


def test_a_cache_directory_that_cannot_be_written_is_left_aside_with_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a file"
    blocker.write_text("")
    done = _finish(_start(blocker / "cache"))
    compiles, err = done
    assert compiles["hits"] == 0 and compiles["misses"] > 0
    assert err.count("cannot write the compilation cache") == 1 and "Warning" not in err, err
