"""Convolution and max pooling over NCHW images, with im2col and col2im (book sections 7.4-7.5).

``im2col`` lays every filter window of an image out as one row, in the book's exact layout: rows ordered
(N, out_h, out_w), columns (C, filter_h, filter_w). ``col2im`` is its adjoint: it adds each row back into
the window it came from, so where windows overlap (a stride smaller than the filter) values are summed,
never overwritten. Both work on strided views (``sliding_window_view``) rather than a Python loop over
the output; ``Convolution`` multiplies a column matrix by the filters with BLAS, as the book does, and
keeps it for ``dW`` (its own, with channels last, which copies faster).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray

from ._errors import check_dout, not_ready

__all__ = ["Col2im", "Convolution", "Im2col", "Pooling", "col2im", "im2col"]

Array = NDArray[Any]
Shape = tuple[int, ...]


def _geometry(
    who: str, shape: Shape, filter_h: int, filter_w: int, stride: int, pad: int, names: str = "filter"
) -> tuple[int, int]:
    """(out_h, out_w) = ((H + 2 pad - filter_h) // stride + 1, same for W), or a ValueError naming shapes."""
    if len(shape) != 4:
        raise ValueError(f"{who}: input of shape {shape} must be 4-D (N, C, H, W)")
    for name, value, low in ((f"{names}_h", filter_h, 1), (f"{names}_w", filter_w, 1), ("stride", stride, 1)):
        if not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"{who}: {name} must be an integer >= {low}, got {value!r}")
    if not isinstance(pad, int | np.integer) or pad < 0:
        raise ValueError(f"{who}: pad must be an integer >= 0, got {pad!r}")
    _, _, h, w = shape
    if filter_h > h + 2 * pad or filter_w > w + 2 * pad:
        raise ValueError(
            f"{who}: a {filter_h}x{filter_w} {names} does not fit an input of shape {shape} "
            f"padded by {pad} (padded size {h + 2 * pad}x{w + 2 * pad})"
        )
    return (h + 2 * pad - filter_h) // stride + 1, (w + 2 * pad - filter_w) // stride + 1


def _windows(
    img: Array,
    filter_h: int,
    filter_w: int,
    stride: int,
    out: tuple[int, int],
    axes: tuple[int, int] = (2, 3),
) -> Array:
    """A read-only view of every window of a padded image: (N, C, out_h, out_w, filter_h, filter_w) for
    NCHW (the image's ``axes`` are its height and width; the window's axes come last)."""
    view = sliding_window_view(img, (filter_h, filter_w), axis=axes)
    steps: list[slice] = [slice(None)] * view.ndim
    for axis, n in zip(axes, out, strict=True):
        steps[axis] = slice(None, stride * (n - 1) + 1, stride)
    return view[tuple(steps)]


def _padded(x: Array, pad: int, fill: float = 0.0) -> Array:
    if pad == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=fill)


def _add_windows(grad: Array, shape: Shape, stride: int, pad: int) -> Array:
    """The adjoint of ``_windows``: grad (N, C, out_h, out_w, fh, fw) added into an image of ``shape``."""
    # one contiguous (N, C, out_h, out_w) block per filter position, read in order
    return _add_blocks(np.ascontiguousarray(grad.transpose(4, 5, 0, 1, 2, 3)), shape, stride, pad)


def _add_blocks(blocks: Array, shape: Shape, stride: int, pad: int) -> Array:
    """blocks[i, j] (N, C, out_h, out_w), the gradient at filter position (i, j) of every window, added
    into an image of ``shape``: one strided ``+=`` per filter position, each over every window at once, so
    that overlapping windows, met in different iterations, add up."""
    n, c, h, w = shape
    fh, fw, _, _, out_h, out_w = blocks.shape
    img = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=blocks.dtype)
    for i in range(fh):
        for j in range(fw):
            img[:, :, i : i + stride * out_h : stride, j : j + stride * out_w : stride] += blocks[i, j]
    return img[:, :, pad : pad + h, pad : pad + w] if pad else img


