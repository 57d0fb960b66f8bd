"""The book's networks (chapters 5-8), built from this package's layers, with the book's API.

Every network has ``params`` (a dict of arrays, held by its layers, so that an optimizer's in-place
update is seen), ``layers`` (an ordered dict), ``last_layer`` (SoftmaxWithLoss), ``predict``, ``loss``,
``accuracy``, ``gradient`` (by backpropagation, a dict keyed like ``params``), ``numerical_gradient`` (by
central differences) and ``save_params``/``load_params`` (``.npz`` files). Weights are drawn with
``np.random.randn`` as in the book: seed NumPy's global generator for repeatable networks.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .activations import Relu, Sigmoid
from .affine import Affine
from .convolution import Convolution, Pooling
from .gradient import numerical_gradient as _numerical
from .losses import SoftmaxWithLoss
from .normalization import BatchNormalization, Dropout

__all__ = ["DeepConvNet", "MultiLayerNet", "MultiLayerNetExtend", "SimpleConvNet", "TwoLayerNet"]

Array = NDArray[Any]
_TRAIN_AWARE = (Dropout, BatchNormalization)


def init_scale(weight_init_std: float | str, fan_in: int) -> float:
    """The book's initial scale: 'relu'/'he' -> sqrt(2 / fan_in), 'sigmoid'/'xavier' -> sqrt(1 / fan_in),
    a number -> itself."""
    name = str(weight_init_std).lower()
    if name in ("relu", "he"):
        return math.sqrt(2.0 / fan_in)
    if name in ("sigmoid", "xavier"):
        return math.sqrt(1.0 / fan_in)
    try:
        return float(weight_init_std)
    except ValueError:
        raise ValueError(
            f"weight_init_std must be a number, 'relu'/'he' or 'sigmoid'/'xavier'; got {weight_init_std!r}"
        ) from None


class _Network:
    """What every network shares; subclasses build ``params``, ``layers`` and ``_grad_of``."""

    params: dict[str, Array]
    layers: OrderedDict[str, Any]
    last_layer: SoftmaxWithLoss
    weight_decay_lambda: float = 0.0
    _grad_of: dict[str, tuple[str, str]]
    """params key -> (layers key, gradient attribute): where ``gradient`` reads each one."""

    @property
    def lastLayer(self) -> SoftmaxWithLoss:
        return self.last_layer

    def predict(self, x: ArrayLike, train_flg: bool = False) -> Array:
        """The scores before the softmax; Dropout and BatchNormalization get ``train_flg``."""
        out: Any = x
        for layer in self.layers.values():
            out = layer.forward(out, train_flg) if isinstance(layer, _TRAIN_AWARE) else layer.forward(out)
        return np.asarray(out)

    def _decay(self) -> float:
        """0.5 * lambda * sum of W**2 over the affine and convolution weights (weight decay)."""
        if not self.weight_decay_lambda:
            return 0.0
        weights = (self.params[k] for k in self._grad_of if k.startswith("W"))
        return 0.5 * self.weight_decay_lambda * float(sum(np.sum(w**2) for w in weights))

    def loss(self, x: ArrayLike, t: ArrayLike, train_flg: bool = False) -> float:
        """Mean cross entropy of softmax(predict(x)) against t (labels or one-hot), plus weight decay."""
        return float(self.last_layer.forward(self.predict(x, train_flg), t)) + self._decay()

    def accuracy(self, x: ArrayLike, t: ArrayLike, batch_size: int = 100) -> float:
        """The share of samples whose highest score is their label, predicted in batches (test mode)."""
        xa, ta = np.asarray(x), np.asarray(t)
        if ta.ndim != 1:
            ta = np.argmax(ta, axis=1)
        if len(xa) == 0:
            raise ValueError(f"{type(self).__name__}.accuracy: x of shape {xa.shape} holds no sample")
        hits = 0
        for start in range(0, len(xa), batch_size):
            y = self.predict(xa[start : start + batch_size], train_flg=False)
            hits += int(np.sum(np.argmax(y, axis=1) == ta[start : start + batch_size]))
        return hits / len(xa)

    def _train_loss(self, x: ArrayLike, t: ArrayLike) -> float:
        return self.loss(x, t, train_flg=True)

    def gradient(self, x: ArrayLike, t: ArrayLike) -> dict[str, Array]:
        """Every parameter's gradient of the training loss, by one forward and one backward pass."""
        self._train_loss(x, t)
        dout: Any = self.last_layer.backward(1)
        for layer in reversed(self.layers.values()):
            dout = layer.backward(dout)
        grads = {}
        for key, (layer, attr) in self._grad_of.items():
            grad = getattr(self.layers[layer], attr)
            if key.startswith("W") and self.weight_decay_lambda:
                grad = grad + self.weight_decay_lambda * self.params[key]
            grads[key] = grad
        return grads

    def numerical_gradient(self, x: ArrayLike, t: ArrayLike, h: float = 1e-4) -> dict[str, Array]:
        """Every parameter's gradient by central differences of the training loss, with step ``h`` (the
        book's 1e-4; a smaller one keeps a step from crossing a relu kink or a pooling near-tie). Dropout
        draws the same masks for every evaluation (NumPy's global state is reset before each), so the
        differences measure one function; the parameters are restored exactly."""
        state = np.random.get_state()

        def f(_: Any) -> float:
            np.random.set_state(state)
            return self._train_loss(x, t)

        try:
            return {key: _numerical(f, self.params[key], h) for key in self._grad_of}
        finally:
            np.random.set_state(state)

    def save_params(self, file_name: str | os.PathLike[str] = "params.npz") -> None:
        """Write every parameter to an ``.npz`` file."""
        save: Any = np.savez  # its stub types every keyword as allow_pickle's bool
        with open(file_name, "wb") as f:  # a file object: np.savez would add .npz to a bare name
            save(f, **self.params)

    def load_params(self, file_name: str | os.PathLike[str] = "params.npz") -> None:
        """Read parameters saved by ``save_params`` into this network's own arrays (its layers hold them),
        after checking that the file has exactly this network's parameters with their shapes."""
        name = type(self).__name__
        try:
            with np.load(file_name, allow_pickle=False) as data:
                loaded = {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError) as exc:
            raise ValueError(
                f"{name}.load_params: {os.fspath(file_name)!r} is not a parameter file: {exc}"
            ) from None
        _check_loaded(name, self.params, loaded)
        for key, value in loaded.items():
            self.params[key][...] = value


