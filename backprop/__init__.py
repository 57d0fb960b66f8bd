"""Hand-written backpropagation layers from "Deep Learning from Scratch", chapter 5.

NumPy only. The API is the book's: ``forward`` caches what ``backward`` needs, and
``backward(dout)`` returns the gradient(s) with respect to the forward inputs.
"""

from ._errors import BackwardBeforeForwardError
from .activations import Relu, Sigmoid
from .affine import Affine
from .arithmetic import AddLayer, MulLayer
from .functions import cross_entropy_error, log_softmax, sigmoid, softmax
from .losses import SoftmaxWithLoss

__all__ = [
    "AddLayer",
    "Affine",
    "BackwardBeforeForwardError",
    "MulLayer",
    "Relu",
    "Sigmoid",
    "SoftmaxWithLoss",
    "cross_entropy_error",
    "log_softmax",
    "sigmoid",
    "softmax",
]
