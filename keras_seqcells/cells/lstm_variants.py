"""LSTM variants: peephole connections, and coupled input and forget gates."""

import keras
from keras import ops

from keras_seqcells._checks import check_bool
from keras_seqcells.cells.base import CellWeight, RecurrentCell, get_activation
from keras_seqcells.cells.lstm import LSTMCell


@keras.saving.register_keras_serializable(package="keras_seqcells")
class PeepholeLSTMCell(LSTMCell):
    """LSTM cell with peephole connections, as TensorFlow Addons' `PeepholeLSTMCell`.

    Equations, as implemented (Gers & Schmidhuber; `σ` is
    `recurrent_activation`, `tanh` is `activation`, `⊙` the elementwise
    product, matrices act on column vectors):

        i_t  = σ(W_xi x_t + W_hi h_{t-1} + p_i ⊙ C_{t-1} + b_i)
        f_t  = σ(W_xf x_t + W_hf h_{t-1} + p_f ⊙ C_{t-1} + b_f)
        C~_t = tanh(W_xc x_t + W_hc h_{t-1} + b_c)
        C_t  = f_t ⊙ C_{t-1} + i_t ⊙ C~_t
        o_t  = σ(W_xo x_t + W_ho h_{t-1} + p_o ⊙ C_t + b_o)
        h_t  = o_t ⊙ tanh(C_t)

    The input and forget gates look at the previous cell state `C_{t-1}`,
    the output gate at the new one `C_t`. With `p_i = p_f = p_o = 0` these
    are `LSTMCell`'s equations.

    Weights (`LSTMCell`'s, gate order i, f, c, o, and three peephole
    vectors):

    - `kernel`, shape `(input_dim, 4 * units)`: columns
      `[W_xi.T | W_xf.T | W_xc.T | W_xo.T]`;
    - `recurrent_kernel`, shape `(units, 4 * units)`: columns
      `[W_hi.T | W_hf.T | W_hc.T | W_ho.T]`;
    - `bias`, shape `(4 * units,)`: `[b_i | b_f | b_c | b_o]`;
    - `input_gate_peephole_weights`, `forget_gate_peephole_weights`,
      `output_gate_peephole_weights`, each of shape `(units,)`: `p_i`, `p_f`
      and `p_o` (Addons' variable names), initialised with
      `kernel_initializer` as in Addons.

    `named_weights()` returns `W_xi`, ..., `W_hi`, ..., `b_i`, ..., `p_i`,
    `p_f` and `p_o`. The state is `[h, C]`; the output is `h_t`.

    Args:
        units: Positive integer, dimensionality of the state and output.
        activation: Activation of the candidate and of the cell output
            (`tanh` in the equations). Default: `"tanh"`.
        recurrent_activation: Activation of the gates (`σ`). Default:
            `"sigmoid"`.
        use_bias: Boolean, whether the cell uses the biases `b_*`.
        kernel_initializer: Initializer of `kernel` and of the peephole
            vectors. Default: `"glorot_uniform"`.
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
            the recurrent products (not in the peepholes).
        seed: Random seed for dropout and for `chrono_init`.
        chrono_init: None (default) or a number `T_max > 2`: chrono
            initialisation of `b_f` and `b_i`, as for `LSTMCell`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: A 2D tensor of shape `(batch, input_dim)`.
        states: List of two 2D tensors `[h_{t-1}, C_{t-1}]`, each of shape
            `(batch, units)`.
        training: Python boolean, whether dropout is applied.

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> rnn = keras.layers.RNN(keras_seqcells.PeepholeLSTMCell(4))
    >>> rnn(inputs).shape
    (32, 4)
    """

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
        chrono_init=None,
        **kwargs,
    ):
        super().__init__(
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            unit_forget_bias=unit_forget_bias,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            chrono_init=chrono_init,
            **kwargs,
        )

    def extra_weights(self, input_dim):
        return [
            CellWeight(
                f"{gate}_gate_peephole_weights",
                (self.units,),
                initializer=self.kernel_initializer,
                document_name=f"p_{gate[0]}",
            )
            for gate in ("input", "forget", "output")
        ]

    def step(self, projected, states, recurrence):
        h_prev, c_prev = states
        z_i, z_f, z_c, z_o = ops.split(projected + recurrence(h_prev), 4, axis=-1)
        p_i = ops.cast(self.input_gate_peephole_weights, c_prev.dtype)
        p_f = ops.cast(self.forget_gate_peephole_weights, c_prev.dtype)
        p_o = ops.cast(self.output_gate_peephole_weights, c_prev.dtype)
        i = self.recurrent_activation(z_i + p_i * c_prev)
        f = self.recurrent_activation(z_f + p_f * c_prev)
        c_tilde = self.activation(z_c)
        c = f * c_prev + i * c_tilde
        o = self.recurrent_activation(z_o + p_o * c)
        h = o * self.activation(c)
        gates = {"i": i, "f": f, "c_tilde": c_tilde, "c": c, "o": o, "h": h}
        return h, [h, c], gates


