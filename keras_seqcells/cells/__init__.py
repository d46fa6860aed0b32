"""Recurrent cells computing the equations of the specification exactly."""

from keras_seqcells.cells.base import CellWeight, Recurrence, RecurrentCell
from keras_seqcells.cells.gru import GRUCell
from keras_seqcells.cells.layer_norm import (
    LayerNormGRUCell,
    LayerNormLSTMCell,
    LayerNormSimpleRNNCell,
)
from keras_seqcells.cells.lstm import LSTMCell
from keras_seqcells.cells.lstm_variants import CIFGLSTMCell, PeepholeLSTMCell
from keras_seqcells.cells.minimal import MinGRUCell, MinLSTMCell
from keras_seqcells.cells.simple_rnn import SimpleRNNCell

__all__ = [
    "CIFGLSTMCell",
    "CellWeight",
    "GRUCell",
    "LSTMCell",
    "LayerNormGRUCell",
    "LayerNormLSTMCell",
    "LayerNormSimpleRNNCell",
    "MinGRUCell",
    "MinLSTMCell",
    "PeepholeLSTMCell",
    "Recurrence",
    "RecurrentCell",
    "SimpleRNNCell",
]
