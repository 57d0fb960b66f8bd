"""Every fixed vocabulary of the oracle, defined once: dtypes, check kinds, diagnosis codes, features and
conventions. The JSON schema (``report.schema.json``) lists the same words; ``tests/test_vocabulary.py``
checks that the two agree, so a new word is added here and in the schema together.
"""

from __future__ import annotations

from enum import StrEnum


class DType(StrEnum):
    """The dtypes a layer can be checked in."""

    FLOAT64 = "float64"
    FLOAT32 = "float32"


DTYPES: tuple[str, ...] = tuple(d.value for d in DType)


class Kind(StrEnum):
    """What a failed check saw (``Mismatch.kind``). A kind that names its own cause (a ``stale`` check, a
    ``timeout``) is also the diagnosis of the failure (it is in ``SPECIFICITY``); the rest (values that
    differ, a NaN, ...) are diagnosed with a ``Code`` that names the cause."""

    VALUE = "value"  # numbers differ beyond the tolerance
    NAN = "nan"  # NaN or inf where the reference is finite
    SHAPE = "shape"
    DTYPE = "dtype"
    MISSING = "missing"  # a gradient attribute or grads entry was never set
    RETURNS_NONE = "returns_none"  # forward or backward returned None where values are due
    TYPE = "type"  # not numeric
    ALIASED = "aliased"  # shares memory with the caller's arrays or another gradient
    MUTATED = "mutated"  # wrote into the caller's arrays
    EXCEPTION = "exception"
    EXIT = "exit"  # SystemExit, KeyboardInterrupt or a dead child process from the layer's own code
    TIMEOUT = "timeout"
    ARITY = "arity"  # the wrong number of outputs or gradients
    STATEFUL = "stateful"  # wrong on a second use interleaved with another instance
    STALE = "stale"  # wrong on a later batch of a training-like sequence
    DOUT_ONE = "dout_one"  # wrong exactly when dout == 1 (the usual call of a loss)
    DEFAULT_DOUT = "default_dout"  # wrong when backward() is called with its default argument
    NONDETERMINISTIC = "nondeterministic"  # different results under different global RNG states
    PARAM_COPY = "param_copy"  # a parameter is not held by reference
    GRADS_REBOUND = "grads_rebound"  # book 2: a grads entry was replaced instead of written into


class Code(StrEnum):
    """The diagnoses that are no kind: the cause behind values that differ (or memory shared or written),
    found by the rules of ``diagnose``."""

    SCALE = "scale"
    SIGN = "sign"
    TRANSPOSE = "transpose"
    IGNORES_DOUT = "ignores_dout"
    UNBROADCAST = "unbroadcast"
    IN_PLACE = "in_place"
    KINK = "kink"
    OVERFLOW = "overflow"
    ZERO_DIVISION = "zero_division"
    EPSILON = "epsilon"
    RENAMED = "renamed"
    OTHER = "other"


DiagnosisCode = Kind | Code
"""A diagnosis code: a kind that names its own cause, or a ``Code``."""

# Every diagnosis code, most specific first: the headline diagnosis of a failure with several failed
# checks is the first of its codes in this order.
SPECIFICITY: tuple[DiagnosisCode, ...] = (
    Kind.EXIT,
    Kind.TIMEOUT,
    Kind.RETURNS_NONE,
    Code.RENAMED,
    Kind.PARAM_COPY,
    Kind.GRADS_REBOUND,
    Code.EPSILON,
    Code.IGNORES_DOUT,
    Kind.DOUT_ONE,
    Kind.DEFAULT_DOUT,
    Code.UNBROADCAST,
    Code.TRANSPOSE,
    Code.SIGN,
    Code.SCALE,
    Code.KINK,
    Code.ZERO_DIVISION,
    Code.OVERFLOW,
    Code.IN_PLACE,
    Kind.STALE,
    Kind.STATEFUL,
    Kind.NONDETERMINISTIC,
    Kind.DTYPE,
    Kind.SHAPE,
    Kind.EXCEPTION,
    Code.OTHER,
)

CODES: tuple[str, ...] = tuple(c.value for c in SPECIFICITY)


