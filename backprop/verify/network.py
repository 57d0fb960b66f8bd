"""The row that drives a whole network: ``loss`` is its forward, ``gradient`` its backward.

A network is built from its sizes (``init``/``init_kw`` arguments, usually ``fixed`` by the pool entry);
its parameters are drawn like any argument and written into its own ``params`` arrays in place (``to=
"params"``), which the layers hold, so the training stage's in-place update reaches them as an
optimizer's does. ``gradient`` is the gradient of the loss for dout = 1: the row multiplies it by the
drawn dout, the chain rule a caller applies. ``loss`` and ``gradient`` run under the same global random
state, so dropout draws the same masks in ``gradient``'s own forward pass as in ``loss``: the masks the
row's ``capture`` reads after ``loss`` and hands to the reference.

A parameter that exists only with a switch on (batch normalization's gamma and beta, ``only_with``) is
drawn always, and written into the network and read from its gradients only where the switch is on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backprop.verify.near_kinks import near_kink
from backprop.verify.row import Arg, Read, Row

__all__ = ["NetworkRow", "seeded"]


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """NumPy's global generator seeded for the call, and restored afterwards."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


DECOY = (0.5, 1.0)
"""The decoy of a float input x is 0.5 x + 1 (never equal to x)."""


def decoy(inputs: tuple[Any, ...]) -> tuple[Any, ...]:
    """Other inputs of the same shapes: every float array x becomes ``DECOY``'s 0.5 x + 1."""
    scale, offset = DECOY
    return tuple(
        np.asarray(scale * v + offset, dtype=v.dtype)
        if isinstance(v, np.ndarray) and v.dtype.kind == "f"
        else v
        for v in inputs
    )


@dataclass(frozen=True, kw_only=True, eq=False)
class NetworkRow(Row):
    """A network as a row: see the module's docstring."""

    methods: tuple[str, ...] = ("loss", "gradient")
    shared_scale: bool = True
    seed: int = 20261129
    """The global random state ``loss`` and ``gradient`` both start from."""
    only_with: Mapping[str, str] = field(default_factory=dict)
    """Parameters the network has only with a switch on, by name: the switch's constructor argument
    (``{"gamma1": "use_batchnorm"}``); the reference ignores them where it is off."""
    _inputs: dict[int, tuple[Any, ...]] = field(default_factory=dict, repr=False)
    """The inputs of each instance's last ``loss`` call, by ``id`` (a network need not be hashable)."""

    @property
    def redraws_state(self) -> bool:
        return False  # loss and gradient draw the same masks, from the same seed, on every call

    def present(self, arg: Arg, values: Mapping[str, Any]) -> bool:
        """Whether the network built from ``values`` has the parameter ``arg`` (see ``only_with``)."""
        switch = self.only_with.get(arg.name)
        return switch is None or bool(values[switch])

    def build(self, layer: type, values: Mapping[str, Any]) -> Any:
        """Build from the sizes, then write each drawn parameter into ``params`` in place; ``values`` (the
        stage's own copy) then names the network's arrays, so that an in-place update reaches them."""
        network = super().build(layer, values)
        params = getattr(network, "params", None)
        for arg in (a for a in self.placed("params") if self.present(a, values)):
            if not isinstance(params, Mapping) or arg.name not in params:
                raise ValueError(f"{type(network).__name__} has no params[{arg.name!r}]")
            own, drawn = params[arg.name], np.asarray(values[arg.name])
            if np.shape(own) != drawn.shape:
                raise ValueError(
                    f"params[{arg.name!r}] of {type(network).__name__} has shape {np.shape(own)}, but the sizes "
                    f"given to its constructor call for {drawn.shape}"
                )
            own[...] = drawn
            if isinstance(values, MutableMapping):
                values[arg.name] = own
        return network

    def gradients(
        self, instance: Any, result: Any, values: Mapping[str, Any], names: Mapping[str, str] | None = None
    ) -> list[Read]:
        """Every gradient of a parameter the network has (``present``)."""
        reads = super().gradients(instance, result, values, names)
        return [r for r in reads if self.present(r.arg, values)]

    def judgeable(self, values: Mapping[str, Any]) -> bool:
        """False where the library's own network meets a relu or max-pooling kink within rounding on
        this example (see ``near_kinks``): no gradient is more right than another there."""
        mine = dict(values)
        network = self.build(self.layer, mine)
        return near_kink(network, lambda: self.call(network, mine)) is None

    def call(self, instance: Any, values: Mapping[str, Any]) -> Any:
        inputs = tuple(values[a.name] for a in self.placed("forward"))
        if len(self._inputs) > 256:  # ids of networks long gone; each call sets its own before use
            self._inputs.clear()
        self._inputs[id(instance)] = inputs
        with seeded(self.seed):
            return instance.loss(*inputs, **{a.name: values[a.name] for a in self.placed("keyword")})

    def backward(self, instance: Any, cotangents: tuple[Any, ...] | None) -> Any:
        inputs = self._inputs[id(instance)]
        # Training loops call gradient(x, t) without loss(x, t) first: a loss on other inputs in between
        # makes a gradient() that backpropagates whatever forward pass ran last show it.
        instance.loss(*decoy(inputs))
        with seeded(self.seed):
            grads = instance.gradient(*inputs)
        if cotangents is None or not isinstance(grads, Mapping):
            return grads
        (dout,) = cotangents
        return {k: g * dout if isinstance(g, np.ndarray) else g for k, g in grads.items()}

    def source(self, op: str, who: str, args: str, given: Mapping[str, str]) -> list[str]:
        """``build`` writes the drawn parameters into the network's own arrays (and names them so); ``loss``
        and ``gradient`` run from the same seed; ``gradient`` after a loss on decoy inputs, times dout."""
        if op == "build":
            lines = [f"{who} = {args}"]
            for arg in self.placed("params"):
                name = given[arg.name]
                put = [f"{who}.params[{arg.name!r}][...] = {name}", f"{name} = {who}.params[{arg.name!r}]"]
                switch = self.only_with.get(arg.name)
                lines += [f"if {given[switch]}:", *(f"    {line}" for line in put)] if switch else put
            return lines
        seed = f"np.random.seed({self.seed})"
        if op == "forward":
            return [f"{seed}  # the same masks in loss() and gradient()", f"{who}.loss({args})"]
        scale, offset = DECOY
        inputs = [given[a.name] for a in self.placed("forward")]
        decoys = [
            f"{scale} * {e} + {offset}" if a.is_float else e
            for a, e in zip(self.placed("forward"), inputs, strict=True)
        ]
        return [
            f"{who}.loss({', '.join(decoys)})  # a forward pass on other inputs first, as in training",
            seed,
            f"{{k: g * {args or '1.0'} for k, g in {who}.gradient({', '.join(inputs)}).items()}}"
            "  # dout by the chain rule",
        ]
