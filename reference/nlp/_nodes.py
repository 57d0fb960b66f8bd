"""What the book-2 graphs (the ``*_graph`` functions of ``reference.nlp``) share: the naming of the nodes
inside a sublayer, and a probability node on the way to a loss computed stably.

Each graph taps its float inputs first, under its own parameter names, then its nodes in the book's
order, then its outputs. Inside a larger graph each sublayer's nodes are named by the book's path to that
sublayer (``scoped``): ``layers[2].h_next``, ``embed_dot_layers[0].target_W``,
``attention_weight_layer.s``. A shared input gets one node per use (``layers[2].Wx``), whose gradient is
that use's share alone: what the book's sublayer returns or keeps (its ``dx``, its ``grads``) before the
enclosing layer adds them up.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from reference._graph import Tap


def scoped(tap: Tap, path: str) -> Tap:
    """``tap`` naming the nodes of the sublayer the book reaches as ``self.<path>``: ``scoped(tap,
    "layers[2]")("h_next", v)`` taps ``layers[2].h_next``."""

    def inner(name: str, value: jax.Array) -> jax.Array:
        return tap(f"{path}.{name}", value)

    return inner


def logged(
    tap: Tap,
    name: str,
    probabilities: jax.Array,
    pick: Callable[[jax.Array], jax.Array],
    stable: jax.Array,
) -> jax.Array:
    """``stable``, the log of the picked probabilities computed from the scores without rounding them to 0
    or 1 (``log_sigmoid``, ``log_softmax``), with the probabilities themselves a node ``name`` on its way.

    The book's loss layers compute ``y = sigmoid(x)`` (``softmax``) and then ``log(y)``: ``y`` is a node of
    their graph, with a value and a gradient (``-1 / y`` per picked entry, over the batch). A loss written
    as ``log(y)`` is infinite where ``y`` rounds to 0, so ``stable`` carries the value and the gradient of
    the scores, and ``log(pick(y))`` adds exactly 0 whose gradient reaches the node alone: give
    ``probabilities`` computed from ``stop_gradient`` of the scores, so that nothing is counted twice.
    Where the picked probability rounds to 0 its gradient is infinite, and the node's gradient there is
    NaN (no array matches it), not a number that would vouch for a wrong one."""
    y = tap(name, probabilities)
    exact = jnp.log(pick(y))
    link = jnp.where(jnp.isfinite(exact), exact - jax.lax.stop_gradient(exact), 0.0)
    return stable + link
