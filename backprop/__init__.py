"""Hand-written backpropagation layers from "Deep Learning from Scratch", chapters 5 to 8.

NumPy only. The API is the book's: ``forward`` caches what ``backward`` needs, and
``backward(dout)`` returns the gradient(s) with respect to the forward inputs.
"""

from ._errors import BackwardBeforeForwardError
from .activations import Relu, Sigmoid
from .affine import Affine
from .arithmetic import AddLayer, MulLayer
from .convolution import Col2im, Convolution, Im2col, Pooling, col2im, im2col
from .functions import cross_entropy_error, log_softmax, sigmoid, softmax
from .losses import SoftmaxWithLoss
from .normalization import BatchNormalization, ChannelBatchNormalization, Dropout

__all__ = [
    "AddLayer",
    "Affine",
    "BackwardBeforeForwardError",
    "BatchNormalization",
    "ChannelBatchNormalization",
    "Col2im",
    "Convolution",
    "Dropout",
    "Im2col",
    "MulLayer",
    "Pooling",
    "Relu",
    "Sigmoid",
    "SoftmaxWithLoss",
    "col2im",
    "cross_entropy_error",
    "im2col",
    "log_softmax",
    "sigmoid",
    "softmax",
]