class Feature(StrEnum):
    """What an example exercises. Rows declare the features they can draw; ``--without`` turns one off and
    a failure is searched again without each of its features to say where the layer is right."""

    BROADCAST = "broadcast"  # operands of different shapes, stretched by broadcasting
    ND = "nd"  # input of rank 3 or more flattened by the layer (Affine's x)
    RANK4 = "rank4"  # a 4-D input (a convolutional feature map)
    ONE_HOT = "one_hot"  # targets given as one-hot arrays
    LABELS = "labels"  # targets given as integer labels
    EXTREME = "extreme"  # magnitudes of 1e3 and more (book 2's softmax rows: also logits 80 apart)
    BATCH = "batch"  # a batch of more than one sample
    LARGE = "large"  # a batch past 8 or an axis past 27 (up to 32 and 64)
    NEGATIVE_ZERO = "negative_zero"  # -0.0 among the values
    OVERLAP = "overlap"  # filter windows that overlap (a stride smaller than the filter)
    PADDING = "padding"  # a border padded around the image (pad > 0)
    TIE = "tie"  # a pooling window whose maximum is shared by several elements
    IGNORED = "ignored"  # a label -1 that a time loss ignores
    # a network's switches, each in both positions, so that a mistake in either one is scoped
    RELU = "relu"  # a network whose hidden activation is relu
    SIGMOID = "sigmoid"  # a network whose hidden activation is sigmoid
    WEIGHT_DECAY = "weight_decay"  # a network with weight decay (lambda > 0)
    NO_WEIGHT_DECAY = "no_weight_decay"  # a network without weight decay (lambda = 0)
    DROPOUT = "dropout"  # a network with dropout layers (use_dropout=True)
    NO_DROPOUT = "no_dropout"  # a network without them
    BATCHNORM = "batchnorm"  # a network with batch normalization (use_batchnorm=True)
    NO_BATCHNORM = "no_batchnorm"  # a network without it


FEATURE_WORDS: dict[Feature, tuple[str, str]] = {
    # (where the layer is right without it, where it is wrong with it), for scope sentences
    Feature.BROADCAST: ("same-shape inputs", "the inputs broadcast"),
    Feature.ND: ("2-D input", "the input has more than two axes"),
    Feature.RANK4: ("inputs of rank 3 or less", "the input is 4-D"),
    Feature.ONE_HOT: ("integer labels", "the targets are one-hot"),
    Feature.LABELS: ("one-hot targets", "the targets are integer labels"),
    Feature.EXTREME: ("moderate values (|v| < 1e3)", "values reach 1e3 or more"),
    Feature.BATCH: ("a batch of one", "the batch holds more than one sample"),
    Feature.LARGE: ("small sizes (batch <= 8, axes <= 27)", "the batch or an axis is large"),
    Feature.NEGATIVE_ZERO: ("inputs without -0.0", "an input holds -0.0"),
    Feature.OVERLAP: ("windows that do not overlap", "the windows overlap (stride < filter)"),
    Feature.PADDING: ("no padding (pad = 0)", "the image is padded (pad > 0)"),
    Feature.TIE: ("windows with a unique maximum", "a window's maximum is tied"),
    Feature.IGNORED: ("targets with no ignored label (-1)", "a label is -1, which the loss must ignore"),
    Feature.RELU: ("sigmoid activations", "the activation is relu"),
    Feature.SIGMOID: ("relu activations", "the activation is sigmoid"),
    Feature.WEIGHT_DECAY: ("networks without weight decay (lambda = 0)", "weight decay is on (lambda > 0)"),
    Feature.NO_WEIGHT_DECAY: ("networks with weight decay (lambda > 0)", "weight decay is off (lambda = 0)"),
    Feature.DROPOUT: ("networks without dropout", "dropout is on"),
    Feature.NO_DROPOUT: ("networks with dropout", "dropout is off"),
    Feature.BATCHNORM: ("networks without batch normalization", "batch normalization is on"),
    Feature.NO_BATCHNORM: ("networks with batch normalization", "batch normalization is off"),
}


class Convention(StrEnum):
    """Where a layer keeps its parameter gradients, spelled the same everywhere it is reported."""

    BOOK1 = "book 1 (gradient attributes such as dW, db)"
    BOOK2 = "book 2 (params/grads lists)"
    NETWORK = "network (gradient() returns a dict keyed like params)"
    NO_PARAMS = "no parameters"


class Allowance(StrEnum):
    """Documented deviations a user may allow with ``--allow``."""

    EPSILON = "epsilon"  # a loss computed as -log(y + eps)
