"""Exact SimpleRNN, LSTM and GRU cells and layers for Keras 3.

The cells compute the equations of the specification exactly (up to
floating-point rounding), run inside `keras.layers.RNN` on every Keras
backend, and convert exactly to and from Keras's built-in layers.
"""

from keras_seqcells.architectures import (
    encoder_decoder,
    many_to_many,
    many_to_one,
    one_to_many,
    one_to_one,
)
from keras_seqcells.cells import GRUCell, LSTMCell, SimpleRNNCell
from keras_seqcells.convert import from_keras, to_keras
from keras_seqcells.diagnostics import GradientNormLogger, gradient_flow, trace
from keras_seqcells.layers import GRU, LSTM, SimpleRNN

__version__ = "0.1.0"

__all__ = [
    "GRU",
    "LSTM",
    "GRUCell",
    "GradientNormLogger",
    "LSTMCell",
    "SimpleRNN",
    "SimpleRNNCell",
    "encoder_decoder",
    "from_keras",
    "gradient_flow",
    "many_to_many",
    "many_to_one",
    "one_to_many",
    "one_to_one",
    "to_keras",
    "trace",
]
