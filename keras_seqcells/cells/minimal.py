"""minGRU and minLSTM: cells whose gates read only the input (Feng et al., 2024).

Leo Feng, Frederick Tung, Mohamed Osama Ahmed, Yoshua Bengio and Hossein
Hajimirsadeghi, "Were RNNs All We Needed?", arXiv:2410.01201. Both cells
compute `h_t = a_t ⊙ h_{t-1} + b_t` with `a_t` and `b_t` functions of `x_t`
alone, so a whole sequence is one linear recurrence that a parallel scan
computes (see `keras_seqcells.layers.MinGRU`); `step` is its sequential form.
"""

import keras
from keras import ops

from keras_seqcells.cells.base import RecurrentCell

# The cell arguments of `RecurrentCell` that a cell without a recurrent kernel
# and with a fixed candidate function does not take.
_UNUSED_ARGUMENTS = (
    "activation",
    "recurrent_initializer",
    "recurrent_regularizer",
    "recurrent_constraint",
    "recurrent_dropout",
)


def candidate(a):
    """`g(a)`: `a + 0.5` for `a ≥ 0`, `σ(a)` for `a < 0` (positive and continuous)."""
    return ops.where(a >= 0, a + 0.5, ops.sigmoid(a))


def log_candidate(a):
    """`log g(a)`: `log(a + 0.5)` for `a ≥ 0`, `-softplus(-a)` (= `log σ(a)`) for `a < 0`.

    Both branches are finite for every `a` (the first reads `relu(a)`), so the
    gradient of the branch not taken is zero rather than NaN.
    """
    return ops.where(a >= 0, ops.log(ops.relu(a) + 0.5), -ops.softplus(-a))


def log_sigmoid(a):
    """`log σ(a) = -softplus(-a)`, finite for every `a`."""
    return -ops.softplus(-a)


