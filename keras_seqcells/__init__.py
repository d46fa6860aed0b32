"""Exact SimpleRNN, LSTM and GRU cells and layers for Keras 3.

The cells compute the equations of the specification exactly (up to
floating-point rounding), run inside `keras.layers.RNN` on every Keras
backend, and convert exactly to and from Keras's built-in layers.
"""

from keras_seqcells.cells import GRUCell, LSTMCell, SimpleRNNCell
from keras_seqcells.convert import from_keras, to_keras
from keras_seqcells.diagnostics import gradient_flow, trace
from keras_seqcells.layers import GRU, LSTM, SimpleRNN

__version__ = "0.1.0"

__all__ = [
    "GRU",
    "LSTM",
    "GRUCell",
    "LSTMCell",
    "SimpleRNN",
    "SimpleRNNCell",
    "from_keras",
    "gradient_flow",
    "to_keras",
    "trace",
]
