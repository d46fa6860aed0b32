"""The GRU layer."""

import keras
from keras import ops

from keras_seqcells._keras_internals import keras_backend
from keras_seqcells.cells import GRUCell
from keras_seqcells.layers.base import _from_cell
from keras_seqcells.layers.cudnn import CudnnCapableRNN, _cudnn_equations


@keras.saving.register_keras_serializable(package="keras_seqcells")
class GRU(CudnnCapableRNN):
    """Gated Recurrent Unit layer on `GRUCell`; drop-in for `keras.layers.GRU`.

    Equations (see `GRUCell`; gate order z, r, h):

        z_t  = σ(W_xz x_t + W_hz h_{t-1} + b_z)
        r_t  = σ(W_xr x_t + W_hr h_{t-1} + b_r)
        h~_t = tanh(W_xh x_t + r_t ⊙ (W_hh h_{t-1}) + b_h)   # reset_after=True
        h~_t = tanh(W_xh x_t + W_hh (r_t ⊙ h_{t-1}) + b_h)   # reset_after=False
        h_t  = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h~_t

    **Warning**: here `z_t` weights the new candidate and there is a single
    bias, whereas `keras.layers.GRU` weights the old state with `z` and (with
    `reset_after=True`) has a separate recurrent bias. A Keras GRU's raw
    weights therefore mean something else: convert exactly with
    `keras_seqcells.from_keras` / `to_keras`, never by copying weights.

    Args:
        units: Positive integer, dimensionality of the state and output.
        activation, recurrent_activation, use_bias, kernel_initializer,
            recurrent_initializer, bias_initializer, kernel_regularizer,
            recurrent_regularizer, bias_regularizer, kernel_constraint,
            recurrent_constraint, bias_constraint, dropout, recurrent_dropout,
            seed, reset_after, chrono_init: as for `GRUCell`.
            `chrono_init=T_max` initialises `b_z` so that the state is kept
            over up to about `T_max` steps (chrono initialisation).
        activity_regularizer: Regularizer of the layer's output.
        return_sequences, return_state, go_backwards, stateful, unroll: as
            for `keras.layers.RNN` (see `SimpleRNN`).
        use_cudnn: `"auto"` (default), True or False. With `"auto"`, Keras's
            cuDNN kernel (`keras.layers.GRU`'s, on the TensorFlow backend)
            runs the layer on a GPU where its equations are these:
            `reset_after=True`, tanh and sigmoid activations, a bias,
            float32, no mask, no recurrent dropout, `unroll=False`, outside
            `keras_seqcells.layers.portable_graphs()`. The update gate's
            weights and bias are negated on the way in (cuDNN's gate weights
            the old state). True raises an error where it cannot run; False
            never uses it.
        **kwargs: Base layer keyword arguments (`name`, `dtype`,
            `zero_output_for_mask`, and the legacy `implementation`, which is
            accepted and changes nothing).

    Call arguments:
        sequences: A 3D tensor of shape `(batch, timesteps, features)`.
        initial_state: Optional list with one tensor of shape `(batch, units)`.
        mask: Optional boolean tensor of shape `(batch, timesteps)`; a masked
            step carries the state and the previous output unchanged.
        training: Python boolean, whether dropout is applied.

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> keras_seqcells.GRU(4, reset_after=False)(inputs).shape
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
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        reset_after=True,
        use_cudnn="auto",
        chrono_init=None,
        **kwargs,
    ):
        kwargs.pop("implementation", None)
        cell = GRUCell(
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
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
            reset_after=reset_after,
            chrono_init=chrono_init,
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name="gru_cell",
        )
        super().__init__(
            cell,
            use_cudnn=use_cudnn,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            activity_regularizer=activity_regularizer,
            **kwargs,
        )

    recurrent_activation = _from_cell("recurrent_activation")
    reset_after = _from_cell("reset_after")
    chrono_init = _from_cell("chrono_init")

    def _cudnn_supported(self):
        # Only TensorFlow's `gru` is a cuDNN kernel; JAX's is a scan that is
        # slower than the fast path.
        return (
            keras.backend.backend() == "tensorflow"
            and self.cell.reset_after
            and _cudnn_equations(self.cell, self.unroll)
        )

    def _cudnn_loop(self, sequences, initial_state):
        cell = self.cell
        units = cell.units

        def old_state_convention(weights):
            # cuDNN's update gate weights the old state, ours the candidate;
            # with sigmoid(-a) = 1 - sigmoid(a), negating the gate's block
            # (the first) maps one onto the other.
            return ops.concatenate([-weights[..., :units], weights[..., units:]], axis=-1)

        bias = old_state_convention(cell.bias)
        return keras_backend.gru(
            sequences,
            initial_state[0],
            None,
            kernel=old_state_convention(cell.kernel),
            recurrent_kernel=old_state_convention(cell.recurrent_kernel),
            # Input and recurrent biases; the recurrent one is zero here.
            bias=ops.stack([bias, ops.zeros_like(bias)]),
            reset_after=True,
            **self._cudnn_options(),
        )
