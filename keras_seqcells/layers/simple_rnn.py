"""The SimpleRNN layer."""

import keras

from keras_seqcells.cells import SimpleRNNCell
from keras_seqcells.layers.base import SeqCellRNN, _from_cell


@keras.saving.register_keras_serializable(package="keras_seqcells")
class SimpleRNN(SeqCellRNN):
    """Fully-connected RNN layer on `SimpleRNNCell`; drop-in for `keras.layers.SimpleRNN`.

    Equations (see `SimpleRNNCell`):

        h_t = tanh(W_hh h_{t-1} + W_xh x_t + b_h)
        y_t = softmax(W_hy h_t + b_y)        # only with `output_units`

    Without `output_units` the layer has the weight variables of
    `keras.layers.SimpleRNN` (`kernel`, `recurrent_kernel`, `bias`), so
    weights and checkpoints load either way unchanged.

    Args:
        units: Positive integer, dimensionality of the state.
        activation, use_bias, kernel_initializer, recurrent_initializer,
            bias_initializer, kernel_regularizer, recurrent_regularizer,
            bias_regularizer, kernel_constraint, recurrent_constraint,
            bias_constraint, dropout, recurrent_dropout, seed: as for
            `SimpleRNNCell`.
        activity_regularizer: Regularizer of the layer's output.
        return_sequences: Boolean, whether to return the whole output
            sequence rather than the last output. Default: False.
        return_state: Boolean, whether to also return the last state.
        go_backwards: Boolean, whether to process the sequence backwards and
            return the reversed sequence.
        stateful: Boolean, whether the last state of each sample is the
            initial state of the same sample in the next batch.
        unroll: Boolean, whether to unroll the loop (faster for short
            sequences, more memory).
        output_units: None or a positive integer: the per-step softmax head of
            `SimpleRNNCell`.
        **kwargs: Base layer keyword arguments (`name`, `dtype`,
            `zero_output_for_mask`, ...).

    Call arguments:
        sequences: A 3D tensor of shape `(batch, timesteps, features)`.
        initial_state: Optional list with one tensor of shape `(batch, units)`.
        mask: Optional boolean tensor of shape `(batch, timesteps)`; a masked
            step carries the state and the previous output unchanged.
        training: Python boolean, whether dropout is applied.

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> keras_seqcells.SimpleRNN(4, return_sequences=True)(inputs).shape
    (32, 10, 4)
    """

    def __init__(
        self,
        units,
        activation="tanh",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        seed=None,
        output_units=None,
        **kwargs,
    ):
        cell = SimpleRNNCell(
            units,
            output_units=output_units,
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name="simple_rnn_cell",
        )
        super().__init__(
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            activity_regularizer=activity_regularizer,
            **kwargs,
        )

    output_units = _from_cell("output_units")
