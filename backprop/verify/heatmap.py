"""Inline SVG pictures for the HTML report: heat maps of a failing array and the histogram of a passing
layer's errors. Plain strings, no dependency: the report must open offline, from disk.

Every cell of a heat map carries its index and exact value in a ``<title>`` (a tooltip for the learner,
and what the tests read back); the three maps of one check share a symmetric colour scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import numpy as np
from numpy.typing import NDArray

MAX_CELLS = 1600
"""Cells drawn per map at most: beyond this the window around the worst element is shown."""
MAX_SIDE = 40
"""Rows or columns of one 2-D slice at most."""
MAP_WIDTH = 300
"""Pixels one map may take, so that the three maps of a check fit side by side."""
WRAP_1D = 32
"""A 1-D array longer than this wraps into rows of this many elements."""
GAP = 8
LABEL = 12
CELL = 40
"""The largest cell, in pixels: a small array's values are written in their cells."""

# RdBu: blue negative, near-white zero, red positive; distinguishable with the common colour blindnesses
_ANCHORS = np.array(
    [[33, 102, 172], [146, 197, 222], [247, 247, 247], [244, 165, 130], [178, 24, 43]], dtype=np.float64
)
NONFINITE = "#3a3a3a"


@dataclass(frozen=True)
class Layout:
    """Where each shown element of an array is drawn: its index, its cell's corner, and the labels."""

    index: list[tuple[int, ...]]
    x: list[int]
    y: list[int]
    cell: int
    width: int
    height: int
    labels: list[tuple[int, int, str]]
    note: str


