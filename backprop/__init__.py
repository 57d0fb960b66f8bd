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
from .gradient import numerical_gradient
from .losses import SoftmaxWithLoss
from .networks import DeepConvNet, MultiLayerNet, MultiLayerNetExtend, SimpleConvNet, TwoLayerNet
from .normalization import BatchNormalization, ChannelBatchNormalization, Dropout
from .optimizers import SGD, AdaGrad, Adam, Momentum

__all__ = [
    "SGD",
    "AdaGrad",
    "Adam",
    "AddLayer",
    "Affine",
    "BackwardBeforeForwardError",
    "BatchNormalization",
    "ChannelBatchNormalization",
    "Col2im",
    "Convolution",
    "DeepConvNet",
    "Dropout",
    "Im2col",
    "Momentum",
    "MulLayer",
    "MultiLayerNet",
    "MultiLayerNetExtend",
    "Pooling",
    "Relu",
    "Sigmoid",
    "SimpleConvNet",
    "SoftmaxWithLoss",
    "TwoLayerNet",
    "col2im",
    "cross_entropy_error",
    "im2col",
    "log_softmax",
    "numerical_gradient",
    "sigmoid",
    "softmax",
]
