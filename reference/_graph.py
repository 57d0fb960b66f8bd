"""The nodes of a reference written as the book's computational graph: each node's forward value and the
gradient of the loss with respect to it, named as the book names them (``xc``, ``var``; ``f``, ``c_next``).

A graph is the row's reference with one more first parameter, ``tap``: ``tap("xc", x - mu)`` names a node
and returns it. Its gradients come from JAX: each tapped node gets a zero offset of its own, made an input,
so that ``jax.vjp`` with respect to the offsets gives the gradient at every node. Nothing here transcribes
a backward pass.

    def batch_normalization_graph(tap, x, gamma, beta, ...):
        mu = tap("mu", jnp.mean(x, axis=0))
        xc = tap("xc", x - mu)
        ...
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import jax
import numpy as np
from numpy.typing import NDArray

__all__ = ["Tap", "held_nodes", "nodes_of", "pullback"]


class Tap(Protocol):
    """Names one node of the graph and returns its value (offset by zero, to take its gradient)."""

    def __call__(self, name: str, value: jax.Array) -> jax.Array: ...


Graph = Callable[..., Any]
"""``graph(tap, **arguments) -> outputs``: the reference's outputs, computed node by node."""


def pullback(graph: Graph, consts: Mapping[str, Any]) -> Callable[..., Any]:
    """``(diff, cotangents) -> (names, values, input gradients, node gradients)`` of the graph, traceable
    (so that it can be compiled): ``names`` the tapped nodes in the order the graph taps them, ``values``
    their forward values in that order, the gradients by name. A node of an integer dtype (an index such
    as pooling's ``arg_max``) has a value and no gradient. ``consts`` are closed over (plain values and
    constant arrays alike)."""

    def run(diff: Mapping[str, Any], cotangents: Sequence[Any]) -> Any:
        names: list[str] = []
        shapes: dict[str, Any] = {}

        def record(name: str, value: jax.Array) -> jax.Array:
            if name in shapes:
                raise ValueError(f"the graph taps the node {name!r} twice: give each tap its own name")
            names.append(name)
            shapes[name] = value
            return value

        graph(record, **diff, **consts)  # which nodes there are (a compiled run drops this pass's work)
        zeros = {
            n: jax.numpy.zeros(np.shape(v), v.dtype)
            for n, v in shapes.items()
            if jax.numpy.issubdtype(v.dtype, jax.numpy.inexact)
        }

        def offset(inputs: dict[str, Any], offsets: dict[str, Any]) -> Any:
            held: dict[str, Any] = {}

            def tap(name: str, value: jax.Array) -> jax.Array:
                held[name] = value
                return value + offsets[name] if name in offsets else value

            return graph(tap, **inputs, **consts), held

        out, vjp, held = jax.vjp(offset, dict(diff), zeros, has_aux=True)
        single = not isinstance(out, tuple | list)
        input_grads, node_grads = vjp(cotangents[0] if single else tuple(cotangents))
        return tuple(names), [held[n] for n in names], input_grads, node_grads

    return run


def nodes_of(
    graph: Graph,
    diff: Mapping[str, Any],
    consts: Mapping[str, Any],
    cotangents: Sequence[Any],
) -> dict[str, tuple[NDArray[np.float64], NDArray[np.float64] | None]]:
    """Every tapped node's (value, gradient), in the order the graph taps them, then the differentiated
    inputs' (value, gradient). A node tapped twice under one name is an error (name each time step's own).
    Call inside ``reference.x64()`` for float64. ``cotangents`` holds one array per output. Run eagerly:
    ``backprop.verify.runner.nodes`` compiles ``pullback`` instead, which is cheaper on a new shape."""
    names, values, input_grads, node_grads = pullback(graph, consts)(diff, cotangents)
    return held_nodes(names, values, diff, input_grads, node_grads)


def held_nodes(
    names: Sequence[str],
    values: Sequence[Any],
    diff: Mapping[str, Any],
    input_grads: Mapping[str, Any],
    node_grads: Mapping[str, Any],
) -> dict[str, tuple[NDArray[np.float64], NDArray[np.float64] | None]]:
    """``pullback``'s results as ``{name: (value, gradient)}``: the nodes, then the differentiated inputs."""
    held: dict[str, tuple[NDArray[np.float64], NDArray[np.float64] | None]] = {
        name: (
            np.asarray(value, np.float64),
            np.asarray(node_grads[name], np.float64) if name in node_grads else None,
        )
        for name, value in zip(names, values, strict=True)
    }
    for name, value in diff.items():
        held.setdefault(name, (np.asarray(value, np.float64), np.asarray(input_grads[name], np.float64)))
    return held
