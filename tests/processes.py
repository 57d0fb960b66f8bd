"""Start ``backprop-verify`` in a child process the way a terminal does, for the Ctrl-C tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# A process started in the background of a non-interactive shell (a CI script's `cmd &`, `nohup`)
# inherits SIGINT ignored, and the command line rightly keeps a caller's choice to ignore it; a terminal's
# Ctrl-C reaches a program that handles SIGINT, so the child starts from Python's default handler.
_AS_FROM_A_TERMINAL = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'backprop-verify'; runpy.run_module('backprop.verify.cli', run_name='__main__')"
)


def start_cli(*argv: str, stdout: int = subprocess.PIPE) -> subprocess.Popen[str]:
    """``backprop-verify argv`` in a child process that handles Ctrl-C as it would from a terminal."""
    return subprocess.Popen(
        [sys.executable, "-c", _AS_FROM_A_TERMINAL, *argv],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