def _check_loaded(name: str, params: Mapping[str, Array], loaded: Mapping[str, Array]) -> None:
    missing, extra = sorted(set(params) - set(loaded)), sorted(set(loaded) - set(params))
    if missing or extra:
        raise ValueError(f"{name}.load_params: the file lacks {missing} and has unknown {extra}")
    for key, value in loaded.items():
        if value.shape != params[key].shape:
            raise ValueError(
                f"{name}.load_params: {key} has shape {value.shape} in the file but {params[key].shape} here"
            )


class TwoLayerNet(_Network):
    """Affine - Relu - Affine - SoftmaxWithLoss (book section 5.7)."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int, weight_init_std: float = 0.01):
        self.params = {
            "W1": weight_init_std * np.random.randn(input_size, hidden_size),
            "b1": np.zeros(hidden_size),
            "W2": weight_init_std * np.random.randn(hidden_size, output_size),
            "b2": np.zeros(output_size),
        }
        self.layers = OrderedDict(
            Affine1=Affine(self.params["W1"], self.params["b1"]),
            Relu1=Relu(),
            Affine2=Affine(self.params["W2"], self.params["b2"]),
        )
        self.last_layer = SoftmaxWithLoss()
        self._grad_of = {f"{p}{i}": (f"Affine{i}", f"d{p}") for i in (1, 2) for p in ("W", "b")}


class MultiLayerNetExtend(_Network):
    """(Affine - [BatchNorm] - activation - [Dropout]) per hidden layer, then Affine - SoftmaxWithLoss,
    with weight decay (book sections 6.1-6.4). ``loss`` runs in test mode unless ``train_flg=True``;
    ``gradient`` and ``numerical_gradient`` use the training loss."""

    def __init__(
        self,
        input_size: int,
        hidden_size_list: Sequence[int],
        output_size: int,
        activation: str = "relu",
        weight_init_std: float | str = "relu",
        weight_decay_lambda: float = 0,
        use_dropout: bool = False,
        dropout_ration: float = 0.5,
        use_batchnorm: bool = False,
    ) -> None:
        activations = {"relu": Relu, "sigmoid": Sigmoid}
        if activation not in activations:
            raise ValueError(
                f"{type(self).__name__}: activation must be 'relu' or 'sigmoid', got {activation!r}"
            )
        self.input_size, self.output_size = input_size, output_size
        self.hidden_size_list = list(hidden_size_list)
        self.hidden_layer_num = len(self.hidden_size_list)
        self.weight_decay_lambda = weight_decay_lambda
        self.use_dropout, self.use_batchnorm = use_dropout, use_batchnorm
        sizes = [input_size, *self.hidden_size_list, output_size]
        self.params, self.layers, self._grad_of = {}, OrderedDict(), {}
        for i in range(1, len(sizes)):
            self._affine(i, sizes[i - 1], sizes[i], weight_init_std)
            if i == len(sizes) - 1:
                break
            if use_batchnorm:
                self._batchnorm(i, sizes[i])
            self.layers[f"Activation_function{i}"] = activations[activation]()
            if use_dropout:
                self.layers[f"Dropout{i}"] = Dropout(dropout_ration)
        self.last_layer = SoftmaxWithLoss()

    def _affine(self, i: int, fan_in: int, fan_out: int, weight_init_std: float | str) -> None:
        self.params[f"W{i}"] = init_scale(weight_init_std, fan_in) * np.random.randn(fan_in, fan_out)
        self.params[f"b{i}"] = np.zeros(fan_out)
        self.layers[f"Affine{i}"] = Affine(self.params[f"W{i}"], self.params[f"b{i}"])
        self._grad_of.update({f"W{i}": (f"Affine{i}", "dW"), f"b{i}": (f"Affine{i}", "db")})

    def _batchnorm(self, i: int, size: int) -> None:
        self.params[f"gamma{i}"], self.params[f"beta{i}"] = np.ones(size), np.zeros(size)
        self.layers[f"BatchNorm{i}"] = BatchNormalization(self.params[f"gamma{i}"], self.params[f"beta{i}"])
        self._grad_of.update(
            {f"gamma{i}": (f"BatchNorm{i}", "dgamma"), f"beta{i}": (f"BatchNorm{i}", "dbeta")}
        )


class MultiLayerNet(MultiLayerNetExtend):
    """(Affine - activation) per hidden layer, then Affine - SoftmaxWithLoss, with weight decay (book
    section 6.4): MultiLayerNetExtend without Dropout or BatchNormalization."""

    def __init__(
        self,
        input_size: int,
        hidden_size_list: Sequence[int],
        output_size: int,
        activation: str = "relu",
        weight_init_std: float | str = "relu",
        weight_decay_lambda: float = 0,
    ) -> None:
        super().__init__(
            input_size, hidden_size_list, output_size, activation, weight_init_std, weight_decay_lambda
        )


def _conv_out(size: int, param: Mapping[str, int]) -> int:
    return (size + 2 * param["pad"] - param["filter_size"]) // param["stride"] + 1


def _pool_out(size: int) -> int:
    return (size - 2) // 2 + 1


class SimpleConvNet(_Network):
    """Convolution - Relu - Pooling(2x2, stride 2) - Affine - Relu - Affine - SoftmaxWithLoss (book section
    7.5). The flattened size after pooling is computed from ``input_dim``, so any image size works."""

    def __init__(
        self,
        input_dim: tuple[int, int, int] = (1, 28, 28),
        conv_param: Mapping[str, int] | None = None,
        hidden_size: int = 100,
        output_size: int = 10,
        weight_init_std: float = 0.01,
    ) -> None:
        conv = {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1, **(conv_param or {})}
        c, h, w = input_dim
        fn, fs = conv["filter_num"], conv["filter_size"]
        oh, ow = _conv_out(h, conv), _conv_out(w, conv)
        if oh < 2 or ow < 2:
            raise ValueError(
                f"SimpleConvNet: input_dim {input_dim} leaves a {oh}x{ow} map, too small to pool"
            )
        flat = fn * _pool_out(oh) * _pool_out(ow)
        self.params = {
            "W1": weight_init_std * np.random.randn(fn, c, fs, fs),
            "b1": np.zeros(fn),
            "W2": weight_init_std * np.random.randn(flat, hidden_size),
            "b2": np.zeros(hidden_size),
            "W3": weight_init_std * np.random.randn(hidden_size, output_size),
            "b3": np.zeros(output_size),
        }
        self.layers = OrderedDict(
            Conv1=Convolution(self.params["W1"], self.params["b1"], conv["stride"], conv["pad"]),
            Relu1=Relu(),
            Pool1=Pooling(pool_h=2, pool_w=2, stride=2),
            Affine1=Affine(self.params["W2"], self.params["b2"]),
            Relu2=Relu(),
            Affine2=Affine(self.params["W3"], self.params["b3"]),
        )
        self.last_layer = SoftmaxWithLoss()
        owners = {1: "Conv1", 2: "Affine1", 3: "Affine2"}
        self._grad_of = {f"{p}{i}": (layer, f"d{p}") for i, layer in owners.items() for p in ("W", "b")}


_DEEP_CONV = (
    {"filter_num": 16, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 16, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 32, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 32, "filter_size": 3, "pad": 2, "stride": 1},
    {"filter_num": 64, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 64, "filter_size": 3, "pad": 1, "stride": 1},
)


class DeepConvNet(_Network):
    """(conv - relu - conv - relu - pool) x 3, then affine - relu - dropout - affine - dropout - softmax
    (book section 8.1), He-initialised. The flattened size is computed from ``input_dim`` (the book fixes
    64 * 4 * 4, right for 28x28 only). As in the book, ``loss`` runs in training mode (Dropout on) unless
    ``train_flg=False``; ``accuracy`` runs in test mode."""

    def __init__(
        self,
        input_dim: tuple[int, int, int] = (1, 28, 28),
        conv_param_1: Mapping[str, int] = _DEEP_CONV[0],
        conv_param_2: Mapping[str, int] = _DEEP_CONV[1],
        conv_param_3: Mapping[str, int] = _DEEP_CONV[2],
        conv_param_4: Mapping[str, int] = _DEEP_CONV[3],
        conv_param_5: Mapping[str, int] = _DEEP_CONV[4],
        conv_param_6: Mapping[str, int] = _DEEP_CONV[5],
        hidden_size: int = 50,
        output_size: int = 10,
    ) -> None:
        convs = (conv_param_1, conv_param_2, conv_param_3, conv_param_4, conv_param_5, conv_param_6)
        self.params, self.layers, self._grad_of = {}, OrderedDict(), {}
        channels, h, w = input_dim
        for i, conv in enumerate(convs, start=1):
            self._conv(i, channels, conv)
            channels, h, w = conv["filter_num"], _conv_out(h, conv), _conv_out(w, conv)
            if i % 2 == 0:
                if h < 2 or w < 2:
                    raise ValueError(
                        f"DeepConvNet: input_dim {input_dim} leaves a {h}x{w} map before pool {i // 2}"
                    )
                self.layers[f"Pool{i // 2}"] = Pooling(pool_h=2, pool_w=2, stride=2)
                h, w = _pool_out(h), _pool_out(w)
        self._affine(7, channels * h * w, hidden_size)
        self.layers["Relu7"] = Relu()
        self.layers["Dropout7"] = Dropout(0.5)
        self._affine(8, hidden_size, output_size)
        self.layers["Dropout8"] = Dropout(0.5)
        self.last_layer = SoftmaxWithLoss()

    def _conv(self, i: int, channels: int, conv: Mapping[str, int]) -> None:
        fn, fs = conv["filter_num"], conv["filter_size"]
        self.params[f"W{i}"] = init_scale("he", channels * fs * fs) * np.random.randn(fn, channels, fs, fs)
        self.params[f"b{i}"] = np.zeros(fn)
        self.layers[f"Conv{i}"] = Convolution(
            self.params[f"W{i}"], self.params[f"b{i}"], conv["stride"], conv["pad"]
        )
        self.layers[f"Relu{i}"] = Relu()
        self._grad_of.update({f"W{i}": (f"Conv{i}", "dW"), f"b{i}": (f"Conv{i}", "db")})

    def _affine(self, i: int, fan_in: int, fan_out: int) -> None:
        self.params[f"W{i}"] = init_scale("he", fan_in) * np.random.randn(fan_in, fan_out)
        self.params[f"b{i}"] = np.zeros(fan_out)
        self.layers[f"Affine{i}"] = Affine(self.params[f"W{i}"], self.params[f"b{i}"])
        self._grad_of.update({f"W{i}": (f"Affine{i}", "dW"), f"b{i}": (f"Affine{i}", "db")})

    def loss(self, x: ArrayLike, t: ArrayLike, train_flg: bool = True) -> float:
        return super().loss(x, t, train_flg)
