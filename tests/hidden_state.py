"""The hidden state a row's reference takes (a dropout mask), read from one run of the library's layer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from backprop.verify import Row
from backprop.verify.stages import with_capture

SEED = 12345
"""The global random state the run starts from: seed NumPy with it again just before another first forward
(``check_example``'s) to draw the same mask."""


def with_hidden_state(row: Row, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` plus the hidden state the row's reference needs, if any: that of the library's layer after
    one forward from ``np.random.seed(SEED)``."""
    if row.capture is None:
        return dict(values)
    np.random.seed(SEED)
    layer = row.build(row.layer, dict(values))  # a copy: a network's row rebinds its parameters
    row.call(layer, dict(values))
    return with_capture(row, values, layer)
