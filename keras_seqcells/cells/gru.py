"""GRU cell with the specification's update-gate convention, both candidate forms."""

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
class GRUCell(RecurrentCell):
    """Cell class of the GRU layer, computing the specification's equations.

    Equations, as implemented (`σ` is `recurrent_activation`, `tanh` is
    `activation`, `⊙` the elementwise product, matrices act on column
    vectors):

        z_t  = σ(W_xz x_t + W_hz h_{t-1} + b_z)
        r_t  = σ(W_xr x_t + W_hr h_{t-1} + b_r)
        h~_t = tanh(W_xh x_t + r_t ⊙ (W_hh h_{t-1}) + b_h)   # reset_after=True
        h~_t = tanh(W_xh x_t + W_hh (r_t ⊙ h_{t-1}) + b_h)   # reset_after=False
        h_t  = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h~_t

    Note the update-gate convention: `z_t` weights the **new** candidate.
    `keras.layers.GRU`, cuDNN and PyTorch weight the old state with `z`, and
    Keras's reset-after GRU also has a separate recurrent bias. **A Keras GRU's
    raw weights therefore mean something else here**: convert exactly with
    `keras_seqcells.from_keras` / `to_keras` (which negate the update gate's
    weights and bias, since σ(-a) = 1 - σ(a)) instead of copying weights.

    Weights (Keras's fused layout and gate order z, r, h; a single bias):

    - `kernel`, shape `(input_dim, 3 * units)`: columns
      `[W_xz.T | W_xr.T | W_xh.T]`;
    - `recurrent_kernel`, shape `(units, 3 * units)`: columns
      `[W_hz.T | W_hr.T | W_hh.T]`;
    - `bias`, shape `(3 * units,)`: `[b_z | b_r | b_h]`.

    The state is `[h]`; the output is `h_t`. With dropout, one input mask and
    one recurrent mask (on `h_{t-1}` as it enters the recurrent products),
    sampled once per sequence, are shared by all gates.

    Args:
        units: Positive integer, dimensionality of the state and output.
        activation: Activation of the candidate (`tanh` in the equations).
            Default: `"tanh"`.
        recurrent_activation: Activation of the gates (`σ` in the
            equations). Default: `"sigmoid"`.
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
            the recurrent products.
        seed: Random seed for dropout and for `chrono_init`.
        chrono_init: None (default) or a number `T_max > 2`, the longest
            dependency span (in steps) expected. If set, the update gate's
            bias is initialised after Tallec & Ollivier, "Can recurrent
            neural networks warp time?" (ICLR 2018): `b_z = -log(u)` with `u`
            drawn from `U(1, T_max - 1)` per unit. Since `z_t` weights the new
            candidate here, a negative `b_z` keeps `h_{t-1}` (each unit then
            remembers over about `u` steps at initialisation), against
            vanishing gradients. It overrides `bias_initializer` for `b_z`
            only. It only sets initial values (`to_keras` drops it).
            Requires `use_bias=True`.
        reset_after: True (default) to apply the reset gate after the
            recurrent product, False to apply it to `h_{t-1}` before it.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: A 2D tensor of shape `(batch, input_dim)`.
        states: List of one 2D tensor `[h_{t-1}]` of shape `(batch, units)`.
        training: Python boolean, whether dropout is applied.

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> rnn = keras.layers.RNN(keras_seqcells.GRUCell(4, reset_after=False))
    >>> rnn(inputs).shape
    (32, 4)
    """

    gate_names = ("z", "r", "h")

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
        reset_after=True,
        chrono_init=None,
        **kwargs,
    ):
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
        self.reset_after = check_bool("reset_after", reset_after)
        self.chrono_init = check_chrono_init(chrono_init, self.use_bias)

    def _fused_bias_initializer(self):
        if self.chrono_init is None:
            return self.bias_initializer
        units, initializer = self.units, self.bias_initializer
        chrono = chrono_biases(self.chrono_init, self.seed)

        def chrono_update(_, *args, **kwargs):
            keep = chrono((units,), *args, **kwargs)
            return ops.concatenate([-keep, initializer((2 * units,), *args, **kwargs)])

        return chrono_update

    def step(self, projected, states, recurrence):
        (h_prev,) = states
        x_z, x_r, x_h = ops.split(projected, 3, axis=-1)
        if self.reset_after:
            h_z, h_r, h_h = ops.split(recurrence(h_prev), 3, axis=-1)
        else:
            h_z, h_r = ops.split(recurrence(h_prev, gates=("z", "r")), 2, axis=-1)
        z = self.recurrent_activation(x_z + h_z)
        r = self.recurrent_activation(x_r + h_r)
        if self.reset_after:
            h_tilde = self.activation(x_h + r * h_h)
        else:
            reset_h = r * recurrence.dropped(h_prev)
            h_tilde = self.activation(x_h + recurrence(reset_h, gates=("h",), dropout=False))
        h = (1.0 - z) * h_prev + z * h_tilde
        return h, [h], {"z": z, "r": r, "h_tilde": h_tilde, "h": h}

    def get_config(self):
        config = {
            "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
            "reset_after": self.reset_after,
            "chrono_init": self.chrono_init,
        }
        return {**super().get_config(), **config}