@keras.saving.register_keras_serializable(package="keras_seqcells")
class CIFGLSTMCell(RecurrentCell):
    """LSTM cell with coupled input and forget gates (CIFG): `i_t = 1 - f_t`.

    Equations, as implemented (`σ` is `recurrent_activation`, `tanh` is
    `activation`, `⊙` the elementwise product, matrices act on column
    vectors):

        f_t  = σ(W_xf x_t + W_hf h_{t-1} + b_f)
        i_t  = 1 - f_t
        C~_t = tanh(W_xc x_t + W_hc h_{t-1} + b_c)
        C_t  = f_t ⊙ C_{t-1} + i_t ⊙ C~_t
        o_t  = σ(W_xo x_t + W_ho h_{t-1} + b_o)
        h_t  = o_t ⊙ tanh(C_t)

    The input gate has no weights of its own: the cell writes exactly as
    much as it forgets, with a quarter fewer parameters than `LSTMCell`
    (Greff et al., "LSTM: A Search Space Odyssey", 2017).

    Weights (Keras's fused layout, gate order f, c, o):

    - `kernel`, shape `(input_dim, 3 * units)`: columns
      `[W_xf.T | W_xc.T | W_xo.T]`;
    - `recurrent_kernel`, shape `(units, 3 * units)`: columns
      `[W_hf.T | W_hc.T | W_ho.T]`;
    - `bias`, shape `(3 * units,)`: `[b_f | b_c | b_o]`.

    `named_weights()` returns them by the document names `W_xf`, `W_hf`,
    `b_f`, ... The state is `[h, C]`; the output is `h_t`.

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
            `b_f` at initialization (as `LSTMCell`). Default: True.
        kernel_regularizer: Regularizer of `kernel`.
        recurrent_regularizer: Regularizer of `recurrent_kernel`.
        bias_regularizer: Regularizer of `bias`.
        kernel_constraint: Constraint of `kernel`.
        recurrent_constraint: Constraint of `recurrent_kernel`.
        bias_constraint: Constraint of `bias`.
        dropout: Float in [0, 1), fraction of the input units to drop.
        recurrent_dropout: Float in [0, 1), fraction of `h_{t-1}` to drop in
            the recurrent products.
        seed: Random seed for dropout.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: A 2D tensor of shape `(batch, input_dim)`.
        states: List of two 2D tensors `[h_{t-1}, C_{t-1}]`, each of shape
            `(batch, units)`.
        training: Python boolean, whether dropout is applied.

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> rnn = keras.layers.RNN(keras_seqcells.CIFGLSTMCell(4))
    >>> rnn(inputs).shape
    (32, 4)
    """

    gate_names = ("f", "c", "o")
    state_names = ("h", "c")

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

    def _fused_bias_initializer(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        units, initializer = self.units, self.bias_initializer

        def forget_bias_one(_, *args, **kwargs):
            return ops.concatenate(
                [
                    keras.initializers.get("ones")((units,), *args, **kwargs),
                    initializer((2 * units,), *args, **kwargs),
                ]
            )

        return forget_bias_one

    def step(self, projected, states, recurrence):
        h_prev, c_prev = states
        z_f, z_c, z_o = ops.split(projected + recurrence(h_prev), 3, axis=-1)
        f = self.recurrent_activation(z_f)
        i = 1.0 - f
        c_tilde = self.activation(z_c)
        c = f * c_prev + i * c_tilde
        o = self.recurrent_activation(z_o)
        h = o * self.activation(c)
        gates = {"i": i, "f": f, "c_tilde": c_tilde, "c": c, "o": o, "h": h}
        return h, [h, c], gates

    def get_config(self):
        config = {
            "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
            "unit_forget_bias": self.unit_forget_bias,
        }
        return {**super().get_config(), **config}
