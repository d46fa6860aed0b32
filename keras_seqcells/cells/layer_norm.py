"""Layer-normalised cells: the LSTM and SimpleRNN of TensorFlow Addons, and a GRU.

Every layer norm here is `LN(v) = (v - mean(v)) / sqrt(var(v) + epsilon) ⊙ γ + β`,
with the mean and the biased variance taken over the last axis of `v` (one
example at a time), as `keras.layers.LayerNormalization` computes it. Under
mixed precision the statistics are computed in float32, the state dtype.
"""

import keras
from keras import ops

from keras_seqcells._checks import (
    check_bool,
    check_positive_float,
    get_constraint,
    get_initializer,
    get_regularizer,
)
from keras_seqcells.cells.base import CellWeight, RecurrentCell, get_activation


def layer_norm(v, gamma, beta, epsilon):
    """`(v - mean) / sqrt(var + epsilon) * gamma + beta` over the last axis of `v`.

    Args:
        v: A `(batch, size)` tensor.
        gamma: The scale, shape `(size,)`.
        beta: The shift, shape `(size,)`, or None for none.
        epsilon: The float added to the (biased) variance.

    Returns:
        The normalised tensor, in the dtype of `v`.
    """
    mean = ops.mean(v, axis=-1, keepdims=True)
    centered = v - mean
    variance = ops.mean(ops.square(centered), axis=-1, keepdims=True)
    normalised = centered / ops.sqrt(variance + epsilon) * ops.cast(gamma, v.dtype)
    if beta is not None:
        normalised = normalised + ops.cast(beta, v.dtype)
    return normalised


def _norm_weights(name, document_suffix, size, gamma_initializer, beta_initializer):
    """The `γ` (ones by default) and `β` (zeros) of one layer norm over `size` values."""
    return [
        CellWeight(
            f"{name}_gamma",
            (size,),
            initializer=gamma_initializer,
            document_name=f"gamma_{document_suffix}",
        ),
        CellWeight(
            f"{name}_beta",
            (size,),
            initializer=beta_initializer,
            document_name=f"beta_{document_suffix}",
        ),
    ]


def _forget_bias_one(units, initializer):
    """The fused LSTM bias initializer with `b_f` (the second block) set to one."""

    def initialize(_, *args, **kwargs):
        return ops.concatenate(
            [
                initializer((units,), *args, **kwargs),
                keras.initializers.get("ones")((units,), *args, **kwargs),
                initializer((2 * units,), *args, **kwargs),
            ]
        )

    return initialize


