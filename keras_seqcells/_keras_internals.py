"""The parts of Keras's private modules that the package relies on, in one place.

Keras exports these only through `keras.src`; importing them here alone keeps
the dependency visible and a Keras upgrade that moves them a one-file fix.
"""

# The backend loops of `keras.layers.RNN` (masks, go_backwards, unroll) and
# Keras's cuDNN kernels (`lstm`, `gru`), on every backend.
from keras.src import backend as keras_backend

# `keras.layers.RNN` recognises cells that need one dropout mask per sequence
# (rather than one per step) by this mixin: it prepares the masks before the
# loop and clears them after it. Inheriting it is how a cell joins that
# protocol, so that dropout behaves like the built-in cells on every backend.
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

# Keeps a layer's stateful-state variables out of automatic tracking while
# they are created, as `keras.layers.RNN` does.
from keras.src.utils.tracking import no_automatic_dependency_tracking


def variables_in_own_dtype():
    """A context in which variables read in their own dtype (no mixed-precision autocast).

    A cell's `step` runs inside its layer's call, where Keras would read
    float32 variables as float16 under a mixed precision policy; the cells
    keep their gates and states in float32 and cast what enters a matrix
    product themselves.
    """
    return keras_backend.AutocastScope(None)


__all__ = [
    "DropoutRNNCell",
    "keras_backend",
    "no_automatic_dependency_tracking",
    "variables_in_own_dtype",
]
