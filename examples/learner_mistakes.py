"""Two classic first attempts at chapter-5 layers, each with one mistake, to try backprop-verify on:

backprop-verify --layer examples/learner_mistakes.py:SoftmaxWithLoss --against softmax_with_loss
backprop-verify --layer examples/learner_mistakes.py:Affine --against affine
"""

import numpy as np


def softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


class SoftmaxWithLoss:
    def __init__(self):
        self.y = None
        self.t = None

    def forward(self, x, t):
        self.y = softmax(x)
        self.t = np.eye(x.shape[1], dtype=x.dtype)[t] if t.ndim == 1 else t
        log_y = x - x.max(axis=1, keepdims=True)
        log_y = log_y - np.log(np.exp(log_y).sum(axis=1, keepdims=True))
        return -np.sum(self.t * log_y) / x.shape[0]

    def backward(self, dout=1):
        return dout * (self.y - self.t)  # forgot: / batch_size


class Affine:
    def __init__(self, W, b):
        self.W, self.b = W, b
        self.x = None
        self.dW = self.db = None

    def forward(self, x):
        self.x = x.reshape(x.shape[0], -1)
        return self.x @ self.W + self.b

    def backward(self, dout):
        self.dW = self.x.T @ dout
        self.db = np.sum(dout, axis=0)
        return dout @ self.W.T  # forgot: .reshape(original x shape)
