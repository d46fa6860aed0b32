"""LSTM cell (no peepholes), in Keras's fused layout and gate order."""

import keras
from keras import ops

from keras_seqcells._checks import check_bool
from keras_seqcells.cells.base import (
    RecurrentCell,
    check_chrono_init,
    chrono_biases,
    get_activation,
)


@keras.saving.register_keras_serializable(package="keras_seqcells")
class LSTMCell(RecurrentCell):
    """Cell class of the LSTM layer, computing the equations of the specification.

    Equations, as implemented (`σ` is `recurrent_activation`, `tanh` is
    `activation`, `⊙` the elementwise product, matrices act on column
    vectors):

        i_t  = σ(W_xi x_t + W_hi h_{t-1} + b_i)
        f_t  = σ(W_xf x_t + W_hf h_{t-1} + b_f)
        C~_t = tanh(W_xc x_t + W_hc h_{t-1} + b_c)
        C_t  = f_t ⊙ C_{t-1} + i_t ⊙ C~_t
        o_t  = σ(W_xo x_t + W_ho h_{t-1} + b_o)
        h_t  = o_t ⊙ tanh(C_t)

    These are the equations of `keras.layers.LSTMCell`, with the same weight
    variables, so weights and checkpoints interchange unchanged.

    Weights (Keras's fused layout, gate order i, f, c, o):

    - `kernel`, shape `(input_dim, 4 * units)`: columns
      `[W_xi.T | W_xf.T | W_xc.T | W_xo.T]`;
    - `recurrent_kernel`, shape `(units, 4 * units)`: columns
      `[W_hi.T | W_hf.T | W_hc.T | W_ho.T]`;
    - `bias`, shape `(4 * units,)`: `[b_i | b_f | b_c | b_o]`.

    `named_weights()` returns them by the document names `W_xi`, `W_hi`,
    `b_i`, ... in document orientation. The state is `[h, C]`; the output is
    `h_t`. With dropout, one input mask and one recurrent mask (on
    `h_{t-1}`), sampled once per sequence, are shared by all four gates.

    Args:
        units: Positive integer, dimensionality of the state and output.
        activation: Activation of the candidate and of the cell output
            (`tanh` in the equations). Default: `"tanh"`.
        recurrent_activation: Activation of the gates (`σ` in the
            equations). Default: `"sigmoid"`.
        use_bias: Boolean, whether the cell uses the biases `b_*`.
        kernel_initializer: Initializer of `kernel`. Default:
            `"glorot_uniform"`.
        recurrent_initializer: Initializer of `recurrent_kernel`. Default:
            `"orthogonal"`.
        bias_initializer: Initializer of `bias`. Default: `"zeros"`.
        unit_forget_bias: Boolean. If True, adds 1 to the forget gate bias
            `b_f` at initialization (and initializes the other biases with
            `bias_initializer`). Default: True.
        kernel_regularizer: Regularizer of `kernel`.
        recurrent_regularizer: Regularizer of `recurrent_kernel`.
        bias_regularizer: Regularizer of `bias`.
        kernel_constraint: Constraint of `kernel`.
        recurrent_constraint: Constraint of `recurrent_kernel`.
        bias_constraint: Constraint of `bias`.
        dropout: Float in [0, 1), fraction of the input units to drop.
        recurrent_dropout: Float in [0, 1), fraction of `h_{t-1}` to drop in
            the recurrent products.
        seed: Random seed for dropout and for `chrono_init`.
        chrono_init: None (default) or a number `T_max > 2`, the longest
            dependency span (in steps) expected. If set, the gate biases are
            initialised as in Tallec & Ollivier, "Can recurrent neural
            networks warp time?" (ICLR 2018): `b_f = log(u)` with `u` drawn
            from `U(1, T_max - 1)` per unit, and `b_i = -b_f`, so that the
            forget gates keep the cell state over spans of up to about
            `T_max` steps at initialisation, against vanishing gradients.
            It overrides `unit_forget_bias` and `bias_initializer` for `b_f`
            and `b_i` (the other biases keep `bias_initializer`). It only
            sets initial values (`to_keras` drops it). Requires
            `use_bias=True`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: A 2D tensor of shape `(batch, input_dim)`.
        states: List of two 2D tensors `[h_{t-1}, C_{t-1}]`, each of shape
            `(batch, units)`.
        training: Python boolean, whether dropout is applied.

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> rnn = keras.layers.RNN(keras_seqcells.LSTMCell(4))
    >>> rnn(inputs).shape
    (32, 4)
    """

    gate_names = ("i", "f", "c", "o")
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
        chrono_init=None,
        **kwargs,
    ):
        # Keras's cell accepts `implementation`; here there is one fused path.
        kwargs.pop("implementation", None)
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
        self.chrono_init = check_chrono_init(chrono_init, self.use_bias)

    def _fused_bias_initializer(self):
        if self.chrono_init is not None:
            units, initializer = self.units, self.bias_initializer
            chrono = chrono_biases(self.chrono_init, self.seed)

            def chrono_forget_and_input(_, *args, **kwargs):
                forget = chrono((units,), *args, **kwargs)
                return ops.concatenate(
                    [-forget, forget, initializer((2 * units,), *args, **kwargs)]
                )

            return chrono_forget_and_input
        if not self.unit_forget_bias:
            return self.bias_initializer
        units, initializer = self.units, self.bias_initializer

        def forget_bias_one(_, *args, **kwargs):
            return ops.concatenate(
                [
                    initializer((units,), *args, **kwargs),
                    keras.initializers.get("ones")((units,), *args, **kwargs),
                    initializer((2 * units,), *args, **kwargs),
                ]
            )

        return forget_bias_one

    def step(self, projected, states, recurrence):
        h_prev, c_prev = states
        z_i, z_f, z_c, z_o = ops.split(projected + recurrence(h_prev), 4, axis=-1)
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
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
            "chrono_init": self.chrono_init,
        }
        return {**super().get_config(), **config}
