"""Fully-connected recurrent cell with an optional softmax output head."""

import keras
from keras import ops

from keras_seqcells.cells.base import CellWeight, RecurrentCell, check_positive_int


@keras.saving.register_keras_serializable(package="keras_seqcells")
class SimpleRNNCell(RecurrentCell):
    """Cell class of the SimpleRNN layer, computing the specification's equations.

    Equations, as implemented (`tanh` is `activation`, matrices act on column
    vectors):

        h_t = tanh(W_hh h_{t-1} + W_xh x_t + b_h)
        y_t = softmax(W_hy h_t + b_y)        # only with `output_units`

    Without the head these are the equations of `keras.layers.SimpleRNNCell`,
    with the same weight variables, so weights and checkpoints interchange
    unchanged.

    Weights (Keras's layout):

    - `kernel`, shape `(input_dim, units)`: `W_xh.T`;
    - `recurrent_kernel`, shape `(units, units)`: `W_hh.T`;
    - `bias`, shape `(units,)`: `b_h`;
    - with `output_units`: `output_kernel`, shape `(units, output_units)`:
      `W_hy.T`, and `output_bias`, shape `(output_units,)`: `b_y` (present
      when `use_bias`). The head uses the kernel's and the bias's
      initializer, regularizer and constraint.

    The state is `[h]`; the output is `h_t`, or `y_t` when the head is
    enabled.

    Args:
        units: Positive integer, dimensionality of the state.
        output_units: None (no head, the default) or a positive integer, the
            number of classes of the per-step softmax head `y_t`.
        activation: Activation of the state (`tanh` in the equations).
            Default: `"tanh"`.
        use_bias: Boolean, whether the cell uses the biases `b_h` (and `b_y`).
        kernel_initializer: Initializer of `kernel` (and `output_kernel`).
            Default: `"glorot_uniform"`.
        recurrent_initializer: Initializer of `recurrent_kernel`. Default:
            `"orthogonal"`.
        bias_initializer: Initializer of `bias` (and `output_bias`). Default:
            `"zeros"`.
        kernel_regularizer: Regularizer of `kernel` (and `output_kernel`).
        recurrent_regularizer: Regularizer of `recurrent_kernel`.
        bias_regularizer: Regularizer of `bias` (and `output_bias`).
        kernel_constraint: Constraint of `kernel` (and `output_kernel`).
        recurrent_constraint: Constraint of `recurrent_kernel`.
        bias_constraint: Constraint of `bias` (and `output_bias`).
        dropout: Float in [0, 1), fraction of the input units to drop.
        recurrent_dropout: Float in [0, 1), fraction of `h_{t-1}` to drop in
            the recurrent product.
        seed: Random seed for dropout.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: A 2D tensor of shape `(batch, input_dim)`.
        states: List of one 2D tensor `[h_{t-1}]` of shape `(batch, units)`.
        training: Python boolean, whether dropout is applied.

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> rnn = keras.layers.RNN(
    ...     keras_seqcells.SimpleRNNCell(16, output_units=5), return_sequences=True)
    >>> rnn(inputs).shape  # per-step class probabilities
    (32, 10, 5)
    """

    gate_names = ("h",)

    def __init__(
        self,
        units,
        output_units=None,
        activation="tanh",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(
            units,
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
            **kwargs,
        )
        self.output_units = (
            None if output_units is None else check_positive_int("output_units", output_units)
        )

    @property
    def output_size(self):
        return self.units if self.output_units is None else self.output_units

    @property
    def output_is_first_state(self):
        # The head's output `y_t` is computed from the state `h_t`, not equal to it.
        return self.output_units is None

    def extra_weights(self, input_dim):
        if self.output_units is None:
            return []
        head = [
            CellWeight(
                "output_kernel",
                (self.units, self.output_units),
                initializer=self.kernel_initializer,
                regularizer=self.kernel_regularizer,
                constraint=self.kernel_constraint,
                document_name="W_hy",
                transpose=True,
            )
        ]
        if self.use_bias:
            head.append(
                CellWeight(
                    "output_bias",
                    (self.output_units,),
                    initializer=self.bias_initializer,
                    regularizer=self.bias_regularizer,
                    constraint=self.bias_constraint,
                    document_name="b_y",
                )
            )
        return head

    def step(self, projected, states, recurrence):
        (h_prev,) = states
        h = self.activation(projected + recurrence(h_prev))
        if self.output_units is None:
            return h, [h], {"h": h}
        y = self.output_from_states([h])
        return y, [h], {"h": h, "y": y}

    def output_from_states(self, states):
        """`h_t`, or with `output_units` the head's `y_t = softmax(W_hy h_t + b_y)`."""
        h = states[0]
        if self.output_units is None:
            return h
        logits = ops.matmul(
            ops.cast(h, self.compute_dtype),
            ops.cast(self.output_kernel, self.compute_dtype),
        )
        logits = ops.cast(logits, self.state_dtype)
        if self.use_bias:
            logits = logits + ops.cast(self.output_bias, self.state_dtype)
        return ops.softmax(logits, axis=-1)

    def get_config(self):
        return {**super().get_config(), "output_units": self.output_units}
