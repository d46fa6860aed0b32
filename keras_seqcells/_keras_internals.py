"""The parts of Keras's private modules that the package relies on, in one place.

Keras exports these only through `keras.src`; importing them here alone keeps
the dependency visible and a Keras upgrade that moves them a one-file fix.
"""

import contextlib

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


@contextlib.contextmanager
def plain_tensorflow_adds():
    """Within the context, `keras.ops.add` on the TensorFlow backend is `tf.add`.

    Keras computes an addition whose second operand squeezes to a vector the
    size of the first's axis 1 or last axis as `tf.nn.bias_add` (to fuse it
    with a matrix product). In a graph of a fixed batch of one, a
    `(1, steps, 1)` operand qualifies, and the `NCHW` bias addition this gives
    on a rank-3 tensor is one that the LiteRT converter fails to convert (a
    forecasting model's reference plus its correction); `tf.add` computes the
    same sum.
    """
    import tensorflow as tf
    from keras.src.backend.common import dtypes
    from keras.src.backend.tensorflow import numpy as tf_numpy

    original = tf_numpy.add

    def add(x1, x2):
        if isinstance(x1, tf.SparseTensor) or isinstance(x2, tf.SparseTensor):
            return original(x1, x2)
        # As Keras's own `add`, without its bias-addition special case.
        if not isinstance(x1, (int, float)):
            x1 = tf_numpy.convert_to_tensor(x1)
        if not isinstance(x2, (int, float)):
            x2 = tf_numpy.convert_to_tensor(x2)
        dtype = dtypes.result_type(getattr(x1, "dtype", type(x1)), getattr(x2, "dtype", type(x2)))
        return tf.add(tf_numpy.convert_to_tensor(x1, dtype), tf_numpy.convert_to_tensor(x2, dtype))

    tf_numpy.add = add
    try:
        yield
    finally:
        tf_numpy.add = original


__all__ = [
    "DropoutRNNCell",
    "keras_backend",
    "no_automatic_dependency_tracking",
    "plain_tensorflow_adds",
    "variables_in_own_dtype",
]