def im2col(input_data: ArrayLike, filter_h: int, filter_w: int, stride: int = 1, pad: int = 0) -> Array:
    """col[(n, y, x), (c, i, j)] = padded[n, c, y * stride + i, x * stride + j]: (N*out_h*out_w, C*fh*fw)."""
    x = np.asarray(input_data)
    out = _geometry("im2col", x.shape, filter_h, filter_w, stride, pad)
    view = _windows(_padded(x, pad), filter_h, filter_w, stride, out)
    n, c = x.shape[:2]
    col = view.transpose(0, 2, 3, 1, 4, 5).reshape(n * out[0] * out[1], c * filter_h * filter_w)
    # a 1x1 filter on one channel reshapes without a copy: the caller's image must not come back as col
    return col.copy() if np.may_share_memory(col, x) else col


def col2im(
    col: ArrayLike, input_shape: Shape, filter_h: int, filter_w: int, stride: int = 1, pad: int = 0
) -> Array:
    """The adjoint of ``im2col``: every row of ``col`` added back into its window; the padding cropped."""
    shape = tuple(int(s) for s in input_shape)
    out_h, out_w = _geometry("col2im", shape, filter_h, filter_w, stride, pad)
    c_arr = np.asarray(col)
    n, c = shape[:2]
    want = (n * out_h * out_w, c * filter_h * filter_w)
    if c_arr.shape != want:
        raise ValueError(
            f"col2im: col of shape {c_arr.shape} does not match input_shape {shape} with a "
            f"{filter_h}x{filter_w} filter, stride {stride}, pad {pad}: expected {want}"
        )
    grad = c_arr.reshape(n, out_h, out_w, c, filter_h, filter_w).transpose(0, 3, 1, 2, 4, 5)
    return _add_windows(grad, shape, stride, pad)


def _of_rank(layer: str, name: str, value: Any, ndim: int) -> Array:
    arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    if arr.ndim != ndim:
        raise ValueError(f"{layer}: {name} of shape {arr.shape} must be {ndim}-D")
    return arr