@keras.saving.register_keras_serializable(package="keras_seqcells")
class LayerNormLSTMCell(RecurrentCell):
    """LSTM cell with layer normalisation, as TensorFlow Addons' `LayerNormLSTMCell`.

    Equations, as implemented (`σ` is `recurrent_activation`, `tanh` is
    `activation`, `⊙` the elementwise product, matrices act on column
    vectors; `W_x` stacks `W_xi, W_xf, W_xc, W_xo` and `W_h` stacks
    `W_hi, W_hf, W_hc, W_ho`):

        z_t  = LN_x(W_x x_t) + LN_h(W_h h_{t-1}) + b     # 4 * units values
        [a_i, a_f, a_c, a_o] = z_t                       # blocks of units
        i_t  = σ(a_i)
        f_t  = σ(a_f)
        C~_t = tanh(a_c)
        o_t  = σ(a_o)
        C_t  = LN_c(f_t ⊙ C_{t-1} + i_t ⊙ C~_t)
        h_t  = o_t ⊙ tanh(C_t)

    Each layer norm is `LN(v) = (v - mean(v)) / sqrt(var(v) + norm_epsilon)
    ⊙ γ + β`, mean and biased variance over the last axis of `v` (as in
    `keras.layers.LayerNormalization`): `LN_x` and `LN_h` each over the whole
    fused `4 * units` vector, `LN_c` over the `units` values of the new cell
    state, which is the state carried to the next step. Under mixed precision
    the statistics are computed in float32.

    Weights (Keras's fused LSTM layout, gate order i, f, c, o):

    - `kernel`, shape `(input_dim, 4 * units)`: columns
      `[W_xi.T | W_xf.T | W_xc.T | W_xo.T]`;
    - `recurrent_kernel`, shape `(units, 4 * units)`: columns
      `[W_hi.T | W_hf.T | W_hc.T | W_ho.T]`;
    - `bias`, shape `(4 * units,)`: `[b_i | b_f | b_c | b_o]`, added after
      the layer norms;
    - `kernel_norm_gamma`, `kernel_norm_beta`, shape `(4 * units,)`: `γ` and
      `β` of `LN_x` (named `gamma_x`, `beta_x`; blocks in gate order);
    - `recurrent_norm_gamma`, `recurrent_norm_beta`, shape `(4 * units,)`:
      those of `LN_h` (`gamma_h`, `beta_h`);
    - `state_norm_gamma`, `state_norm_beta`, shape `(units,)`: those of
      `LN_c` (`gamma_c`, `beta_c`).

    `named_weights()` returns `W_xi`, ..., `W_hi`, ..., `b_i`, ..., and
    `gamma_x`, `beta_x`, `gamma_h`, `beta_h`, `gamma_c`, `beta_c`. The state
    is `[h, C]`; the output is `h_t`. With dropout, one input mask and one
    recurrent mask (on `h_{t-1}` before `W_h`), sampled once per sequence,
    are shared by all four gates.

    Args:
        units: Positive integer, dimensionality of the state and output.
        activation: Activation of the candidate and of the cell output
            (`tanh` in the equations). Default: `"tanh"`.
        recurrent_activation: Activation of the gates (`σ`). Default:
            `"sigmoid"`.
        use_bias: Boolean, whether the cell uses the biases `b_*`.
        kernel_initializer: Initializer of `kernel`. Default:
            `"glorot_uniform"`.
        recurrent_initializer: Initializer of `recurrent_kernel`. Default:
            `"orthogonal"`.
        bias_initializer: Initializer of `bias`. Default: `"zeros"`.
        unit_forget_bias: Boolean. If True, adds 1 to the forget gate bias
            `b_f` at initialization. Default: True.
        kernel_regularizer: Regularizer of `kernel`.
        recurrent_regularizer: Regularizer of `recurrent_kernel`.
        bias_regularizer: Regularizer of `bias`.
        kernel_constraint: Constraint of `kernel`.
        recurrent_constraint: Constraint of `recurrent_kernel`.
        bias_constraint: Constraint of `bias`.
        dropout: Float in [0, 1), fraction of the input units to drop.
        recurrent_dropout: Float in [0, 1), fraction of `h_{t-1}` to drop in
            the recurrent product.
        seed: Random seed for dropout.
        norm_gamma_initializer: Initializer of the three `γ`. Default:
            `"ones"`.
        norm_beta_initializer: Initializer of the three `β`. Default:
            `"zeros"`.
        norm_epsilon: Positive float added to the variances. Default: 1e-3
            (Addons' default).
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: A 2D tensor of shape `(batch, input_dim)`.
        states: List of two 2D tensors `[h_{t-1}, C_{t-1}]`, each of shape
            `(batch, units)`.
        training: Python boolean, whether dropout is applied.

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> rnn = keras.layers.RNN(keras_seqcells.LayerNormLSTMCell(4))
    >>> rnn(inputs).shape
    (32, 4)
    """

    gate_names = ("i", "f", "c", "o")
    state_names = ("h", "c")
    bias_in_projection = False

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        norm_gamma_initializer="ones",
        norm_beta_initializer="zeros",
        norm_epsilon=1e-3,
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
        self.recurrent_activation = get_activation("recurrent_activation", recurrent_activation)
        self.unit_forget_bias = check_bool("unit_forget_bias", unit_forget_bias)
        self.norm_gamma_initializer = get_initializer(
            "norm_gamma_initializer", norm_gamma_initializer
        )
        self.norm_beta_initializer = get_initializer("norm_beta_initializer", norm_beta_initializer)
        self.norm_epsilon = check_positive_float("norm_epsilon", norm_epsilon)

    def _fused_bias_initializer(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        return _forget_bias_one(self.units, self.bias_initializer)

    def extra_weights(self, input_dim):
        gamma, beta, fused = self.norm_gamma_initializer, self.norm_beta_initializer, 4 * self.units
        return [
            *_norm_weights("kernel_norm", "x", fused, gamma, beta),
            *_norm_weights("recurrent_norm", "h", fused, gamma, beta),
            *_norm_weights("state_norm", "c", self.units, gamma, beta),
        ]

    def step(self, projected, states, recurrence):
        h_prev, c_prev = states
        epsilon = self.norm_epsilon
        z = layer_norm(projected, self.kernel_norm_gamma, self.kernel_norm_beta, epsilon)
        z = z + layer_norm(
            recurrence(h_prev), self.recurrent_norm_gamma, self.recurrent_norm_beta, epsilon
        )
        if self.use_bias:
            z = z + ops.cast(self.bias, z.dtype)
        a_i, a_f, a_c, a_o = ops.split(z, 4, axis=-1)
        i = self.recurrent_activation(a_i)
        f = self.recurrent_activation(a_f)
        c_tilde = self.activation(a_c)
        o = self.recurrent_activation(a_o)
        c = layer_norm(
            f * c_prev + i * c_tilde, self.state_norm_gamma, self.state_norm_beta, epsilon
        )
        h = o * self.activation(c)
        gates = {"i": i, "f": f, "c_tilde": c_tilde, "c": c, "o": o, "h": h}
        return h, [h, c], gates

    def get_config(self):
        config = {
            "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
            "unit_forget_bias": self.unit_forget_bias,
            "norm_gamma_initializer": keras.initializers.serialize(self.norm_gamma_initializer),
            "norm_beta_initializer": keras.initializers.serialize(self.norm_beta_initializer),
            "norm_epsilon": self.norm_epsilon,
        }
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="keras_seqcells")
class LayerNormSimpleRNNCell(RecurrentCell):
    """SimpleRNN cell with layer normalisation, as TensorFlow Addons' `LayerNormSimpleRNNCell`.

    Equations, as implemented (`tanh` is `activation`, matrices act on column
    vectors):

        a_t = W_xh x_t + W_hh h_{t-1}
        h_t = tanh(LN(a_t) + b_h)

    where `LN(a) = (a - mean(a)) / sqrt(var(a) + layernorm_epsilon) ⊙ γ`,
    mean and biased variance over the `units` values of `a` (as in
    `keras.layers.LayerNormalization(center=False)`). The layer norm acts on
    the sum of both products, and the bias `b_h` comes after it, in place of
    a layer-norm shift: this is the order of Addons' cell (products, sum,
    layer norm with a scale only, bias, activation). Under mixed precision
    the statistics are computed in float32.

    Weights (Keras's SimpleRNN layout, and the scale):

    - `kernel`, shape `(input_dim, units)`: `W_xh.T`;
    - `recurrent_kernel`, shape `(units, units)`: `W_hh.T`;
    - `bias`, shape `(units,)`: `b_h`;
    - `layernorm_gamma`, shape `(units,)`: `γ` (named `gamma`).

    The state is `[h]`; the output is `h_t`. With dropout, one input mask and
    one recurrent mask (on `h_{t-1}`), sampled once per sequence.

    Args:
        units: Positive integer, dimensionality of the state and output.
        activation: Activation of the state (`tanh` in the equations).
            Default: `"tanh"`.
        use_bias: Boolean, whether the cell uses the bias `b_h`.
        layernorm_epsilon: Positive float added to the variance. Default:
            1e-5 (Addons' default).
        kernel_initializer: Initializer of `kernel`. Default:
            `"glorot_uniform"`.
        recurrent_initializer: Initializer of `recurrent_kernel`. Default:
            `"orthogonal"`.
        bias_initializer: Initializer of `bias`. Default: `"zeros"`.
        gamma_initializer: Initializer of `γ`. Default: `"ones"`.
        kernel_regularizer: Regularizer of `kernel`.
        recurrent_regularizer: Regularizer of `recurrent_kernel`.
        bias_regularizer: Regularizer of `bias`.
        gamma_regularizer: Regularizer of `γ`.
        kernel_constraint: Constraint of `kernel`.
        recurrent_constraint: Constraint of `recurrent_kernel`.
        bias_constraint: Constraint of `bias`.
        gamma_constraint: Constraint of `γ`.
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
    >>> rnn = keras.layers.RNN(keras_seqcells.LayerNormSimpleRNNCell(4))
    >>> rnn(inputs).shape
    (32, 4)
    """

    gate_names = ("h",)
    bias_in_projection = False

    def __init__(
        self,
        units,
        activation="tanh",
        use_bias=True,
        layernorm_epsilon=1e-5,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        gamma_initializer="ones",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        gamma_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        gamma_constraint=None,
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
        self.layernorm_epsilon = check_positive_float("layernorm_epsilon", layernorm_epsilon)
        self.gamma_initializer = get_initializer("gamma_initializer", gamma_initializer)
        self.gamma_regularizer = get_regularizer("gamma_regularizer", gamma_regularizer)
        self.gamma_constraint = get_constraint("gamma_constraint", gamma_constraint)

    def extra_weights(self, input_dim):
        return [
            CellWeight(
                "layernorm_gamma",
                (self.units,),
                initializer=self.gamma_initializer,
                regularizer=self.gamma_regularizer,
                constraint=self.gamma_constraint,
                document_name="gamma",
            )
        ]

    def step(self, projected, states, recurrence):
        (h_prev,) = states
        a = projected + recurrence(h_prev)
        normalised = layer_norm(a, self.layernorm_gamma, None, self.layernorm_epsilon)
        if self.use_bias:
            normalised = normalised + ops.cast(self.bias, normalised.dtype)
        h = self.activation(normalised)
        return h, [h], {"h": h}

    def get_config(self):
        config = {
            "layernorm_epsilon": self.layernorm_epsilon,
            "gamma_initializer": keras.initializers.serialize(self.gamma_initializer),
            "gamma_regularizer": keras.regularizers.serialize(self.gamma_regularizer),
            "gamma_constraint": keras.constraints.serialize(self.gamma_constraint),
        }
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="keras_seqcells")
class LayerNormGRUCell(RecurrentCell):
    """GRU cell with layer normalisation, in the package's GRU convention.

    Equations, as implemented (`σ` is `recurrent_activation`, `tanh` is
    `activation`, `⊙` the elementwise product, matrices act on column
    vectors; `W_x` stacks `W_xz, W_xr, W_xh` and `W_h` stacks
    `W_hz, W_hr, W_hh`):

        [u_z, u_r, u_h] = LN_x(W_x x_t)         # 3 * units values, in blocks
        [v_z, v_r, v_h] = LN_h(W_h h_{t-1})
        z_t  = σ(u_z + v_z + b_z)
        r_t  = σ(u_r + v_r + b_r)
        h~_t = tanh(u_h + r_t ⊙ v_h + b_h)
        h_t  = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h~_t

    This is `GRUCell`'s reset-after form (`z_t` weights the **new**
    candidate) with a layer norm on each fused product. Each layer norm is
    `LN(v) = (v - mean(v)) / sqrt(var(v) + norm_epsilon) ⊙ γ + β`, mean and
    biased variance over the whole `3 * units` vector (as in
    `keras.layers.LayerNormalization`). Under mixed precision the statistics
    are computed in float32.

    Weights (Keras's fused GRU layout, gate order z, r, h; a single bias):

    - `kernel`, shape `(input_dim, 3 * units)`: columns
      `[W_xz.T | W_xr.T | W_xh.T]`;
    - `recurrent_kernel`, shape `(units, 3 * units)`: columns
      `[W_hz.T | W_hr.T | W_hh.T]`;
    - `bias`, shape `(3 * units,)`: `[b_z | b_r | b_h]`;
    - `kernel_norm_gamma`, `kernel_norm_beta`, shape `(3 * units,)`: `γ`
      and `β` of `LN_x` (named `gamma_x`, `beta_x`);
    - `recurrent_norm_gamma`, `recurrent_norm_beta`, shape `(3 * units,)`:
      those of `LN_h` (`gamma_h`, `beta_h`).

    The state is `[h]`; the output is `h_t`. With dropout, one input mask and
    one recurrent mask (on `h_{t-1}` before `W_h`), sampled once per
    sequence, are shared by all gates.

    Args:
        units: Positive integer, dimensionality of the state and output.
        activation: Activation of the candidate (`tanh`). Default: `"tanh"`.
        recurrent_activation: Activation of the gates (`σ`). Default:
            `"sigmoid"`.
        use_bias: Boolean, whether the cell uses the biases `b_*`.
        kernel_initializer: Initializer of `kernel`. Default:
            `"glorot_uniform"`.
        recurrent_initializer: Initializer of `recurrent_kernel`. Default:
            `"orthogonal"`.
        bias_initializer: Initializer of `bias`. Default: `"zeros"`.
        kernel_regularizer: Regularizer of `kernel`.
        recurrent_regularizer: Regularizer of `recurrent_kernel`.
        bias_regularizer: Regularizer of `bias`.
        kernel_constraint: Constraint of `kernel`.
        recurrent_constraint: Constraint of `recurrent_kernel`.
        bias_constraint: Constraint of `bias`.
        dropout: Float in [0, 1), fraction of the input units to drop.
        recurrent_dropout: Float in [0, 1), fraction of `h_{t-1}` to drop in
            the recurrent product.
        seed: Random seed for dropout.
        norm_gamma_initializer: Initializer of both `γ`. Default: `"ones"`.
        norm_beta_initializer: Initializer of both `β`. Default: `"zeros"`.
        norm_epsilon: Positive float added to the variances. Default: 1e-3
            (as `LayerNormLSTMCell`).
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: A 2D tensor of shape `(batch, input_dim)`.
        states: List of one 2D tensor `[h_{t-1}]` of shape `(batch, units)`.
        training: Python boolean, whether dropout is applied.

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> rnn = keras.layers.RNN(keras_seqcells.LayerNormGRUCell(4))
    >>> rnn(inputs).shape
    (32, 4)
    """

    gate_names = ("z", "r", "h")
    bias_in_projection = False

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
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
        norm_gamma_initializer="ones",
        norm_beta_initializer="zeros",
        norm_epsilon=1e-3,
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
        self.recurrent_activation = get_activation("recurrent_activation", recurrent_activation)
        self.norm_gamma_initializer = get_initializer(
            "norm_gamma_initializer", norm_gamma_initializer
        )
        self.norm_beta_initializer = get_initializer("norm_beta_initializer", norm_beta_initializer)
        self.norm_epsilon = check_positive_float("norm_epsilon", norm_epsilon)

    def extra_weights(self, input_dim):
        gamma, beta, fused = self.norm_gamma_initializer, self.norm_beta_initializer, 3 * self.units
        return [
            *_norm_weights("kernel_norm", "x", fused, gamma, beta),
            *_norm_weights("recurrent_norm", "h", fused, gamma, beta),
        ]

    def step(self, projected, states, recurrence):
        (h_prev,) = states
        epsilon = self.norm_epsilon
        u = layer_norm(projected, self.kernel_norm_gamma, self.kernel_norm_beta, epsilon)
        v = layer_norm(
            recurrence(h_prev), self.recurrent_norm_gamma, self.recurrent_norm_beta, epsilon
        )
        u_z, u_r, u_h = ops.split(u, 3, axis=-1)
        v_z, v_r, v_h = ops.split(v, 3, axis=-1)
        a_z, a_r, a_h = u_z + v_z, u_r + v_r, u_h
        if self.use_bias:
            b_z, b_r, b_h = ops.split(ops.cast(self.bias, u.dtype), 3, axis=-1)
            a_z, a_r, a_h = a_z + b_z, a_r + b_r, a_h + b_h
        z = self.recurrent_activation(a_z)
        r = self.recurrent_activation(a_r)
        h_tilde = self.activation(a_h + r * v_h)
        h = (1.0 - z) * h_prev + z * h_tilde
        return h, [h], {"z": z, "r": r, "h_tilde": h_tilde, "h": h}

    def get_config(self):
        config = {
            "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
            "norm_gamma_initializer": keras.initializers.serialize(self.norm_gamma_initializer),
            "norm_beta_initializer": keras.initializers.serialize(self.norm_beta_initializer),
            "norm_epsilon": self.norm_epsilon,
        }
        return {**super().get_config(), **config}
