"""The layers and models of "Deep Learning from Scratch 2", in that book's convention.

Parameters sit in ``self.params`` and their gradients in ``self.grads``, two lists in the same order;
``backward`` writes each gradient *in place* (``self.grads[0][...] = dW``), so that a model's list of every
layer's ``grads`` stays valid. A weight shared by several layers (tied weights) is listed once per layer,
and its gradient is the sum of the matching ``grads`` entries.

Book 2 reuses the names ``Affine``, ``Sigmoid``, ``SoftmaxWithLoss`` and ``Dropout`` of book 1 with another
convention, so the whole second book lives here, in one namespace, rather than beside book 1 in
``backprop``: ``from backprop.nlp import *`` stands for the book's ``common.layers``,
``common.time_layers`` and the chapters' layer modules. The submodules mirror ``reference.nlp`` and
``backprop.verify.specs.nlp``.
"""

from .attention import Attention, AttentionWeight, TimeAttention, WeightSum
from .base_model import BaseModel
from .cbow import CBOW, SimpleCBOW, SkipGram
from .layers import Affine, Dropout, Embedding, MatMul, Sigmoid, SigmoidWithLoss, Softmax, SoftmaxWithLoss
from .negative_sampling import EmbeddingDot, NegativeSamplingLoss, UnigramSampler
from .recurrent import GRU, LSTM, RNN, TimeBiLSTM, TimeGRU, TimeLSTM, TimeRNN
from .rnnlm import BetterRnnlm, Rnnlm, SimpleRnnlm
from .seq2seq import (
    AttentionDecoder,
    AttentionEncoder,
    AttentionSeq2seq,
    Decoder,
    Encoder,
    PeekyDecoder,
    PeekySeq2seq,
    Seq2seq,
)
from .time_layers import TimeAffine, TimeDropout, TimeEmbedding, TimeSigmoidWithLoss, TimeSoftmaxWithLoss
from .trainer import RnnlmTrainer, Trainer, clip_grads, eval_perplexity, eval_seq2seq, remove_duplicate

__all__: list[str] = [
    "CBOW",
    "GRU",
    "LSTM",
    "RNN",
    "Affine",
    "Attention",
    "AttentionDecoder",
    "AttentionEncoder",
    "AttentionSeq2seq",
    "AttentionWeight",
    "BaseModel",
    "BetterRnnlm",
    "Decoder",
    "Dropout",
    "Embedding",
    "EmbeddingDot",
    "Encoder",
    "MatMul",
    "NegativeSamplingLoss",
    "PeekyDecoder",
    "PeekySeq2seq",
    "Rnnlm",
    "RnnlmTrainer",
    "Seq2seq",
    "Sigmoid",
    "SigmoidWithLoss",
    "SimpleCBOW",
    "SimpleRnnlm",
    "SkipGram",
    "Softmax",
    "SoftmaxWithLoss",
    "TimeAffine",
    "TimeAttention",
    "TimeBiLSTM",
    "TimeDropout",
    "TimeEmbedding",
    "TimeGRU",
    "TimeLSTM",
    "TimeRNN",
    "TimeSigmoidWithLoss",
    "TimeSoftmaxWithLoss",
    "Trainer",
    "UnigramSampler",
    "WeightSum",
    "clip_grads",
    "eval_perplexity",
    "eval_seq2seq",
    "remove_duplicate",
]