class Convolution:
    """out[n, f] = sum over c, i, j of W[f, c, i, j] * padded[n, c, y*stride + i, x*stride + j] + b[f].

    backward: db[f] = sum of dout over n, y, x; dW[f, c, i, j] = sum of dout[n, f, y, x] times the window
    element it multiplied; dx = col2im of dout contracted with W (overlapping windows add).
    W (FN, C, FH, FW) and b (FN,) are held by reference, so an optimizer's in-place update is seen.
    """

    def __init__(self, W: ArrayLike, b: ArrayLike, stride: int = 1, pad: int = 0) -> None:
        self.W = _of_rank("Convolution.__init__", "W", W, 4)
        self.b = b if isinstance(b, np.ndarray) else np.asarray(b)
        if self.b.shape != (self.W.shape[0],):
            raise ValueError(
                f"Convolution.__init__: b of shape {self.b.shape} does not match W of shape "
                f"{self.W.shape}; expected ({self.W.shape[0]},)"
            )
        self.stride, self.pad = stride, pad
        self.x: Array | None = None
        self._col: Array | None = None
        self._out = (0, 0)
        self.dW: Array | None = None
        self.db: Array | None = None

    def forward(self, x: ArrayLike) -> Array:
        xa = _of_rank("Convolution.forward", "x", x, 4)
        fn, c, fh, fw = self.W.shape
        if xa.shape[1] != c:
            raise ValueError(
                f"Convolution.forward: x of shape {xa.shape} has {xa.shape[1]} channels "
                f"but W of shape {self.W.shape} expects {c}"
            )
        oh, ow = _geometry("Convolution.forward", xa.shape, fh, fw, self.stride, self.pad)
        self.x, self._out = xa, (oh, ow)
        # The column matrix with channels last, (N*oh*ow, fh*fw*C): it copies from a channel-last image
        # in contiguous runs, faster than the book's (C, fh, fw) order; W is reordered to match. It is
        # kept for dW.
        self._col = self._columns(xa, oh, ow)
        y = self._col @ self._filters().T + self.b  # (N * oh * ow, FN)
        return np.ascontiguousarray(y.reshape(xa.shape[0], oh, ow, fn).transpose(0, 3, 1, 2))

    def _filters(self) -> Array:
        """W as (FN, fh*fw*C), in the column matrix's order."""
        return self.W.transpose(0, 2, 3, 1).reshape(self.W.shape[0], -1)

    def _columns(self, x: Array, oh: int, ow: int) -> Array:
        n, c = x.shape[:2]
        _, _, fh, fw = self.W.shape
        s, p = self.stride, self.pad
        if c == 1:  # one channel: the book's order is the same, and one copy of the window view is faster
            return im2col(x, fh, fw, s, p)
        img = np.ascontiguousarray(_padded(x, p).transpose(0, 2, 3, 1))  # (N, H, W, C)
        view = _windows(img, fh, fw, s, (oh, ow), axes=(1, 2))
        # (N, oh, ow, C, fh, fw) -> (N, oh, ow, fh, fw, C): one copy that reads runs of fw * C values
        return view.transpose(0, 1, 2, 4, 5, 3).reshape(n * oh * ow, fh * fw * c)

    def backward(self, dout: ArrayLike) -> Array:
        if self.x is None or self._col is None:
            raise not_ready("Convolution")
        fn, c, fh, fw = self.W.shape
        n, (oh, ow) = self.x.shape[0], self._out
        check_dout("Convolution", dout, (n, fn, oh, ow))
        d = np.asarray(dout).transpose(0, 2, 3, 1).reshape(-1, fn)  # (N * oh * ow, FN)
        self.db = d.sum(axis=0).astype(self.b.dtype, copy=False)
        dw = (d.T @ self._col).reshape(fn, fh, fw, c).transpose(0, 3, 1, 2)
        self.dW = np.ascontiguousarray(dw, dtype=self.W.dtype)
        return self._dx(d, self.x.shape).astype(self.x.dtype, copy=False)

    def _dx(self, d: Array, shape: Shape) -> Array:
        """col2im of the column gradient d @ W, (N*oh*ow, FN) -> NCHW, with overlapping windows added."""
        n, c, h, w = shape
        _, _, fh, fw = self.W.shape
        oh, ow = self._out
        if c == 1:  # one channel: the column gradient in one product, added in the book's layout
            dcol = (self._filters().T @ d.T).reshape(fh, fw, c, n, oh, ow)
            return _add_blocks(dcol, (c, n, h, w), self.stride, self.pad).reshape(shape)
        # several channels: one product per filter position, (N*oh*ow, FN) @ (FN, C), added into a
        # channel-last image, where each window row is one contiguous run of ow * C values (the
        # channel-first runs are only ow long, and a strided += over short runs is what col2im spends)
        s, p = self.stride, self.pad
        img = np.zeros((n, h + 2 * p, w + 2 * p, c), dtype=np.result_type(d, self.W))
        per_position = self.W.transpose(2, 3, 0, 1)  # (fh, fw, FN, C)
        for i in range(fh):
            for j in range(fw):
                window = img[:, i : i + s * oh : s, j : j + s * ow : s, :]
                window += (d @ per_position[i, j]).reshape(n, oh, ow, c)
        if p:
            img = img[:, p : p + h, p : p + w, :]
        return np.ascontiguousarray(img.transpose(0, 3, 1, 2))


