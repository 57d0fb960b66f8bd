"""Convolution and max pooling over NCHW images, with im2col and col2im (book sections 7.4-7.5).

``im2col`` lays every filter window of an image out as one row, in the book's exact layout: rows ordered
(N, out_h, out_w), columns (C, filter_h, filter_w). ``col2im`` is its adjoint: it adds each row back into
the window it came from, so where windows overlap (a stride smaller than the filter) values are summed,
never overwritten. Both work on strided views (``sliding_window_view``) rather than a Python loop over
the output; ``Convolution`` multiplies a column matrix by the filters with BLAS, as the book does, and
keeps it for ``dW`` (its own, transposed). At stride 1 its ``dx`` is one
product of dout laid out on the padded image's grid, added back as fh*fw shifted contiguous blocks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view
from numpy.typing import ArrayLike, NDArray

from ._errors import check_dout, like, not_ready
from ._work import Work
from ._work import kept as _kept

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


def _windows(img: Array, filter_h: int, filter_w: int, stride: int, out: tuple[int, int]) -> Array:
    """A read-only view of every window of a padded NCHW image: (N, C, out_h, out_w, filter_h, filter_w)."""
    view = sliding_window_view(img, (filter_h, filter_w), axis=(2, 3))
    out_h, out_w = out
    return view[:, :, : stride * (out_h - 1) + 1 : stride, : stride * (out_w - 1) + 1 : stride]


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
        self._col_t: Array | None = None
        self._out = (0, 0)
        self._work: Work = {}  # see _kept
        self.dW: Array | None = None
        self.db: Array | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickled and copied without the work arrays (they are rebuilt on the next call); the column
        matrix is a work array, so a copy takes its own (even a shallow copy, whose original would
        otherwise overwrite it)."""
        col_t = None if self._col_t is None else self._col_t.copy()
        return {**self.__dict__, "_work": {}, "_col_t": col_t}

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
        n = xa.shape[0]
        # The book's column matrix transposed, (C*fh*fw, N*oh*ow), kept for dW. Its rows are W's own
        # (C, fh, fw) order, and the product W @ col_t comes out filter-major, so reordering it to NCHW
        # copies runs of oh*ow values (the book's col @ W.T would copy runs of one value). The bias is
        # added after the product, as the book and the reference do: carried inside the product as a row
        # of ones it would round differently, and flip rounding-level ties in a max pooling downstream.
        self._col_t = col_t = self._columns_t(xa, oh, ow)
        filters = self.W.reshape(fn, -1)
        y = _kept(self._work, "y", (fn, col_t.shape[1]), np.result_type(col_t, filters))
        np.matmul(filters, col_t, out=y)
        out = np.empty((n, fn, oh, ow), dtype=np.result_type(y, self.b))
        out.reshape(n, fn, oh * ow)[...] = y.reshape(fn, n, oh * ow).transpose(1, 0, 2)
        out += self.b[:, None, None]
        return out

    def _columns_t(self, x: Array, oh: int, ow: int) -> Array:
        """col_t[(c, i, j), (n, y, x)] = padded[n, c, y*stride + i, x*stride + j]: one copy of a strided
        view of the padded image, each run ow values long."""
        n, c, h, w = x.shape
        _, _, fh, fw = self.W.shape
        s, p = self.stride, self.pad
        img = x
        if p:  # the padded image; its zero border is never written
            img = _kept(self._work, "image", (n, c, h + 2 * p, w + 2 * p), x.dtype, zeros=(p,))
            img[:, :, p : p + h, p : p + w] = x
        sn, sc, sh, sw = img.strides
        view = as_strided(img, (c, fh, fw, n, oh, ow), (sc, sh, sw, sn, s * sh, s * sw), writeable=False)
        col_t = _kept(self._work, "col_t", (c * fh * fw, n * oh * ow), x.dtype)
        col_t.reshape(view.shape)[...] = view
        return col_t

    def backward(self, dout: ArrayLike) -> Array:
        if self.x is None or self._col_t is None:
            raise not_ready("Convolution")
        fn, c = self.W.shape[:2]
        n, (oh, ow) = self.x.shape[0], self._out
        check_dout("Convolution", dout, (n, fn, oh, ow))
        dout_a = np.asarray(dout)
        # dout as (N*oh*ow, FN), the column matrix's rows against the filters; integers and booleans
        # become float64, so that the sums (db is one) cannot wrap around
        dtype = dout_a.dtype if dout_a.dtype.kind in "fc" else np.dtype(np.float64)
        d = _kept(self._work, "dout", (n * oh * ow, fn), dtype)
        d.reshape(n, oh, ow, fn)[...] = dout_a.transpose(0, 2, 3, 1)
        # db: the column sums as one vector-matrix product (a third of the time of sum(axis=0))
        self.db = like(np.ones(d.shape[0], dtype=d.dtype) @ d, self.b)
        self.dW = like(np.ascontiguousarray((self._col_t @ d).T.reshape(self.W.shape)), self.W)
        # the shifted-grid product multiplies W by the grid's zeros too: exact unless W holds inf or NaN
        if c > 1 and self.stride == 1 and np.isfinite(self.W).all():
            dx = self._dx_shifted(dout_a, self.x.shape)
        else:
            dx = self._dx_blocks(d, self.x.shape)
        return like(dx, self.x)

    def _dx_blocks(self, d: Array, shape: Shape) -> Array:
        """col2im of the column gradient: one product, (C, fh, fw, N, oh, ow), added back one filter
        position at a time (for one channel its blocks are already the image's)."""
        n, c, h, w = shape
        fn, _, fh, fw = self.W.shape
        oh, ow = self._out
        dcol = (self.W.reshape(fn, -1).T @ d.T).reshape(c, fh, fw, n, oh, ow)
        if c == 1:
            return _add_blocks(dcol[0][:, :, None], (c, n, h, w), self.stride, self.pad).reshape(shape)
        return _add_blocks(dcol.transpose(1, 2, 3, 0, 4, 5), shape, self.stride, self.pad)

    def _dx_shifted(self, dout: Array, shape: Shape) -> Array:
        """dx at stride 1, where col2im is a sum of shifted copies of one product.

        Lay dout out channel-first on the padded image's own grid, D[f, (n, y, x)] = dout[n, f, y, x] for
        y < oh, x < ow and 0 elsewhere, flattened. Then filter position (i, j) sends flat index s to
        s + i*Wp + j, so dpadded[c] = sum over (i, j) of (W[:, c, i, j] @ D) shifted by i*Wp + j: one
        product and fh*fw contiguous adds (the zeros of D absorb every window that would wrap a row).
        """
        n, c, h, w = shape
        fn, _, fh, fw = self.W.shape
        oh, ow = self._out
        hp, wp = h + 2 * self.pad, w + 2 * self.pad
        size = n * hp * wp
        dtype = np.result_type(dout, self.W)
        grid = _kept(self._work, "grid", (fn, n, hp, wp), dtype, zeros=(oh, ow))
        grid[:, :, :oh, :ow] = dout.transpose(1, 0, 2, 3)
        per_position = self.W.transpose(2, 3, 1, 0).reshape(fh * fw * c, fn)  # rows (i, j, c)
        products = _kept(self._work, "products", (fh * fw * c, size), dtype)
        np.matmul(per_position, grid.reshape(fn, size), out=products)
        img = _kept(self._work, "dimage", (c, size + (fh - 1) * wp + fw - 1), dtype)
        img[:, :size] = products[:c]  # position (0, 0) is not shifted: a copy, not zeros and an add
        img[:, size:] = 0  # the tail past the last image is discarded, but no add may meet stale inf
        for i in range(fh):
            for j in range(1 if i == 0 else 0, fw):
                k = (i * fw + j) * c
                img[:, i * wp + j : i * wp + j + size] += products[k : k + c]
        p = self.pad
        padded = img[:, :size].reshape(c, n, hp, wp)[:, :, p : p + h, p : p + w]
        dx = np.empty(shape, dtype=dtype)  # always new: at N = 1 the transposed view is contiguous
        dx[...] = padded.transpose(1, 0, 2, 3)
        return dx


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
        d = like(np.asarray(dout), self.x)  # so that dx has x's dtype
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
