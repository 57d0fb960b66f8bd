"""The book's shopping examples must print exactly the seed notebook's numbers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

EXPECTED = {
    "buy_apple.py": "200\n220.00000000000003\n2.2 110.00000000000001 200\n",
    "buy_apple_orange.py": "715.0000000000001\n110.00000000000001 2.2 3.3000000000000003 165.0 650\n",
}


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_prints_the_books_numbers(script: str, tmp_path: Path) -> None:
    # Run from an unrelated directory: the script must find backprop either installed
    # or through its own checkout fallback.
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == EXPECTED[script]
    assert result.stderr == ""
