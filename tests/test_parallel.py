"""Rows checked in worker processes: the reports come back in order, and a worker that dies fails only
the layer it was checking."""

from __future__ import annotations

from pathlib import Path

from backprop.verify.parallel import Job, run_groups

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
