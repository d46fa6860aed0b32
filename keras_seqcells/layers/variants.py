"""Layers of the cell variants: layer-normalised cells and LSTM variants.

Each is a `CellLayer` on its cell: it takes the cell's arguments and
`keras.layers.RNN`'s side by side, like `keras_seqcells.LSTM`.
"""

import keras

from keras_seqcells.cells.layer_norm import (
    LayerNormGRUCell,
    LayerNormLSTMCell,
    LayerNormSimpleRNNCell,
)
from keras_seqcells.cells.lstm_variants import CIFGLSTMCell, PeepholeLSTMCell
from keras_seqcells.layers.base import CellLayer


@keras.saving.register_keras_serializable(package="keras_seqcells")
class LayerNormLSTM(CellLayer):
    """The layer of `LayerNormLSTMCell`: TensorFlow Addons' layer-normalised LSTM.

    Equations (exactly as in `LayerNormLSTMCell`, which states them in full):

        z_t  = LN_x(W_x x_t) + LN_h(W_h h_{t-1}) + b
        i_t, f_t, o_t = σ(blocks of z_t);  C~_t = tanh(block of z_t)
        C_t  = LN_c(f_t ⊙ C_{t-1} + i_t ⊙ C~_t)
        h_t  = o_t ⊙ tanh(C_t)

    Args:
        units: Positive integer, dimensionality of the state and output.
        **kwargs: The arguments of `LayerNormLSTMCell` (such as `norm_epsilon=1e-3`, `dropout`,
            `recurrent_dropout`), those of `keras.layers.RNN`
            (`return_sequences`, `return_state`, `go_backwards`, `stateful`,
            `unroll`, `zero_output_for_mask`), and base layer keyword
            arguments (`name`, `dtype`).

    Call arguments:
        sequences: A 3D tensor of shape `(batch, timesteps, features)`.
        initial_state: Optional list `[h_0, C_0]` of tensors of shape
            `(batch, units)`.
        mask: Optional boolean tensor of shape `(batch, timesteps)`; a masked
            step carries the state and the previous output unchanged.
        training: Python boolean, whether dropout is applied.

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> outputs, *states = keras_seqcells.LayerNormLSTM(
    ...     4, return_sequences=True, return_state=True)(inputs)
    >>> outputs.shape, len(states)
    ((32, 10, 4), 2)
    """

    cell_class = LayerNormLSTMCell


@keras.saving.register_keras_serializable(package="keras_seqcells")
class LayerNormSimpleRNN(CellLayer):
    """The layer of `LayerNormSimpleRNNCell`: TensorFlow Addons' `LayerNormSimpleRNN`.

    Equations (exactly as in `LayerNormSimpleRNNCell`, which states them in full):

        h_t = tanh(LN(W_xh x_t + W_hh h_{t-1}) + b_h)

    Args:
        units: Positive integer, dimensionality of the state and output.
        **kwargs: The arguments of `LayerNormSimpleRNNCell` (such as
            `layernorm_epsilon=1e-5`, `dropout`, `recurrent_dropout`), those of `keras.layers.RNN`
            (`return_sequences`, `return_state`, `go_backwards`, `stateful`,
            `unroll`, `zero_output_for_mask`), and base layer keyword
            arguments (`name`, `dtype`).

    Call arguments:
        sequences: A 3D tensor of shape `(batch, timesteps, features)`.
        initial_state: Optional list `[h_0]` of tensors of shape
            `(batch, units)`.
        mask: Optional boolean tensor of shape `(batch, timesteps)`; a masked
            step carries the state and the previous output unchanged.
        training: Python boolean, whether dropout is applied.

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> outputs, *states = keras_seqcells.LayerNormSimpleRNN(
    ...     4, return_sequences=True, return_state=True)(inputs)
    >>> outputs.shape, len(states)
    ((32, 10, 4), 1)
    """

    cell_class = LayerNormSimpleRNNCell


