"""Recurrent cells computing the equations of the specification exactly."""

from keras_seqcells.cells.base import CellWeight, Recurrence, RecurrentCell
from keras_seqcells.cells.gru import GRUCell
from keras_seqcells.cells.lstm import LSTMCell
from keras_seqcells.cells.minimal import MinGRUCell, MinLSTMCell
from keras_seqcells.cells.simple_rnn import SimpleRNNCell

__all__ = [
    "CellWeight",
    "GRUCell",
    "LSTMCell",
    "MinGRUCell",
    "MinLSTMCell",
    "Recurrence",
    "RecurrentCell",
    "SimpleRNNCell",
]