def _window(n: int, k: int, at: int) -> range:
    """``k`` consecutive positions of ``n`` (all when fewer) that contain ``at``."""
    if n <= k:
        return range(n)
    start = min(max(at - k // 2, 0), n - k)
    return range(start, start + k)


def layout(shape: tuple[int, ...], worst: tuple[int, ...]) -> Layout:
    """Scalars as one cell, vectors as a (wrapped) strip, matrices as a grid, N-D as a grid of 2-D slices
    over the leading axes; large arrays as the window around the worst element."""
    if len(shape) == 0:
        return Layout([()], [0], [0], CELL, CELL, CELL, [], "a scalar")
    if len(shape) == 1:
        return _layout_1d(shape[0], worst[0])
    return _layout_nd(shape, worst)


def _layout_1d(n: int, worst: int) -> Layout:
    shown = _window(n, MAX_CELLS, worst)
    wide = min(len(shown), WRAP_1D)
    cell = max(3, min(CELL, MAP_WIDTH // max(wide, 1)))
    index: list[tuple[int, ...]] = [(i,) for i in shown]
    x = [((i - shown.start) % wide) * cell for i in shown]
    y = [((i - shown.start) // wide) * cell for i in shown]
    rows = math.ceil(len(shown) / wide) if wide else 0
    note = f"a vector of {n}" + (f", in rows of {wide}" if n > wide else "")
    if len(shown) < n:
        note += f"; elements {shown.start} to {shown.stop - 1} shown"
    return Layout(index, x, y, cell, wide * cell, rows * cell, [], note)


def _layout_nd(shape: tuple[int, ...], worst: tuple[int, ...]) -> Layout:
    rows = _window(shape[-2], MAX_SIDE, worst[-2])
    cols = _window(shape[-1], MAX_SIDE, worst[-1])
    lead = shape[:-2]
    slices: list[tuple[int, ...]] = list(np.ndindex(*lead)) if lead else [()]
    at = slices.index(tuple(worst[:-2])) if lead else 0
    fit = max(1, MAX_CELLS // (len(rows) * len(cols)))
    # a short last leading axis (channels) runs across, and whole rows of it are shown
    unit = lead[-1] if lead and lead[-1] <= 8 and fit >= lead[-1] else 1
    blocks = _window(math.ceil(len(slices) / unit), max(1, fit // unit), at // unit)
    chosen = slices[blocks.start * unit : blocks.stop * unit]
    across = max(1, min(unit if unit > 1 else 8, len(chosen)))
    cell = max(3, min(CELL, (MAP_WIDTH - (across - 1) * GAP) // (across * len(cols))))
    top = LABEL if lead else 0
    sw, sh = len(cols) * cell, len(rows) * cell
    index, x, y, labels = [], [], [], []
    for p, lead_index in enumerate(chosen):
        ox, oy = (p % across) * (sw + GAP), (p // across) * (sh + GAP + top) + top
        if lead:
            labels.append((ox, oy - 3, "[" + ", ".join([*map(str, lead_index), ":", ":"]) + "]"))
        for r in rows:
            for c in cols:
                index.append((*lead_index, r, c))
                x.append(ox + (c - cols.start) * cell)
                y.append(oy + (r - rows.start) * cell)
    width = across * sw + (across - 1) * GAP
    height = math.ceil(len(chosen) / across) * (sh + GAP + top) - GAP
    return Layout(index, x, y, cell, width, height, labels, _nd_note(shape, rows, cols, len(chosen)))


def _nd_note(shape: tuple[int, ...], rows: range, cols: range, shown: int) -> str:
    ndim = len(shape)
    note = f"rows: axis {ndim - 2}, columns: axis {ndim - 1}"
    if ndim > 2:
        note += f"; one 2-D slice per index of axes 0 to {ndim - 3}"
        total = math.prod(shape[:-2])
        if shown < total:
            note += f" ({shown} of {total} slices shown, around the worst element)"
    if len(rows) < shape[-2] or len(cols) < shape[-1]:
        note += (
            f"; rows {rows.start} to {rows.stop - 1} and columns {cols.start} to {cols.stop - 1} shown, "
            "around the worst element"
        )
    return note


def colours(values: NDArray[np.float64], scale: float) -> list[str]:
    """Each value's colour on the symmetric scale [-scale, scale]; NaN and inf in dark grey."""
    finite = np.isfinite(values)
    t = np.clip(np.where(finite, values, 0.0) / scale, -1.0, 1.0)
    pos = (t + 1.0) * 2.0
    i = np.minimum(np.floor(pos).astype(int), 3)
    f = (pos - i)[:, None]
    rgb = np.rint(_ANCHORS[i] * (1 - f) + _ANCHORS[i + 1] * f).astype(int)
    return [f"#{r:02x}{g:02x}{b:02x}" if ok else NONFINITE for (r, g, b), ok in zip(rgb, finite, strict=True)]


def where(check: str, index: tuple[int, ...]) -> str:
    """``dW[1, 2]``, or the check's name alone for a scalar."""
    return f"{check}[{', '.join(map(str, index))}]" if index else check


def heatmap(
    values: NDArray[np.float64], lay: Layout, role: str, check: str, scale: float, worst: tuple[int, ...]
) -> str:
    """One map: a rect per shown element (its index and exact value as its title), the worst one marked."""
    shown = np.array([values[i] for i in lay.index], dtype=np.float64)
    cells = [
        f'<rect x="{x}" y="{y}" width="{lay.cell}" height="{lay.cell}" fill="{colour}">'
        f"<title>{escape(where(check, i))} = {float(v)!r}</title></rect>"
        for i, x, y, v, colour in zip(lay.index, lay.x, lay.y, shown, colours(shown, scale), strict=True)
    ]
    labels = [f'<text x="{x}" y="{y}" class="slice">{escape(text)}</text>' for x, y, text in lay.labels]
    if lay.cell >= 34 and len(shown) <= 120:
        cells += _written(lay, shown, colours(shown, scale))
    mark = ""
    if worst in lay.index:
        k = lay.index.index(worst)
        x, y, c = lay.x[k], lay.y[k], lay.cell
        mark = (
            f'<rect class="worst" x="{x + 1}" y="{y + 1}" width="{c - 2}" height="{c - 2}" fill="none" '
            f'stroke="#000" stroke-width="2"/><rect x="{x + 2.5}" y="{y + 2.5}" width="{max(c - 5, 1)}" '
            f'height="{max(c - 5, 1)}" fill="none" stroke="#fff" stroke-width="1"/>'
        )
    shape = ",".join(map(str, values.shape))
    return (
        f'<svg class="heatmap" data-role="{role}" data-check="{escape(check)}" data-shape="{shape}" '
        f'data-worst="{",".join(map(str, worst))}" width="{lay.width + 2}" height="{lay.height + 2}" '
        f'viewBox="-1 -1 {lay.width + 2} {lay.height + 2}" role="img" aria-label="{escape(role)} {escape(check)}">'
        + "".join(labels + cells)
        + mark
        + "</svg>"
    )


def _written(lay: Layout, shown: NDArray[np.float64], fills: list[str]) -> list[str]:
    """Each value written in its cell (large cells only), white on the dark colours."""
    out = []
    for x, y, v, fill in zip(lay.x, lay.y, shown, fills, strict=True):
        dark = (
            fill == NONFINITE
            or sum(int(fill[k : k + 2], 16) * w for k, w in ((1, 0.3), (3, 0.59), (5, 0.11))) < 140
        )
        out.append(
            f'<text x="{x + lay.cell / 2}" y="{y + lay.cell / 2 + 3.5}" text-anchor="middle" class="value" '
            f'fill="{"#fff" if dark else "#111"}" pointer-events="none">{float(v) + 0.0:.2g}</text>'
        )
    return out


def colour_bar(scale: float) -> str:
    """The shared scale: -scale (blue) through 0 to +scale (red), labelled at both ends and the middle."""
    steps, width = 40, 240
    values = np.linspace(-scale, scale, steps)
    w = width / steps
    rects = "".join(
        f'<rect x="{i * w:.2f}" y="0" width="{w + 0.3:.2f}" height="12" fill="{c}"/>'
        for i, c in enumerate(colours(values, scale))
    )
    ticks = "".join(
        f'<text x="{x}" y="26" text-anchor="{anchor}" class="tick">{text}</text>'
        for x, anchor, text in (
            (0, "start", f"{-scale:.3g}"),
            (width / 2, "middle", "0"),
            (width, "end", f"{scale:.3g}"),
        )
    )
    return (
        f'<svg class="colourbar" data-scale="{scale!r}" width="{width}" height="30" role="img" '
        f'aria-label="colour scale from {-scale:.3g} to {scale:.3g}">{rects}{ticks}</svg>'
    )


def histogram(errors: Sequence[float], rtol: float, eps: float) -> str:
    """Per-example largest relative errors on a log axis, exact zeros in a bar of their own, and the
    tolerance's relative part as a dashed line; errors far below the dtype's ``eps`` share the first bar."""
    values = np.asarray(errors, dtype=np.float64)
    zeros = int(np.count_nonzero(values == 0))
    mark, floor = math.log10(rtol), math.floor(math.log10(eps)) - 3
    logs = np.maximum(np.log10(values[values > 0]), floor)
    low = math.floor(2 * min(float(logs.min(initial=mark)), mark)) / 2
    high = math.ceil(2 * max(float(logs.max(initial=mark)), mark) + 1e-9) / 2
    edges = np.arange(low, high + 0.25, 0.5)
    counts, _ = np.histogram(logs, bins=edges)
    bars = [(f"exactly 0: {zeros} example(s)", zeros)] + [
        (f"{10**a:.2g} to {10**b:.2g}: {n} example(s)", int(n))
        for a, b, n in zip(edges[:-1], edges[1:], counts, strict=True)
    ]
    return _histogram_svg(bars, (low, high), mark, len(values))


def _histogram_svg(bars: list[tuple[str, int]], span: tuple[float, float], mark: float, total: int) -> str:
    width, height, left, bottom = 440, 116, 30, 22
    bar_w = (width - left) / len(bars)
    top = max((n for _, n in bars), default=1) or 1
    body = []
    for k, (title, n) in enumerate(bars):
        h = (height - bottom - 8) * n / top
        x = left + k * bar_w
        fill = "#8c8c8c" if k == 0 else "#4a7ab5"
        body.append(
            f'<rect class="bar" data-count="{n}" x="{x + 1:.1f}" y="{height - bottom - h:.1f}" '
            f'width="{bar_w - 2:.1f}" height="{h:.1f}" fill="{fill}"><title>{escape(title)}</title></rect>'
        )

    def at(decade: float) -> float:
        return left + bar_w * (1 + (decade - span[0]) / 0.5)

    ticks = [f'<text x="{left + bar_w / 2:.1f}" y="{height - 8}" class="tick" text-anchor="middle">0</text>']
    every = max(1, math.ceil(44 / (2 * bar_w)))  # decades between labels, so that they never overlap
    ticks += [
        f'<text x="{at(d):.1f}" y="{height - 8}" class="tick" text-anchor="middle">1e{d}</text>'
        for d in range(math.ceil(span[0]), math.floor(span[1]) + 1)
        if d % every == 0 and at(d) - (left + bar_w / 2) > 30
    ]
    rule = (
        f'<line x1="{at(mark):.1f}" x2="{at(mark):.1f}" y1="4" y2="{height - bottom}" stroke="#b2182b" '
        f'stroke-dasharray="4 3"/><text x="{at(mark) - 3:.1f}" y="12" class="tick" text-anchor="end">rtol</text>'
    )
    axis = f'<text x="2" y="12" class="tick">{top}</text>'
    return (
        f'<svg class="histogram" data-examples="{total}" width="{width + 24}" height="{height}" role="img" '
        f'aria-label="largest relative error per example">{axis}{"".join(body)}{"".join(ticks)}{rule}</svg>'
    )