@keras.saving.register_keras_serializable(package="keras_seqcells")
class LayerNormGRU(CellLayer):
    """The layer of `LayerNormGRUCell`: a layer-normalised GRU (the package's convention).

    Equations (exactly as in `LayerNormGRUCell`, which states them in full):

        [u_z, u_r, u_h] = LN_x(W_x x_t);  [v_z, v_r, v_h] = LN_h(W_h h_{t-1})
        z_t  = σ(u_z + v_z + b_z);  r_t = σ(u_r + v_r + b_r)
        h~_t = tanh(u_h + r_t ⊙ v_h + b_h)
        h_t  = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h~_t

    Args:
        units: Positive integer, dimensionality of the state and output.
        **kwargs: The arguments of `LayerNormGRUCell` (such as `norm_epsilon=1e-3`, `dropout`,
            `recurrent_dropout`), those of `keras.layers.RNN`
            (`return_sequences`, `return_state`, `go_backwards`, `stateful`,
            `unroll`, `zero_output_for_mask`), and base layer keyword
            arguments (`name`, `dtype`).

    Call arguments:
        sequences: A 3D tensor of shape `(batch, timesteps, features)`.
        initial_state: Optional list `[h_0]` of tensors of shape
            `(batch, units)`.
        mask: Optional boolean tensor of shape `(batch, timesteps)`; a masked
            step carries the state and the previous output unchanged.
        training: Python boolean, whether dropout is applied.

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> outputs, *states = keras_seqcells.LayerNormGRU(
    ...     4, return_sequences=True, return_state=True)(inputs)
    >>> outputs.shape, len(states)
    ((32, 10, 4), 1)
    """

    cell_class = LayerNormGRUCell


@keras.saving.register_keras_serializable(package="keras_seqcells")
class PeepholeLSTM(CellLayer):
    """The layer of `PeepholeLSTMCell`: an LSTM with peephole connections, as in Addons.

    Equations (exactly as in `PeepholeLSTMCell`, which states them in full):

        i_t  = σ(W_xi x_t + W_hi h_{t-1} + p_i ⊙ C_{t-1} + b_i)
        f_t  = σ(W_xf x_t + W_hf h_{t-1} + p_f ⊙ C_{t-1} + b_f)
        C_t  = f_t ⊙ C_{t-1} + i_t ⊙ tanh(W_xc x_t + W_hc h_{t-1} + b_c)
        o_t  = σ(W_xo x_t + W_ho h_{t-1} + p_o ⊙ C_t + b_o)
        h_t  = o_t ⊙ tanh(C_t)

    Args:
        units: Positive integer, dimensionality of the state and output.
        **kwargs: The arguments of `PeepholeLSTMCell` (such as `unit_forget_bias=True`, `dropout`,
            `recurrent_dropout`), those of `keras.layers.RNN`
            (`return_sequences`, `return_state`, `go_backwards`, `stateful`,
            `unroll`, `zero_output_for_mask`), and base layer keyword
            arguments (`name`, `dtype`).

    Call arguments:
        sequences: A 3D tensor of shape `(batch, timesteps, features)`.
        initial_state: Optional list `[h_0, C_0]` of tensors of shape
            `(batch, units)`.
        mask: Optional boolean tensor of shape `(batch, timesteps)`; a masked
            step carries the state and the previous output unchanged.
        training: Python boolean, whether dropout is applied.

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> outputs, *states = keras_seqcells.PeepholeLSTM(
    ...     4, return_sequences=True, return_state=True)(inputs)
    >>> outputs.shape, len(states)
    ((32, 10, 4), 2)
    """

    cell_class = PeepholeLSTMCell


@keras.saving.register_keras_serializable(package="keras_seqcells")
class CIFGLSTM(CellLayer):
    """The layer of `CIFGLSTMCell`: an LSTM with coupled input and forget gates.

    Equations (exactly as in `CIFGLSTMCell`, which states them in full):

        f_t  = σ(W_xf x_t + W_hf h_{t-1} + b_f);  i_t = 1 - f_t
        C_t  = f_t ⊙ C_{t-1} + i_t ⊙ tanh(W_xc x_t + W_hc h_{t-1} + b_c)
        o_t  = σ(W_xo x_t + W_ho h_{t-1} + b_o)
        h_t  = o_t ⊙ tanh(C_t)

    Args:
        units: Positive integer, dimensionality of the state and output.
        **kwargs: The arguments of `CIFGLSTMCell` (such as `unit_forget_bias=True`, `dropout`,
            `recurrent_dropout`), those of `keras.layers.RNN`
            (`return_sequences`, `return_state`, `go_backwards`, `stateful`,
            `unroll`, `zero_output_for_mask`), and base layer keyword
            arguments (`name`, `dtype`).

    Call arguments:
        sequences: A 3D tensor of shape `(batch, timesteps, features)`.
        initial_state: Optional list `[h_0, C_0]` of tensors of shape
            `(batch, units)`.
        mask: Optional boolean tensor of shape `(batch, timesteps)`; a masked
            step carries the state and the previous output unchanged.
        training: Python boolean, whether dropout is applied.

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> outputs, *states = keras_seqcells.CIFGLSTM(
    ...     4, return_sequences=True, return_state=True)(inputs)
    >>> outputs.shape, len(states)
    ((32, 10, 4), 2)
    """

    cell_class = CIFGLSTMCell