class Pooling:
    """Max pooling: out[n, c, y, x] = max of the window padded[n, c, y*stride : +pool_h, x*stride : +pool_w].

    Padding is -inf, so it never wins (the book pads with 0 and mis-sizes the output when pad > 0). The
    backward routes each dout to its window's maximum; at a tie, to the first maximum in row-major order, as
    the book's argmax does and as ``jax.lax.reduce_window`` differentiates. pad must be smaller than the pool
    so that every window holds at least one real element.
    """

    def __init__(self, pool_h: int, pool_w: int, stride: int = 2, pad: int = 0) -> None:
        sizes = (pad, pool_h, pool_w)
        if all(isinstance(v, int | np.integer) for v in sizes) and pad >= min(pool_h, pool_w):
            raise ValueError(
                f"Pooling.__init__: pad {pad} must be smaller than the {pool_h}x{pool_w} pool, "
                "or a window could hold nothing but padding"
            )
        self.pool_h, self.pool_w, self.stride, self.pad = pool_h, pool_w, stride, pad
        self.x: Array | None = None
        self.arg_max: Array | None = None

    def forward(self, x: ArrayLike) -> Array:
        xa = _of_rank("Pooling.forward", "x", x, 4)
        if xa.dtype.kind not in "fc":
            xa = xa.astype(np.float64)  # the -inf padding needs a float
        oh, ow = _geometry(
            "Pooling.forward", xa.shape, self.pool_h, self.pool_w, self.stride, self.pad, "pool"
        )
        img, s = _padded(xa, self.pad, -np.inf), self.stride
        # a running maximum over the pool_h * pool_w window positions, each a strided slice of every
        # window at once; a later position takes over only when strictly larger: the first maximum wins
        best = img[:, :, : s * oh : s, : s * ow : s].copy()
        arg = np.zeros(best.shape, dtype=np.min_scalar_type(self.pool_h * self.pool_w))
        for k in range(1, self.pool_h * self.pool_w):
            i, j = divmod(k, self.pool_w)
            here = img[:, :, i : i + s * oh : s, j : j + s * ow : s]
            larger = (here > best).view(np.uint8)
            np.maximum(best, here, out=best)  # np.where would read the strided slice slowly
            # positions come in increasing k and take over only when strictly larger: max(arg, k) there
            np.maximum(arg, larger * arg.dtype.type(k), out=arg)
        self.x, self.arg_max = xa, arg
        return best

    def backward(self, dout: ArrayLike) -> Array:
        if self.x is None or self.arg_max is None:
            raise not_ready("Pooling")
        check_dout("Pooling", dout, self.arg_max.shape)
        d = np.asarray(dout).astype(self.x.dtype, copy=False)
        n, c, h, w = self.x.shape
        p, s, (oh, ow) = self.pad, self.stride, d.shape[2:]
        img = np.zeros((n, c, h + 2 * p, w + 2 * p), dtype=d.dtype)
        # each window position takes dout where it won; multiplying by the 0/1 mask is several times
        # faster than np.where, and exact unless dout holds an inf or a NaN (0 * inf is NaN)
        finite = bool(np.all(np.isfinite(d)))
        for k in range(self.pool_h * self.pool_w):
            i, j = divmod(k, self.pool_w)
            won = self.arg_max == k
            img[:, :, i : i + s * oh : s, j : j + s * ow : s] += d * won if finite else np.where(won, d, 0)
        return img[:, :, p : p + h, p : p + w] if p else img


class Im2col:
    """``im2col`` as a layer, so that the oracle can check it: forward(x) = im2col(x, ...), and backward(dcol)
    = col2im(dcol, x.shape, ...), which is exactly im2col's vector-Jacobian product."""

    def __init__(self, filter_h: int, filter_w: int, stride: int = 1, pad: int = 0) -> None:
        self.filter_h, self.filter_w, self.stride, self.pad = filter_h, filter_w, stride, pad
        self.input_shape: Shape | None = None

    def forward(self, x: ArrayLike) -> Array:
        xa = np.asarray(x)
        col = im2col(xa, self.filter_h, self.filter_w, self.stride, self.pad)
        self.input_shape = xa.shape
        return col

    def backward(self, dout: ArrayLike) -> Array:
        if self.input_shape is None:
            raise not_ready("Im2col")
        return col2im(dout, self.input_shape, self.filter_h, self.filter_w, self.stride, self.pad)


class Col2im:
    """``col2im`` as a layer: forward(col) = col2im(col, input_shape, ...), and backward(dx) = im2col(dx,
    ...), col2im's vector-Jacobian product (the two are each other's adjoints)."""

    def __init__(
        self, input_shape: Shape, filter_h: int, filter_w: int, stride: int = 1, pad: int = 0
    ) -> None:
        self.input_shape = tuple(int(s) for s in input_shape)
        self.filter_h, self.filter_w, self.stride, self.pad = filter_h, filter_w, stride, pad
        self.ready = False

    def forward(self, col: ArrayLike) -> Array:
        x = col2im(col, self.input_shape, self.filter_h, self.filter_w, self.stride, self.pad)
        self.ready = True
        return x

    def backward(self, dout: ArrayLike) -> Array:
        if not self.ready:
            raise not_ready("Col2im")
        check_dout("Col2im", dout, self.input_shape)
        return im2col(dout, self.filter_h, self.filter_w, self.stride, self.pad)
