"""A row: the single place that knows how to drive one layer.

A row says how the class is built (``build``), called (``call``) and differentiated (``backward``), where
each gradient is read back (``gradients``), how its inputs are drawn (a shape strategy that honours
``without``, and a value domain per argument), which features its examples exercise, its conventions at
kinks, and its dtype-keyed tolerances. The oracle, the tests, the CLI and the benchmark all drive layers
through these methods.
The rows themselves live in ``backprop.verify.specs``, one module per module of ``backprop``; ``registry``
collects them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

from backprop.verify.draw import Without, float_arrays, generic_features
from backprop.verify.tolerances import TOLERANCES, Tolerance
from backprop.verify.vocabulary import DTYPES, Convention, Feature, Kind

if TYPE_CHECKING:  # Hypothesis is imported where a strategy is built: the registry (--list) does without it
    from hypothesis import strategies as st

Shapes = Mapping[str, tuple[int, ...]]
ShapeDict = dict[str, tuple[int, ...]]
ShapeStrategy = Callable[[Without], "st.SearchStrategy[ShapeDict]"]
ValuesFn = Callable[[Shapes, np.dtype[Any], Without], "st.SearchStrategy[Any]"]
Place = Literal["init", "init_kw", "forward", "keyword", "state", "params", "previous", "carried"]
Source = Literal["return", "param", "attr", "key"]
Subgradient = Callable[
    [Mapping[str, Any], tuple[Any, ...], str, NDArray[np.float64]],
    tuple[NDArray[np.float64], NDArray[np.float64]],
]

BOOK_API: tuple[str, ...] = ("forward", "backward")
_DEFAULT_SOURCE: dict[str, Source] = {
    "forward": "return",
    "init": "param",
    "init_kw": "param",
    "state": "attr",
    "params": "key",
}


@dataclass(frozen=True, kw_only=True)
class Arg:
    """One argument of the layer.

    to:   where the value goes: ``init`` (constructor, positional), ``init_kw`` (constructor keyword),
          ``forward`` (forward, positional), ``keyword`` (forward keyword), ``state`` (given to the row's
          ``set_state`` method before forward), ``params`` (written into a network's ``params`` dict
          once it is built; see ``backprop.verify.network.NetworkRow``), ``previous`` (given to a
          forward call made just before the checked one, on the same instance, after ``set_state``: the
          previous chunk of a stateful time layer) or ``carried`` (never given to the layer: the row's
          ``carry`` computes it from the other values; the state the layer carries into the checked call).
    grad: the name of its gradient (``dx``, ``dW``, ``dh``); empty when it is not differentiated.
    read: where that gradient is read: ``return`` (backward's return value, in order), ``param`` (the
          attribute ``grad`` in book 1, the matching ``grads`` entries in book 2), ``attr`` (the attribute
          ``grad``, such as ``dh``) or ``key`` (the dict a network's ``gradient`` returns). The default
          follows ``to``.
    batch: its leading axis is the batch (the training-like sequence changes its size).
    """

    name: str
    to: Place = "forward"
    grad: str = ""
    read: Source | None = None
    domain: tuple[float, float] | None = None
    """The range of a float argument's values."""
    values: ValuesFn | None = None
    """Draws the argument (labels, a float array with ties): used instead of the domain when both are
    given, the domain still marking the argument as a float one."""
    kinks: tuple[float, ...] = ()
    """Values of this argument where the layer is not differentiable (relu: 0)."""
    batch: bool = False
    fixed: Callable[[Shapes], Any] | None = None
    """A plain value the pool entry fixes (a stride, a pad, a filter size): passed as it is, and compiled
    into the reference, so that each entry of the pool is one geometry."""

    def __post_init__(self) -> None:
        if (self.fixed is None) == (self.domain is None and self.values is None):
            raise ValueError(f"Arg {self.name!r}: give domain= or values= (or both), or else fixed=")
        if self.read is not None and not self.grad:
            raise ValueError(f"Arg {self.name!r}: read= needs grad=, the name of the gradient")
        if self.grad and self.read is None and self.to not in _DEFAULT_SOURCE:
            raise ValueError(f"Arg {self.name!r}: a differentiated {self.to} argument needs read=")

    @property
    def differentiable(self) -> bool:
        return bool(self.grad)

    @property
    def source(self) -> Source:
        return self.read or _DEFAULT_SOURCE[self.to]

    @property
    def is_float(self) -> bool:
        return self.domain is not None

    def strategy(self, shapes: Shapes, dtype: np.dtype[Any], without: Without) -> st.SearchStrategy[Any]:
        from hypothesis import strategies as st

        if self.values is not None:
            return self.values(shapes, dtype, without)
        if self.fixed is not None:
            return st.just(self.fixed(shapes))
        if self.domain is None:
            raise ValueError(f"Arg {self.name!r} has none of domain=, values= or fixed=")
        return float_arrays(shapes[self.name], *self.domain, dtype, without, self.kinks)


@dataclass(frozen=True)
class Read:
    """One gradient as the layer gave it: the argument, where it was read, the value, and any problem."""

    arg: Arg
    where: str
    value: Any
    problem: Kind | None = None
    message: str = ""


def _identity_positions(params: Any, value: Any) -> list[int]:
    return [
        i
        for i, p in enumerate(params)
        if isinstance(p, np.ndarray) and isinstance(value, np.ndarray) and p is value
    ]


@dataclass(frozen=True, kw_only=True, eq=False)  # compared and hashed by identity: a row is one layer
class Row:
    """One layer: the manual class, its reference, how to drive it, its inputs, features and tolerances."""

    name: str
    layer: type
    reference: Callable[..., Any]
    signature: str
    args: tuple[Arg, ...]
    shapes: tuple[ShapeDict, ...] | ShapeStrategy
    """The shapes of every argument and output: a pool of shape dicts (the usual way: each distinct
    shape costs one JAX compilation, so a fixed pool of 8-12 well-chosen ones bounds a row's cost, and the
    values vary freely within each), or a function ``without -> strategy`` for a row whose shapes cannot
    be listed. A pool is drawn from uniformly and shrinks towards its first entry: list the smallest
    first. Entries exercising a feature that ``without`` turns off are left out."""
    outputs: tuple[str, ...] = ("out",)
    loss: bool = False
    cotangent_domain: tuple[float, float] = (-10.0, 10.0)
    tolerances: Mapping[str, Tolerance] = field(default_factory=lambda: TOLERANCES)
    conventions: tuple[str, ...] = ()
    features: tuple[Feature, ...] = ()
    """Features the row's examples can exercise; ``--without`` may turn each off."""
    row_features: Callable[[Mapping[str, Any]], set[Feature]] | None = None
    """Features only this row can see in an example (broadcasting, one-hot targets, N-D input)."""
    feature_words: Mapping[Feature, tuple[str, str]] = field(default_factory=dict)
    """The scope sentence's words for a feature this row draws in its own sense (where the layer is right
    without it, where it is wrong with it), in place of ``vocabulary.FEATURE_WORDS``: book 2's softmax
    rows count logits far apart as ``extreme``."""
    condition: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None
    """Factors, by output or argument name, by which rounding grows beyond the summed terms' magnitude;
    arrays broadcast against the checked value, so one sample's condition cannot cover another's."""
    magnitude: Callable[[Mapping[str, Any], tuple[Any, ...]], dict[str, Any]] | None = None
    """The magnitude of the terms a correct layer sums, by output or argument name, from the values and
    cotangents, for a reference whose run on absolute values does not bound them (a normalization divides
    by its own input's statistics); rounding is judged against the larger of the two. Arrays broadcast
    against the checked value."""
    capture: Callable[[Any], dict[str, Any]] | None = None
    """Hidden state read from the layer after ``forward`` and passed to the reference (a dropout mask);
    the randomness it declares is exempt from the determinism check."""
    function: Callable[[Callable[..., Any]], type] | None = None
    """For a row whose book form is a function (im2col, col2im): given the user's function, the class that
    drives it as the row's layer (its VJP from the same module). ``verify`` and the CLI accept the
    function itself."""
    mode: str = ""
    """The keyword argument that switches train mode (``train_flg``; False is test mode). A layer that
    raises in ``backward`` after a test-mode forward on a fresh instance leaves test-mode backward out of
    its contract (the books do): such examples are judged on forward alone, with a note. The training
    stage also runs test mode after train mode on one instance, as training and evaluation do."""
    after_train: Callable[[Mapping[str, Any], Any], dict[str, Any]] | None = None
    """The state a train-mode forward on these values leaves in the layer, as argument values (batch
    normalization's running statistics, from the instance's ``momentum``): the reference of a test-mode
    call that follows on the same instance."""
    reset: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None
    """For a layer that carries state between calls: the values under which the reference starts from the
    state ``reset_state()`` leaves (zeros). The training stage calls ``reset_state()`` on its instance, then
    forward without ``set_state`` and without the previous call, and judges that call with these values."""
    subgradient: Subgradient | None = None
    """The gradient ``grad`` with the left and with the right one-sided derivative at every element (equal
    off the kinks): a user's layer may choose any value in between at a kink, and is told which it chose."""
    subgradient_sum: bool = False
    """Every valid subgradient has the same sum (max pooling routes each window's dout exactly once,
    however a tie is split): a gradient within ``subgradient``'s bounds that changes the sum is wrong."""
    kink_note: str = "a subgradient {t:g} of the way from the left to the right one-sided derivative"
    """How a chosen subgradient reads in a note; ``t`` is 0 for the left derivative and 1 for the right."""
    set_state: str = "set_state"
    """The method that receives the ``state`` arguments before forward."""
    methods: tuple[str, ...] = BOOK_API
    """The layer's methods the row calls: a row whose ``call`` and ``backward`` drive others (a network's
    ``loss`` and ``gradient``) names them here, and ``verify`` refuses a class that lacks one."""
    graph: Callable[..., Any] | None = None
    """The reference written as the book's computational graph: ``graph(tap, **the reference's arguments)``
    returns the same outputs and names each intermediate node with ``tap("xc", x - mu)``
    (``reference._graph``). The culprit search matches a failing layer's own arrays to these nodes. Without
    it, the nodes are the arguments and outputs alone."""
    epsilon: Callable[..., Any] | None = None
    """The loss as written with ``-log(y + eps)``: the reference of ``--allow epsilon``."""
    eps: float | None = None
    """A normalization's eps under the square root, which its reference also takes as the keyword ``eps``:
    the diagnosis estimates the eps a layer uses, and ``verify(..., eps=)`` checks a layer at its own."""
    shared_scale: bool = False
    """Rounding in a gradient every other one is computed from (a network's gradient at its logits) reaches
    them all, and where it cancels exactly in the reference (equal logits) the run on absolute values does
    not see it: each gradient's rounding is then judged against the largest of the row's gradients."""
    carry: Callable[..., dict[str, Any]] | None = None
    """The ``carried`` arguments' values, computed from the others: the state a stateful layer carries from
    the ``previous`` call into the checked one (the reference's final state of that call, or the zeros a
    layer that is not stateful starts from). The reference takes that state as an input of its own and is
    differentiated with respect to it, so that no gradient flows into the previous call: the truncation
    of truncated BPTT. Every example and every set of values a stage builds is completed by it
    (``complete``), so they always agree. Called as ``carry(values, native=dtype)`` for the reference's
    native run in a narrower dtype, it computes the state natively in that dtype, so that the rounding a
    right layer makes in the previous call, carried into the checked one, shows in that run and widens
    the tolerance by as much (see ``tolerances``)."""

    @property
    def eps_keyword(self) -> dict[str, float]:
        """``{"eps": eps}`` for a row with an eps, else nothing: what its reference and magnitude receive."""
        return {} if self.eps is None else {"eps": self.eps}

    def at_eps(self, eps: float) -> Row:
        """This row checking a layer at its own ``eps`` instead of the book's (same name and examples)."""
        if self.eps is None:
            raise ValueError(
                f"the row {self.name!r} has no eps to set (only the batch normalization rows do)"
            )
        if not (isinstance(eps, int | float) and 0 <= eps < float("inf")):
            raise ValueError(f"eps must be a number >= 0, got {eps!r}")
        note = f"checked at eps = {eps:g}, not the book's {self.eps:g} (verify(..., eps=) or --eps)"
        return replace(self, eps=float(eps), conventions=(*self.conventions, note))

    def __post_init__(self) -> None:
        unknown = set(self.features) - set(Feature)
        if unknown:
            raise ValueError(f"row {self.name!r}: unknown features {sorted(unknown)}")
        if not callable(self.shapes):
            try:  # a list of shape dicts is a pool too
                object.__setattr__(self, "shapes", tuple(self.shapes))
            except TypeError:
                raise ValueError(
                    f"row {self.name!r}: shapes must be a pool (a tuple of shape dicts) or a function "
                    f"without -> strategy, got {type(self.shapes).__name__}"
                ) from None
        if isinstance(self.shapes, tuple):
            needed = {a.name for a in self.args if a.is_float} | set(self.outputs)
            for entry in self.shapes:
                missing = needed - set(entry)
                if missing:
                    raise ValueError(
                        f"row {self.name!r}: pool entry {entry} has no shape for {sorted(missing)}"
                    )
            if not self.shapes:
                raise ValueError(f"row {self.name!r}: the shape pool is empty")
        if self.placed("carried") and self.carry is None:
            raise ValueError(f"row {self.name!r}: carried arguments need carry=, which computes them")

    def draw_shapes(self, without: Without = frozenset()) -> st.SearchStrategy[ShapeDict]:
        """The row's shapes as a strategy, none exercising a feature in ``without``; ValueError when none
        are left."""
        from hypothesis import strategies as st

        if not isinstance(self.shapes, tuple):
            return self.shapes(without)
        kept = [s for s in self.shapes if not (self.shape_features(s) & without)]
        if not kept:
            off = ", ".join(sorted(f.value for f in without))
            raise ValueError(f"{self.name}: every shape in its pool uses a feature turned off ({off})")
        return st.sampled_from(kept).map(dict)  # a copy: a caller may change it, the pool stays

    def shape_features(self, shapes: Shapes) -> set[Feature]:
        """The features a pool entry exercises whatever its values (broadcasting, batch, rank 4, large
        sizes, padding): those of plain arrays of its shapes, with its fixed values. Float arrays hold
        distinct moderate values, so that no feature of the values (a tie, -0.0, an extreme) shows."""

        def plain(arg: Arg) -> Any:
            if arg.fixed is not None:
                return arg.fixed(shapes)
            shape = shapes.get(arg.name, ())
            if not arg.is_float:
                return np.zeros(shape)
            return np.linspace(0.5, 1.0, int(np.prod(shape))).reshape(shape)

        return self.features_of({a.name: plain(a) for a in self.args})

    # ---- the arguments by role ----------------------------------------------------------------------

    def placed(self, *places: Place) -> tuple[Arg, ...]:
        return tuple(a for a in self.args if a.to in places)

    @property
    def differentiable(self) -> tuple[Arg, ...]:
        return tuple(a for a in self.args if a.differentiable)

    def read_from(self, source: Source) -> tuple[Arg, ...]:
        return tuple(a for a in self.differentiable if a.source == source)

    @property
    def params(self) -> tuple[Arg, ...]:
        return self.read_from("param")

    @property
    def dtypes(self) -> tuple[str, ...]:
        """The dtypes the row is checked in: those it has a tolerance for, in ``DTYPES`` order."""
        return tuple(d for d in DTYPES if d in self.tolerances)

    @property
    def redraws_state(self) -> bool:
        """Whether each call draws new hidden state (a dropout mask): then a later call can show a
        mistake the first one's state hid, without anything being kept between calls."""
        return self.capture is not None

    @property
    def held(self) -> tuple[Arg, ...]:
        """The differentiated arguments the layer holds from its construction, which an optimizer updates
        in place: book 1's attributes, book 2's ``params`` list, a network's ``params`` dict."""
        return tuple(a for a in self.differentiable if a.to in ("init", "init_kw", "params"))

    def batch_size(self, values: Mapping[str, Any]) -> int | None:
        """The batch size N: the leading axis of the first forward input that has one."""
        for arg in self.placed("forward"):
            shape = np.shape(values[arg.name])
            if shape:
                return int(shape[0])
        return None

    def test_mode(self, values: Mapping[str, Any]) -> bool:
        """Whether these values call the layer in test mode (the ``mode`` keyword is False)."""
        return bool(self.mode) and not values[self.mode]

    def rolled(self, name: str, value: Any) -> bool:
        """Whether new inputs for a later call roll this value by one sample instead of moving it: an input
        array of the forward call that is not differentiated (labels, ids, one-hot targets, a network's
        x) and holds more than one sample."""
        plain = {a.name for a in self.placed("forward", "keyword") if not a.differentiable}
        return name in plain and isinstance(value, np.ndarray) and value.ndim > 0 and value.shape[0] > 1

    def dtypes_for(self, layer: type) -> tuple[str, ...]:
        """The dtypes ``layer`` is checked in (by ``--dtype all``), the one a check runs in when none is
        asked first: the row's own, unless the class can be built in fewer (a model written as the book's
        allocates its own float32)."""
        return self.dtypes

    def dtype_refusal(self, layer: type, dtype: str) -> str:
        """Why ``layer`` is not checked in ``dtype``, a dtype ``dtypes_for`` leaves out: one line."""
        return f"{self.name} is checked in {', '.join(self.dtypes)} only, not in {dtype}"

    def tolerance(self, dtype: np.dtype[Any] | str) -> Tolerance:
        key = np.dtype(dtype).name
        if key not in self.tolerances:
            raise ValueError(f"{self.name}: no tolerance for dtype {key}; known: {sorted(self.tolerances)}")
        return self.tolerances[key]

    def judgeable(self, values: Mapping[str, Any]) -> bool:
        """Whether the reference can judge this example at all; a row draws only such examples (a network
        row refuses those where a kink inside it is met within rounding)."""
        return True

    def features_of(self, values: Mapping[str, Any]) -> set[Feature]:
        """The features this example exercises (the generic ones and the row's own)."""
        found = generic_features(dict(values), {a.name for a in self.args if a.is_float})
        for arg in self.args:
            if arg.batch and np.ndim(values[arg.name]) and np.shape(values[arg.name])[0] > 1:
                found.add(Feature.BATCH)
        if self.row_features is not None:
            found |= self.row_features(values)
        return found & set(self.features)

    # ---- driving the layer ------------------------------------------------------------------------------

    def constructor_keywords(self, layer: type) -> tuple[Arg, ...]:
        """The ``init_kw`` arguments ``layer``'s constructor is given (a model written as the book's takes
        no ``dtype``)."""
        return self.placed("init_kw")

    def build(self, layer: type, values: Mapping[str, Any]) -> Any:
        """``layer(*init, **init_kw)``, as a network builds it."""
        args = [values[a.name] for a in self.placed("init")]
        return layer(*args, **{a.name: values[a.name] for a in self.constructor_keywords(layer)})

    def complete(self, values: Mapping[str, Any], native: np.dtype[Any] | None = None) -> dict[str, Any]:
        """The values with the ``carried`` arguments computed by ``carry`` from the others (natively in
        ``native`` for the reference's run in that dtype)."""
        if self.carry is None:
            return dict(values)
        return {**values, **(self.carry(values) if native is None else self.carry(values, native=native))}

    def call(self, instance: Any, values: Mapping[str, Any]) -> Any:
        """Give the state, make the previous call if any, then ``forward(*inputs, **keywords)``; the
        checked forward's raw return value."""
        state = self.placed("state")
        if state:
            getattr(instance, self.set_state)(*[values[a.name] for a in state])
        previous = self.placed("previous")
        if previous:
            instance.forward(*[values[a.name] for a in previous])
        return self.call_alone(instance, values)

    def call_alone(self, instance: Any, values: Mapping[str, Any]) -> Any:
        """``forward(*inputs, **keywords)`` alone, from whatever state the layer holds."""
        args = [values[a.name] for a in self.placed("forward")]
        return instance.forward(*args, **{a.name: values[a.name] for a in self.placed("keyword")})

    def source(self, op: str, who: str, args: str, given: Mapping[str, str]) -> list[str]:
        """``build``, ``call_alone`` or ``backward`` as lines of the printed program, on the instance named
        ``who``: ``args`` are the call's arguments as source (for ``build``, the class called with them) and
        ``given`` the expression of every argument the instance was last built or called with. The last
        line of a forward or backward is the call whose value the program keeps."""
        if op == "build":
            return [f"{who} = {args}"]
        return [f"{who}.{op}({args})"]

    def outputs_of(self, raw: Any) -> tuple[Any, ...]:
        return tuple(raw) if len(self.outputs) > 1 and isinstance(raw, tuple | list) else (raw,)

    def backward(self, instance: Any, cotangents: tuple[Any, ...] | None) -> Any:
        """``backward(*cotangents)``; ``None`` calls ``backward()`` with the layer's own default."""
        return instance.backward() if cotangents is None else instance.backward(*cotangents)

    def convention(self, instance: Any, names: Mapping[str, str] | None = None) -> Convention:
        """Where the layer keeps its parameter gradients: the first book's attributes (``self.dW``), the
        second book's ``self.grads`` list, in the same order as ``self.params``, or a network's dict."""
        names = names or {}
        params = self.params
        if not params:
            return Convention.NETWORK if self.read_from("key") else Convention.NO_PARAMS
        # a grads list with entries is what book 2's models and optimizers read: it decides even where
        # the layer also sets a dW attribute of its own (else a list never written would go unchecked);
        # an empty pair (book 2's idiom for a layer without parameters) leaves the attributes to decide
        grads, params_list = getattr(instance, "grads", None), getattr(instance, "params", None)
        if isinstance(grads, list | tuple) and isinstance(params_list, list | tuple) and len(grads) > 0:
            return Convention.BOOK2
        if any(hasattr(instance, names.get(a.grad, a.grad)) for a in params):
            return Convention.BOOK1
        return (
            Convention.BOOK2
            if isinstance(getattr(instance, "grads", None), list | tuple)
            else Convention.BOOK1
        )

    def gradients(
        self, instance: Any, result: Any, values: Mapping[str, Any], names: Mapping[str, str] | None = None
    ) -> list[Read]:
        """Every differentiated argument's gradient, read where the row says, each with any problem."""
        names = names or {}
        reads = self._returned(result)
        convention = self.convention(instance, names)
        for arg in self.params:
            if convention == Convention.BOOK2:
                reads.append(self._from_grads(instance, arg, values))
            else:
                name = names.get(arg.grad, arg.grad)
                reads.append(Read(arg, name, getattr(instance, name, None)))
        reads += [
            Read(a, a.grad, getattr(instance, names.get(a.grad, a.grad), None))
            for a in self.read_from("attr")
        ]
        for arg in self.read_from("key"):
            got = result.get(arg.name) if isinstance(result, Mapping) else None
            reads.append(Read(arg, f"grads[{arg.name!r}]", got))
        return reads

    def _returned(self, result: Any) -> list[Read]:
        returned = self.read_from("return")
        if not returned:
            return []
        if result is None:
            return [Read(a, a.grad, None, Kind.RETURNS_NONE, "backward() returned None") for a in returned]
        if len(returned) == 1:
            return [Read(returned[0], returned[0].grad, result)]
        if isinstance(result, tuple | list) and len(result) == len(returned):
            return [Read(a, a.grad, g) for a, g in zip(returned, result, strict=True)]
        n = len(result) if isinstance(result, tuple | list) else 1
        wanted = ", ".join(a.grad for a in returned)
        message = f"backward() returned {n} gradient(s), expected {len(returned)} ({wanted})"
        return [Read(a, a.grad, None, Kind.ARITY, message) for a in returned]

    def _from_grads(self, instance: Any, arg: Arg, values: Mapping[str, Any]) -> Read:
        """Book 2: the ``grads`` entries whose ``params`` entry is this very array, summed (a tied weight is
        listed once per sub-layer); by position when the layer does not hold the array itself."""
        params, grads = getattr(instance, "params", None) or [], instance.grads
        at = _identity_positions(params, values[arg.name]) or [self.params.index(arg)]
        if len(grads) != len(params or self.params) or any(i >= len(grads) for i in at):
            wanted = ", ".join(a.name for a in self.params)
            message = (
                f"grads has {len(grads)} entries but the layer has {len(self.params)} parameters ({wanted})"
            )
            if params and len(params) != len(self.params):
                message = f"grads has {len(grads)} entries but params has {len(params)}"
            return Read(arg, f"grads[{at[0]}]", None, Kind.ARITY, message)
        where = "grads[" + "]+grads[".join(map(str, at)) + "]"
        if len(at) == 1:
            return Read(arg, where, grads[at[0]])
        try:
            total = np.sum([np.asarray(grads[i]) for i in at], axis=0)
        except (TypeError, ValueError) as exc:
            return Read(arg, where, None, Kind.TYPE, f"cannot sum the tied gradients: {exc}")
        return Read(arg, where, total)