class _MinimalCell(RecurrentCell):
    """What minGRU and minLSTM share: no recurrent kernel, the candidate `g`."""

    recurrent_gate_names = ()

    def __init__(
        self,
        units,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(
            units,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            seed=seed,
            **kwargs,
        )

    def log_coefficients(self, projected):
        """`(log a_t, log b_t)` of `h_t = a_t ⊙ h_{t-1} + b_t` from the input projections.

        Args:
            projected: `x_t @ kernel + bias` of any number of steps, shape
                `(..., len(gate_names) * units)`, in the state dtype.

        Returns:
            Two tensors of shape `(..., units)`: `log a_t` and `log b_t`,
            computed in log space without forming `a_t` or `b_t`.
        """
        raise NotImplementedError

    def get_config(self):
        config = super().get_config()
        for name in _UNUSED_ARGUMENTS:
            config.pop(name, None)
        return config


@keras.saving.register_keras_serializable(package="keras_seqcells")
class MinGRUCell(_MinimalCell):
    """minGRU cell (Feng et al., 2024): a GRU whose gates do not read `h_{t-1}`.

    Equations, as implemented (the paper's log-space-compatible minGRU; `σ`
    the sigmoid, `⊙` the elementwise product, matrices act on column
    vectors):

        z_t  = σ(W_xz x_t + b_z)
        h~_t = g(W_xh x_t + b_h)
        h_t  = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h~_t

    with `g(a) = a + 0.5` for `a ≥ 0` and `g(a) = σ(a)` for `a < 0`, which
    keeps the candidate positive (so that `log h~_t` exists). There is no
    `W_hz` or `W_hh`: the recurrence is linear in `h_{t-1}`,
    `h_t = a_t ⊙ h_{t-1} + b_t` with `a_t = 1 - z_t` and `b_t = z_t ⊙ h~_t`
    depending on `x_t` only. `step` computes it one step at a time (the cell
    inside `keras.layers.RNN`, `keras_seqcells.trace`, the SavedModel `step`
    signature); the `MinGRU` layer can compute whole sequences with a
    parallel scan in log space instead (`log_coefficients`).

    Weights (Keras's fused layout, gate order z, h; no recurrent kernel):

    - `kernel`, shape `(input_dim, 2 * units)`: columns `[W_xz.T | W_xh.T]`;
    - `bias`, shape `(2 * units,)`: `[b_z | b_h]`.

    The state is `[h]`; the output is `h_t`. With dropout, one input mask,
    sampled once per sequence, is shared by both gates.

    Args:
        units: Positive integer, dimensionality of the state and output.
        use_bias: Boolean, whether the cell uses the biases `b_*`.
        kernel_initializer: Initializer of `kernel`. Default:
            `"glorot_uniform"`.
        bias_initializer: Initializer of `bias`. Default: `"zeros"`.
        kernel_regularizer: Regularizer of `kernel`.
        bias_regularizer: Regularizer of `bias`.
        kernel_constraint: Constraint of `kernel`.
        bias_constraint: Constraint of `bias`.
        dropout: Float in [0, 1), fraction of the input units to drop.
        seed: Random seed for dropout.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: A 2D tensor of shape `(batch, input_dim)`.
        states: List of one 2D tensor `[h_{t-1}]` of shape `(batch, units)`.
        training: Python boolean, whether dropout is applied.

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> rnn = keras.layers.RNN(keras_seqcells.MinGRUCell(4))
    >>> rnn(inputs).shape
    (32, 4)
    """

    gate_names = ("z", "h")

    def step(self, projected, states, recurrence):
        (h_prev,) = states
        x_z, x_h = ops.split(projected, 2, axis=-1)
        z = ops.sigmoid(x_z)
        h_tilde = candidate(x_h)
        h = (1.0 - z) * h_prev + z * h_tilde
        return h, [h], {"z": z, "h_tilde": h_tilde, "h": h}

    def log_coefficients(self, projected):
        x_z, x_h = ops.split(projected, 2, axis=-1)
        # log(1 - σ(k)) = -softplus(k) and log σ(k) = -softplus(-k).
        return -ops.softplus(x_z), log_sigmoid(x_z) + log_candidate(x_h)


@keras.saving.register_keras_serializable(package="keras_seqcells")
class MinLSTMCell(_MinimalCell):
    """minLSTM cell (Feng et al., 2024): normalised forget and input gates of `x_t` only.

    Equations, as implemented (the paper's log-space-compatible minLSTM; `σ`
    the sigmoid, `⊙` the elementwise product, matrices act on column
    vectors):

        f_t  = σ(W_xf x_t + b_f)
        i_t  = σ(W_xi x_t + b_i)
        h~_t = g(W_xh x_t + b_h)
        f'_t = f_t / (f_t + i_t)
        i'_t = i_t / (f_t + i_t)
        h_t  = f'_t ⊙ h_{t-1} + i'_t ⊙ h~_t

    with `g(a) = a + 0.5` for `a ≥ 0` and `g(a) = σ(a)` for `a < 0`. The
    normalised gates are computed as `f'_t = σ(log f_t - log i_t)` and
    `i'_t = σ(log i_t - log f_t)` (with `log σ(a) = -softplus(-a)`), which
    equal the quotients above and stay finite where both gates underflow.
    Unlike the LSTM, there is no cell state and no output gate: the state is
    `[h]`, the output `h_t`, and no gate reads `h_{t-1}`, so
    `h_t = a_t ⊙ h_{t-1} + b_t` with `a_t = f'_t`, `b_t = i'_t ⊙ h~_t`.
    `step` computes it one step at a time; the `MinLSTM` layer can compute
    whole sequences with a parallel scan in log space instead
    (`log_coefficients`).

    Weights (Keras's fused layout, gate order f, i, h; no recurrent kernel):

    - `kernel`, shape `(input_dim, 3 * units)`: columns
      `[W_xf.T | W_xi.T | W_xh.T]`;
    - `bias`, shape `(3 * units,)`: `[b_f | b_i | b_h]`.

    With dropout, one input mask, sampled once per sequence, is shared by all
    gates.

    Args:
        units: Positive integer, dimensionality of the state and output.
        use_bias: Boolean, whether the cell uses the biases `b_*`.
        kernel_initializer: Initializer of `kernel`. Default:
            `"glorot_uniform"`.
        bias_initializer: Initializer of `bias`. Default: `"zeros"`.
        kernel_regularizer: Regularizer of `kernel`.
        bias_regularizer: Regularizer of `bias`.
        kernel_constraint: Constraint of `kernel`.
        bias_constraint: Constraint of `bias`.
        dropout: Float in [0, 1), fraction of the input units to drop.
        seed: Random seed for dropout.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: A 2D tensor of shape `(batch, input_dim)`.
        states: List of one 2D tensor `[h_{t-1}]` of shape `(batch, units)`.
        training: Python boolean, whether dropout is applied.

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> rnn = keras.layers.RNN(keras_seqcells.MinLSTMCell(4))
    >>> rnn(inputs).shape
    (32, 4)
    """

    gate_names = ("f", "i", "h")

    def step(self, projected, states, recurrence):
        (h_prev,) = states
        x_f, x_i, x_h = ops.split(projected, 3, axis=-1)
        f = ops.sigmoid(x_f)
        i = ops.sigmoid(x_i)
        difference = log_sigmoid(x_f) - log_sigmoid(x_i)  # log f_t - log i_t
        f_prime = ops.sigmoid(difference)
        i_prime = ops.sigmoid(-difference)
        h_tilde = candidate(x_h)
        h = f_prime * h_prev + i_prime * h_tilde
        gates = {"f": f, "i": i, "f_prime": f_prime, "i_prime": i_prime}
        return h, [h], {**gates, "h_tilde": h_tilde, "h": h}

    def log_coefficients(self, projected):
        x_f, x_i, x_h = ops.split(projected, 3, axis=-1)
        difference = log_sigmoid(x_f) - log_sigmoid(x_i)  # log f_t - log i_t
        return log_sigmoid(difference), log_sigmoid(-difference) + log_candidate(x_h)
