"""Hypothesis profiles, chosen by the HYPOTHESIS_PROFILE environment variable.

- ``dev`` (default on a workstation): few examples, fast feedback.
- ``ci`` (default when ``CI`` is set): derandomized, so every run checks the same examples; prints the
  reproduction blob on failure; no deadline, because JAX compiles once per new shape (~70 ms).
- ``thorough``: many examples, for hunting rare failures before a release.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_slow = [HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile("dev", max_examples=30, deadline=None, suppress_health_check=_slow)
settings.register_profile(
    "ci",
    max_examples=100,
    derandomize=True,
    print_blob=True,
    deadline=None,
    database=None,
    suppress_health_check=_slow,
)
settings.register_profile(
    "thorough", max_examples=2000, deadline=None, print_blob=True, suppress_health_check=_slow
)

_profile = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
if _profile not in ("dev", "ci", "thorough"):
    raise ValueError(f"HYPOTHESIS_PROFILE must be one of dev, ci, thorough; got {_profile!r}")
settings.load_profile(_profile)

# tests/reproduce.py: the fixture that runs a failure's printed program in a fresh process
pytest_plugins = ["pytester", "tests.reproduce"]
