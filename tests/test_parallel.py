"""Rows checked in worker processes: the reports come back in order, and a worker that dies fails only
the layer it was checking."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import jsonschema
import pytest

from backprop.verify.parallel import Job, run_groups
from backprop.verify.report import RunReport
from tests.processes import start_cli

pytestmark = pytest.mark.oracle  # every test here runs the oracle

ROOT = Path(__file__).resolve().parents[1]
KEYWORDS = {"max_examples": 3, "seed": 0, "dtype": "float64"}


def test_a_layer_that_ends_its_worker_fails_alone(tmp_path: Path) -> None:
    dies = tmp_path / "dies.py"
    dies.write_text(
        "import os\nfrom backprop import Relu\n\nclass Dies(Relu):\n    def backward(self, dout):\n        os._exit(3)\n"
    )
    groups = [
        [Job((f"{dies}:Dies", "relu"), "relu", "dies.Dies", "float64", KEYWORDS)],
        [Job(None, "sigmoid", "backprop.activations.Sigmoid", "float64", KEYWORDS)],
    ]
    finished: list[int] = []
    (dead,), (alive,) = run_groups(groups, 2, lambda i, reports: finished.append(i))
    assert sorted(finished) == [0, 1]
    assert alive.passed and alive.name == "sigmoid" and alive.examples == 3
    assert not dead.passed and dead.error is not None
    assert "exit code 3" in dead.error and "--isolate" in dead.error, dead.error


def test_a_worker_does_not_call_a_layer_again_in_its_other_dtype_once_it_timed_out(tmp_path: Path) -> None:
    hangs = tmp_path / "hangs.py"
    hangs.write_text(
        "import time\nfrom backprop import Relu\n\nclass Hangs(Relu):\n    def backward(self, dout):\n"
        "        time.sleep(1000)\n"
    )
    keywords = {**KEYWORDS, "timeout": 1.0}
    jobs = [
        Job((f"{hangs}:Hangs", "relu"), "relu", "hangs.Hangs", dtype, {**keywords, "dtype": dtype})
        for dtype in ("float64", "float32")
    ]
    sigmoid = [Job(None, "sigmoid", "backprop.activations.Sigmoid", "float64", KEYWORDS)]
    (timed_out, skipped), (alive,) = run_groups([jobs, sigmoid], 2)
    assert alive.passed
    assert timed_out.verdict == "timeout" and timed_out.failure is not None
    assert timed_out.failure.mismatches[0].message == "backward() did not return within 1 s"
    assert skipped.verdict == "timeout" and skipped.dtype == "float32" and skipped.examples == 0
    assert skipped.error == (
        "not checked: its float64 check timed out (backward() did not return within 1 s), so it is not called "
        "again"
    )
    schema = json.loads((ROOT / "backprop" / "verify" / "report.schema.json").read_text())
    run = RunReport(seed=0, max_examples=3, layers=[timed_out, skipped])
    jsonschema.validate(run.to_json(), schema)
    assert [(r["verdict"], r["timed_out"]) for r in run.to_json()["layers"]] == [("timeout", True)] * 2


def _two_workers() -> subprocess.Popen[str]:
    """``backprop-verify`` checking two rows in two worker processes for a long while, once started."""
    proc = start_cli("relu", "sigmoid", "--examples", "100000", "--jobs", "2", stdout=subprocess.DEVNULL)
    assert proc.stderr is not None
    assert "in 2 processes" in proc.stderr.readline()
    time.sleep(1.5)
    return proc


def test_a_ctrl_c_stops_the_workers_too() -> None:
    proc = _two_workers()
    proc.send_signal(signal.SIGINT)  # to this process only: it must stop its workers, not wait for them
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads a process's children from /proc")
def test_workers_end_when_their_parent_is_killed_outright() -> None:
    proc = _two_workers()
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    assert len(children) >= 2
    proc.kill()  # SIGKILL: it cannot stop its workers itself
    proc.communicate()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in children):
        time.sleep(0.2)
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()], "workers outlived their parent"
