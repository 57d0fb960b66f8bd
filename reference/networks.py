"""References for the book's networks: each network's training loss as one pure JAX function of its
parameters, composed from the layer references, so that ``jax.vjp`` gives the whole ``gradient()`` at once.

Sizes and switches (``hidden_size_list``, ``conv_param``, ``use_dropout``) arrive as plain values and are
compiled in; dropout masks arrive as the arrays the network drew (``mask1``, ``mask2``, ... in the order
of its Dropout layers); batch normalization runs in train mode, on the batch's own statistics. Targets are
integer labels (N,) or one-hot (N, C), as the book's SoftmaxWithLoss takes them.

Each takes ``eps``: None (the default, the oracle's reference) is the exact cross entropy; a number is the
book's ``-log(y + eps)`` (``cross_entropy_error``), the formula ``--allow epsilon`` accepts for the loss.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from reference._graph import Tap
from reference.activations import relu, relu_graph, sigmoid
from reference.affine import affine, affine_graph
from reference.convolution import convolution, convolution_graph, pooling, pooling_graph
from reference.losses import softmax_with_loss, softmax_with_loss_epsilon, softmax_with_loss_graph
from reference.normalization import batch_normalization, batch_normalization_graph, dropout


def _decay(weights: Sequence[jax.Array], weight_decay_lambda: float) -> jax.Array:
    """0.5 * lambda * sum of squares of every weight matrix (the book's weight decay)."""
    return 0.5 * weight_decay_lambda * sum((jnp.sum(w * w) for w in weights), jnp.zeros(()))


def _cross_entropy(scores: jax.Array, t: jax.Array, eps: float | None) -> jax.Array:
    """The mean softmax cross entropy of the scores: exact, or the book's -log(y + eps)."""
    return softmax_with_loss(scores, t) if eps is None else softmax_with_loss_epsilon(scores, t, eps)


def two_layer_net(
    W1: jax.Array,
    b1: jax.Array,
    W2: jax.Array,
    b2: jax.Array,
    x: jax.Array,
    t: jax.Array,
    *,
    eps: float | None = None,
    **sizes: Any,
) -> jax.Array:
    """softmax cross entropy of relu(x W1 + b1) W2 + b2."""
    return _cross_entropy(affine(relu(affine(x, W1, b1)), W2, b2), t, eps)


def _dropped(h: jax.Array, masks: list[jax.Array], ratio: float) -> jax.Array:
    return dropout(h, masks.pop(0), ratio, True)


def multi_layer_net_extend(
    x: jax.Array,
    t: jax.Array,
    *,
    hidden_size_list: Sequence[int],
    activation: str = "relu",
    weight_decay_lambda: float = 0.0,
    use_dropout: bool = False,
    dropout_ration: float = 0.5,
    use_batchnorm: bool = False,
    eps: float | None = None,
    **named: Any,
) -> jax.Array:
    """Per hidden layer: affine, [train-mode batch norm], activation, [dropout]; then affine and softmax
    cross entropy, plus weight decay on every W."""
    act = relu if activation == "relu" else sigmoid
    masks = [named[k] for k in sorted((k for k in named if k.startswith("mask")), key=lambda k: int(k[4:]))]
    h = x
    layers = len(hidden_size_list) + 1
    for i in range(1, layers):
        h = affine(h, named[f"W{i}"], named[f"b{i}"])
        if use_batchnorm:
            size = named[f"gamma{i}"].shape
            h = batch_normalization(h, named[f"gamma{i}"], named[f"beta{i}"], jnp.zeros(size), jnp.ones(size))
        h = act(h)
        if use_dropout:
            h = _dropped(h, masks, dropout_ration)
    scores = affine(h, named[f"W{layers}"], named[f"b{layers}"])
    weights = [named[f"W{i}"] for i in range(1, layers + 1)]
    return _cross_entropy(scores, t, eps) + _decay(weights, weight_decay_lambda)


def _pool2(h: jax.Array) -> jax.Array:
    return pooling(h, 2, 2, 2, 0)


def simple_conv_net(
    W1: jax.Array,
    b1: jax.Array,
    W2: jax.Array,
    b2: jax.Array,
    W3: jax.Array,
    b3: jax.Array,
    x: jax.Array,
    t: jax.Array,
    *,
    conv_param: Mapping[str, int],
    eps: float | None = None,
    **sizes: Any,
) -> jax.Array:
    """conv - relu - 2x2 max pool - affine - relu - affine, softmax cross entropy."""
    h = _pool2(relu(convolution(x, W1, b1, conv_param["stride"], conv_param["pad"])))
    return _cross_entropy(affine(relu(affine(h, W2, b2)), W3, b3), t, eps)


def deep_conv_net(x: jax.Array, t: jax.Array, *, eps: float | None = None, **named: Any) -> jax.Array:
    """(conv - relu - conv - relu - pool) x 3 with ``conv_param_1`` ... ``conv_param_6``, then affine - relu
    - dropout - affine - dropout, softmax cross entropy; the two dropout masks are ``mask1`` and ``mask2``."""
    h = x
    for i in range(1, 7):
        conv = named[f"conv_param_{i}"]
        h = relu(convolution(h, named[f"W{i}"], named[f"b{i}"], conv["stride"], conv["pad"]))
        if i % 2 == 0:
            h = _pool2(h)
    h = dropout(relu(affine(h, named["W7"], named["b7"])), named["mask1"], 0.5, True)
    return _cross_entropy(dropout(affine(h, named["W8"], named["b8"]), named["mask2"], 0.5, True), t, eps)


# ---- the book's computational graphs (issue 20): each layer's nodes under its name in the network ---------


def _under(tap: Tap, layer: str) -> Tap:
    """``tap`` naming each node of one layer's graph ``layer.node``."""

    def named(name: str, value: jax.Array) -> jax.Array:
        return tap(f"{layer}.{name}", value)

    return named


def _layer(tap: Tap, name: str, layer: Callable[..., jax.Array], *args: Any) -> jax.Array:
    """One layer of the network, named as the network names it (``Affine1``): the nodes of its graph
    ``layer`` under ``Affine1.x``, ``BatchNorm1.xc``, ..., its output as ``Affine1.out``."""
    return tap(f"{name}.out", layer(_under(tap, name), *args))


def _no_nodes(reference: Callable[..., jax.Array]) -> Callable[..., jax.Array]:
    """The graph of a layer without inner nodes (Sigmoid, Dropout): its reference, ignoring ``tap``."""

    def graph(tap: Tap, *args: Any) -> jax.Array:
        return reference(*args)

    return graph


def _last(tap: Tap, name: str, scores: jax.Array, t: jax.Array, eps: float | None) -> jax.Array:
    """The SoftmaxWithLoss layer under the name the network gives it: ``last_layer.y``, ``last_layer.loss``."""
    if eps is not None:
        raise ValueError("the networks' graphs compute the exact cross entropy only (eps=None)")

    return softmax_with_loss_graph(_under(tap, name), scores, t)


def two_layer_net_graph(
    tap: Tap,
    W1: jax.Array,
    b1: jax.Array,
    W2: jax.Array,
    b2: jax.Array,
    x: jax.Array,
    t: jax.Array,
    *,
    eps: float | None = None,
    **sizes: Any,
) -> jax.Array:
    """``two_layer_net`` as the book's TwoLayerNet: ``Affine1``, ``Relu1``, ``Affine2``, ``lastLayer``."""
    h = _layer(tap, "Affine1", affine_graph, x, W1, b1)
    h = _layer(tap, "Relu1", relu_graph, h)
    return _last(tap, "lastLayer", _layer(tap, "Affine2", affine_graph, h, W2, b2), t, eps)


def multi_layer_net_extend_graph(
    tap: Tap,
    x: jax.Array,
    t: jax.Array,
    *,
    hidden_size_list: Sequence[int],
    activation: str = "relu",
    weight_decay_lambda: float = 0.0,
    use_dropout: bool = False,
    dropout_ration: float = 0.5,
    use_batchnorm: bool = False,
    eps: float | None = None,
    **named: Any,
) -> jax.Array:
    """``multi_layer_net_extend`` (and so MultiLayerNet) as the book's network: per hidden layer i,
    ``Affine{i}``, [``BatchNorm{i}``], ``Activation_function{i}``, [``Dropout{i}``]; then the last
    ``Affine`` and ``last_layer``; the loss adds the weight decay."""
    act = relu_graph if activation == "relu" else _no_nodes(sigmoid)
    masks = [named[k] for k in sorted((k for k in named if k.startswith("mask")), key=lambda k: int(k[4:]))]
    h = x
    layers = len(hidden_size_list) + 1
    for i in range(1, layers):
        h = _layer(tap, f"Affine{i}", affine_graph, h, named[f"W{i}"], named[f"b{i}"])
        if use_batchnorm:
            size = named[f"gamma{i}"].shape
            stats = (jnp.zeros(size), jnp.ones(size))
            h = _layer(
                tap,
                f"BatchNorm{i}",
                batch_normalization_graph,
                h,
                named[f"gamma{i}"],
                named[f"beta{i}"],
                *stats,
            )
        h = _layer(tap, f"Activation_function{i}", act, h)
        if use_dropout:
            h = _layer(tap, f"Dropout{i}", _no_nodes(_dropped), h, masks, dropout_ration)
    scores = _layer(tap, f"Affine{layers}", affine_graph, h, named[f"W{layers}"], named[f"b{layers}"])
    weights = [named[f"W{i}"] for i in range(1, layers + 1)]
    return _last(tap, "last_layer", scores, t, eps) + _decay(weights, weight_decay_lambda)


def simple_conv_net_graph(
    tap: Tap,
    W1: jax.Array,
    b1: jax.Array,
    W2: jax.Array,
    b2: jax.Array,
    W3: jax.Array,
    b3: jax.Array,
    x: jax.Array,
    t: jax.Array,
    *,
    conv_param: Mapping[str, int],
    eps: float | None = None,
    **sizes: Any,
) -> jax.Array:
    """``simple_conv_net`` as the book's SimpleConvNet: ``Conv1``, ``Relu1``, ``Pool1``, ``Affine1``,
    ``Relu2``, ``Affine2``, ``last_layer``."""
    h = _layer(tap, "Conv1", convolution_graph, x, W1, b1, conv_param["stride"], conv_param["pad"])
    h = _layer(tap, "Relu1", relu_graph, h)
    h = _layer(tap, "Pool1", pooling_graph, h, 2, 2, 2, 0)
    h = _layer(tap, "Affine1", affine_graph, h, W2, b2)
    h = _layer(tap, "Relu2", relu_graph, h)
    return _last(tap, "last_layer", _layer(tap, "Affine2", affine_graph, h, W3, b3), t, eps)


def deep_conv_net_graph(
    tap: Tap, x: jax.Array, t: jax.Array, *, eps: float | None = None, **named: Any
) -> jax.Array:
    """``deep_conv_net`` as the book's DeepConvNet, its layers named as ``backprop.DeepConvNet`` names
    them (the book keeps them in a list): ``Conv1``, ``Relu1``, ``Conv2``, ``Relu2``, ``Pool1``, ... ``Pool3``,
    ``Affine7``, ``Relu7``, ``Dropout7``, ``Affine8``, ``Dropout8``, ``last_layer``."""
    h = x
    for i in range(1, 7):
        conv = named[f"conv_param_{i}"]
        h = _layer(
            tap, f"Conv{i}", convolution_graph, h, named[f"W{i}"], named[f"b{i}"], conv["stride"], conv["pad"]
        )
        h = _layer(tap, f"Relu{i}", relu_graph, h)
        if i % 2 == 0:
            h = _layer(tap, f"Pool{i // 2}", pooling_graph, h, 2, 2, 2, 0)
    h = _layer(tap, "Affine7", affine_graph, h, named["W7"], named["b7"])
    h = _layer(tap, "Relu7", relu_graph, h)
    h = _layer(tap, "Dropout7", _no_nodes(dropout), h, named["mask1"], 0.5, True)
    h = _layer(tap, "Affine8", affine_graph, h, named["W8"], named["b8"])
    h = _layer(tap, "Dropout8", _no_nodes(dropout), h, named["mask2"], 0.5, True)
    return _last(tap, "last_layer", h, t, eps)
