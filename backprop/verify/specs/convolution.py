"""Rows for ``backprop.convolution`` (im2col, col2im, Convolution, Pooling) against ``reference.convolution``.

Each pool entry is one geometry: image, filter, stride and pad. Together they cover a 1x1 image and a
1x1 filter, windows that overlap (a stride smaller than the filter, where col2im must add), strides that
leave rows uncovered or skip pixels, padding (up to more than the filter for im2col), non-square filters
and images, one channel and several, a filter as large as the image, and a large batch or channel count.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

import backprop
from backprop.convolution import Col2im, Im2col
from backprop.verify.draw import Without, float_arrays
from backprop.verify.lazy import lazy
from backprop.verify.row import Arg, Row, ShapeDict, Shapes
from backprop.verify.vocabulary import Feature

if TYPE_CHECKING:
    from hypothesis import strategies as st

# (filter_h, filter_w, stride, pad) of an entry, under this key: every row reads its fixed values from it
GEOMETRY = "geometry"


def _out(h: int, w: int, fh: int, fw: int, stride: int, pad: int) -> tuple[int, int]:
    return (h + 2 * pad - fh) // stride + 1, (w + 2 * pad - fw) // stride + 1


def _windowed(image: tuple[int, int, int, int], fh: int, fw: int, stride: int, pad: int) -> ShapeDict:
    n, c, h, w = image
    oh, ow = _out(h, w, fh, fw, stride, pad)
    return {"x": image, "col": (n * oh * ow, c * fh * fw), GEOMETRY: (fh, fw, stride, pad)}


def _conv(image: tuple[int, int, int, int], fn: int, fh: int, fw: int, stride: int, pad: int) -> ShapeDict:
    n, c, h, w = image
    oh, ow = _out(h, w, fh, fw, stride, pad)
    return {
        "x": image,
        "W": (fn, c, fh, fw),
        "b": (fn,),
        "out": (n, fn, oh, ow),
        GEOMETRY: (fh, fw, stride, pad),
    }


def _pool(image: tuple[int, int, int, int], ph: int, pw: int, stride: int, pad: int) -> ShapeDict:
    n, c, h, w = image
    return {"x": image, "out": (n, c, *_out(h, w, ph, pw, stride, pad)), GEOMETRY: (ph, pw, stride, pad)}


WINDOW_POOL: tuple[ShapeDict, ...] = (
    _windowed((1, 1, 1, 1), 1, 1, 1, 0),  # the smallest
    _windowed((1, 1, 3, 3), 2, 2, 1, 0),  # overlapping windows
    _windowed((2, 2, 4, 4), 2, 2, 2, 0),  # the book's tiling, two channels
    _windowed((1, 1, 3, 4), 3, 3, 1, 1),  # padding, a non-square image
    _windowed((2, 3, 5, 5), 3, 3, 2, 1),  # stride 2 with overlap and padding
    _windowed((1, 2, 6, 5), 3, 2, 2, 0),  # a stride that leaves the last row and column uncovered
    _windowed((2, 1, 3, 3), 1, 1, 1, 2),  # padding wider than the filter: windows of padding only
    _windowed((1, 1, 4, 4), 2, 3, 3, 2),  # a non-square filter, stride 3
    _windowed((2, 2, 3, 3), 3, 3, 1, 0),  # a filter as large as the image
    _windowed((12, 1, 6, 6), 3, 3, 1, 1),  # a large batch
)
"""im2col's and col2im's geometries: x (N, C, H, W), col (N*out_h*out_w, C*fh*fw)."""

CONVOLUTION_POOL: tuple[ShapeDict, ...] = (
    _conv((1, 1, 1, 1), 1, 1, 1, 1, 0),  # the smallest
    _conv((1, 1, 3, 3), 1, 2, 2, 1, 0),  # overlapping windows
    _conv((2, 1, 4, 4), 2, 2, 2, 2, 0),  # tiled windows
    _conv((1, 2, 3, 4), 3, 3, 3, 1, 1),  # padding, a non-square image
    _conv((2, 3, 5, 5), 2, 3, 3, 2, 1),  # stride 2 with overlap and padding
    _conv((2, 2, 6, 5), 2, 3, 2, 2, 0),  # a stride that leaves the last row and column uncovered
    _conv((3, 1, 5, 5), 4, 1, 1, 2, 0),  # a 1x1 filter skipping pixels
    _conv((1, 2, 4, 4), 1, 2, 3, 3, 2),  # a non-square filter, stride 3, pad 2
    _conv((2, 3, 4, 4), 2, 4, 4, 1, 0),  # a filter as large as the image
    _conv((12, 1, 6, 6), 2, 3, 3, 1, 1),  # a large batch
    _conv((2, 3, 5, 5), 32, 3, 3, 1, 1),  # many filters
)
"""x (N, C, H, W), W (FN, C, FH, FW), b (FN,), out (N, FN, out_h, out_w)."""

POOLING_POOL: tuple[ShapeDict, ...] = (
    _pool((1, 1, 1, 1), 1, 1, 1, 0),  # the smallest
    _pool((1, 1, 2, 2), 2, 2, 2, 0),  # the book's default pool, one window
    _pool((2, 1, 4, 4), 2, 2, 2, 0),  # tiled windows
    _pool((1, 2, 5, 5), 3, 3, 2, 1),  # overlapping windows and padding
    _pool((2, 2, 4, 5), 2, 2, 1, 0),  # stride 1: every element in up to four windows
    _pool((1, 1, 5, 4), 2, 3, 2, 1),  # a non-square pool with padding
    _pool((2, 3, 7, 7), 3, 3, 3, 0),  # a stride that leaves the last row and column uncovered
    _pool((3, 1, 6, 6), 2, 2, 3, 0),  # a stride past the pool: pixels in no window
    _pool((2, 2, 4, 4), 4, 4, 1, 2),  # windows mostly of padding
    _pool((2, 1, 4, 4), 2, 2, 2, 1),  # padding without overlap
    _pool((12, 2, 8, 8), 2, 2, 2, 0),  # a large batch
)
"""x (N, C, H, W), out (N, C, out_h, out_w); pad < pool in every entry (a window must hold a real element)."""


def _fixed(i: int) -> Any:
    def read(shapes: Shapes) -> int:
        return int(shapes[GEOMETRY][i])

    return read


def _input_shape(shapes: Shapes) -> tuple[int, ...]:
    return tuple(shapes["x"])


def _geometry_features(values: Mapping[str, Any], fh: str, fw: str) -> set[Feature]:
    """OVERLAP where the stride is smaller than the filter, PADDING where pad > 0."""
    found = set()
    if int(values["stride"]) < max(int(values[fh]), int(values[fw])):
        found.add(Feature.OVERLAP)
    if int(values["pad"]):
        found.add(Feature.PADDING)
    return found


def _filter_features(values: Mapping[str, Any]) -> set[Feature]:
    return _geometry_features(values, "filter_h", "filter_w")


def _conv_features(values: Mapping[str, Any]) -> set[Feature]:
    w = np.shape(values["W"])
    return _geometry_features({**values, "fh": w[2], "fw": w[3]}, "fh", "fw")


# ---- pooling: windows, ties ---------------------------------------------------------------------------


def _pool_windows(values: Mapping[str, Any]) -> NDArray[np.float64]:
    """Every window of x padded with -inf: (N, C, out_h, out_w, pool_h * pool_w)."""
    x = np.asarray(values["x"], dtype=np.float64)
    ph, pw, stride, pad = (int(values[k]) for k in ("pool_h", "pool_w", "stride", "pad"))
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=-np.inf)
    oh, ow = _out(x.shape[2], x.shape[3], ph, pw, stride, pad)
    view = sliding_window_view(padded, (ph, pw), axis=(2, 3))[:, :, : stride * (oh - 1) + 1 : stride]
    view = view[:, :, :, : stride * (ow - 1) + 1 : stride]
    return np.asarray(view.reshape(*view.shape[:4], ph * pw))


def _tied(values: Mapping[str, Any]) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """(each element of each window that equals its window's maximum, windows where more than one does)."""
    windows = _pool_windows(values)
    at_max = windows == windows.max(axis=-1, keepdims=True)
    return at_max, at_max.sum(axis=-1) > 1


def _pool_features(values: Mapping[str, Any]) -> set[Feature]:
    found = _geometry_features(values, "pool_h", "pool_w")
    if np.asarray(values["x"]).size and np.any(_tied(values)[1]):
        found.add(Feature.TIE)
    return found


def _scatter(values: Mapping[str, Any], per_element: NDArray[np.float64]) -> NDArray[np.float64]:
    """Window-element values (N, C, oh, ow, ph * pw) added into x's shape (padding dropped)."""
    x_shape = np.shape(values["x"])
    ph, pw, stride, pad = (int(values[k]) for k in ("pool_h", "pool_w", "stride", "pad"))
    n, c, h, w = x_shape
    oh, ow = per_element.shape[2:4]
    grid = per_element.reshape(n, c, oh, ow, ph, pw)
    img = np.zeros((n, c, h + 2 * pad, w + 2 * pad))
    for i in range(ph):
        for j in range(pw):
            img[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride] += grid[..., i, j]
    return img[:, :, pad : pad + h, pad : pad + w]


def pooling_subgradient(
    values: Mapping[str, Any], cotangents: tuple[Any, ...], grad: str, expected: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """At a tied maximum any split of the window's dout among the tied elements is a valid subgradient:
    each tied element may receive from nothing to all of it. Windows with one maximum give it all of it."""
    at_max, tied = _tied(values)
    g = np.asarray(cotangents[0], dtype=np.float64)[..., None]
    unique = np.where(at_max & ~tied[..., None], g, 0.0)
    shared = at_max & tied[..., None]
    low = _scatter(values, unique + np.where(shared, np.minimum(g, 0.0), 0.0))
    high = _scatter(values, unique + np.where(shared, np.maximum(g, 0.0), 0.0))
    return low, high


TIE_ONE_IN = 4


def _untied(array: NDArray[Any]) -> NDArray[Any]:
    """Every element made distinct, the order kept: equal elements move apart by a few ulps of the
    largest magnitude, one step per rank, so that no window keeps a tie."""
    if array.size < 2:
        return array
    step = 4 * np.spacing(np.asarray(max(1.0, float(np.max(np.abs(array)))), dtype=array.dtype))
    ranks = np.argsort(np.argsort(array, axis=None, kind="stable"), kind="stable").reshape(array.shape)
    return np.asarray(array + ranks * step, dtype=array.dtype)


def pooling_inputs(shapes: Shapes, dtype: np.dtype[Any], without: Without) -> st.SearchStrategy[Any]:
    """x for max pooling: about one array in four rounded to multiples of 100, which ties many windows'
    maxima (a tie is where pooling's backward is most often wrong); none tied without ``tie``."""
    from hypothesis import strategies as st

    drawn = float_arrays(shapes["x"], -1e4, 1e4, dtype, without)
    if Feature.TIE in without:
        return drawn.map(_untied)
    return st.tuples(drawn, st.integers(0, TIE_ONE_IN - 1)).map(
        lambda d: np.asarray(np.round(d[0] / 100) * 100, dtype=d[0].dtype) if d[1] == TIE_ONE_IN - 1 else d[0]
    )


SECTION = (1, 7, 4)  # 7.4: im2col, Convolution, Pooling
_FEATURES = (Feature.OVERLAP, Feature.PADDING, Feature.BATCH, Feature.LARGE, Feature.EXTREME)


def _window(height: str, width: str) -> tuple[Arg, ...]:
    """The window's height and width (constructor positionals), stride and pad (keywords)."""
    return (
        Arg(name=height, to="init", fixed=_fixed(0)),
        Arg(name=width, to="init", fixed=_fixed(1)),
        Arg(name="stride", to="init_kw", fixed=_fixed(2)),
        Arg(name="pad", to="init_kw", fixed=_fixed(3)),
    )


_FILTER = _window("filter_h", "filter_w")

# ---- the book's functions, driven as layers ------------------------------------------------------------------

Function = Callable[..., Any]


def _partner(function: Function, name: str) -> tuple[Function, str]:
    """``function``'s adjoint ``name`` from the same module (book 1's common.util has both), else the
    library's; with a note when it is the library's."""
    own = getattr(sys.modules.get(getattr(function, "__module__", "") or ""), name, None)
    if callable(own) and own is not function:
        return own, ""
    return getattr(
        backprop, name
    ), f"backward is backprop.{name} (your module has no {name}): only forward is yours"


def _named(cls: type, function: Function, factory: str, note: str) -> type:
    """The wrapper named after the function it drives, so that reports say ``common.util.im2col``;
    ``__wraps__`` tells the printed program how to rebuild it."""
    cls.__module__ = getattr(function, "__module__", cls.__module__) or cls.__module__
    cls.__qualname__ = cls.__name__ = getattr(function, "__qualname__", cls.__name__)
    cls.__wraps__ = (__name__, factory, function)  # type: ignore[attr-defined]
    cls.__note__ = note  # type: ignore[attr-defined]
    return cls


def im2col_layer(im2col: Function) -> type:
    """``im2col(x, filter_h, filter_w, stride, pad)`` as the row's layer; its VJP is the same module's
    ``col2im(dcol, x.shape, filter_h, filter_w, stride, pad)``."""
    col2im, note = _partner(im2col, "col2im")

    class Im2colFunction(Im2col):
        def forward(self, x: Any) -> Any:
            self.input_shape = np.shape(x)
            return im2col(x, self.filter_h, self.filter_w, self.stride, self.pad)

        def backward(self, dout: Any) -> Any:
            return col2im(dout, self.input_shape, self.filter_h, self.filter_w, self.stride, self.pad)

    return _named(Im2colFunction, im2col, "im2col_layer", note)


def col2im_layer(col2im: Function) -> type:
    """``col2im(col, input_shape, filter_h, filter_w, stride, pad)`` as the row's layer; its VJP is the same
    module's ``im2col(dx, filter_h, filter_w, stride, pad)``."""
    im2col, note = _partner(col2im, "im2col")

    class Col2imFunction(Col2im):
        def forward(self, col: Any) -> Any:
            return col2im(col, self.input_shape, self.filter_h, self.filter_w, self.stride, self.pad)

        def backward(self, dout: Any) -> Any:
            return im2col(dout, self.filter_h, self.filter_w, self.stride, self.pad)

    return _named(Col2imFunction, col2im, "col2im_layer", note)


ROWS = (
    Row(
        name="im2col",
        layer=Im2col,
        reference=lazy("reference.convolution", "im2col"),
        signature="im2col(x[N,C,H,W], filter_h, filter_w, stride, pad) -> col[N*oh*ow, C*fh*fw]   "
        "(its VJP: col2im)",
        args=(*_FILTER, Arg(name="x", grad="dx", domain=(-1e4, 1e4), batch=True)),
        shapes=WINDOW_POOL,
        outputs=("col",),
        function=im2col_layer,
        features=(*_FEATURES, Feature.NEGATIVE_ZERO),
        row_features=_filter_features,
    ),
    Row(
        name="col2im",
        layer=Col2im,
        reference=lazy("reference.convolution", "col2im"),
        signature="col2im(col[N*oh*ow, C*fh*fw], input_shape, filter_h, filter_w, stride, pad) -> x[N,C,H,W]   "
        "(its VJP: im2col)",
        args=(
            Arg(name="input_shape", to="init", fixed=_input_shape),
            *_FILTER,
            Arg(name="col", grad="dcol", domain=(-1e4, 1e4)),
        ),
        shapes=tuple({**entry, "img": entry["x"]} for entry in WINDOW_POOL),
        outputs=("img",),
        function=col2im_layer,
        # no ``large``: col's first axis is N * out_h * out_w, not a batch, and would read as one
        features=(Feature.OVERLAP, Feature.PADDING, Feature.EXTREME, Feature.NEGATIVE_ZERO),
        row_features=_filter_features,
    ),
    Row(
        name="convolution",
        layer=backprop.Convolution,
        reference=lazy("reference.convolution", "convolution"),
        graph=lazy("reference.convolution", "convolution_graph"),
        signature="Convolution(W[FN,C,FH,FW], b[FN], stride, pad).forward(x[N,C,H,W]) -> [N,FN,oh,ow]   "
        "(backward -> dx; .dW, .db)",
        args=(
            Arg(name="W", to="init", grad="dW", domain=(-1e3, 1e3)),
            Arg(name="b", to="init", grad="db", domain=(-1e3, 1e3)),
            Arg(name="stride", to="init_kw", fixed=_fixed(2)),
            Arg(name="pad", to="init_kw", fixed=_fixed(3)),
            Arg(name="x", grad="dx", domain=(-1e3, 1e3), batch=True),
        ),
        shapes=CONVOLUTION_POOL,
        features=(*_FEATURES, Feature.NEGATIVE_ZERO),
        row_features=_conv_features,
    ),
    Row(
        name="pooling",
        layer=backprop.Pooling,
        reference=lazy("reference.convolution", "pooling"),
        graph=lazy("reference.convolution", "pooling_graph"),
        signature="Pooling(pool_h, pool_w, stride, pad).forward(x[N,C,H,W]) -> window maxima   (backward -> dx)",
        args=(
            *_window("pool_h", "pool_w"),
            Arg(name="x", grad="dx", domain=(-1e4, 1e4), values=pooling_inputs, batch=True),
        ),
        shapes=POOLING_POOL,
        features=(*_FEATURES, Feature.TIE),
        row_features=_pool_features,
        conventions=(
            "a tied maximum takes the whole dout at its first position in row-major order, as the book's "
            "argmax and jax.lax.reduce_window do; any split among the tied elements is a valid subgradient",
        ),
        subgradient=pooling_subgradient,
        subgradient_sum=True,
        kink_note="a share {t:g} of the tied window's dout",
    ),
)
