"""The LSTM layer."""

import keras

from keras_seqcells._keras_internals import keras_backend
from keras_seqcells.cells import LSTMCell
from keras_seqcells.layers.base import _from_cell
from keras_seqcells.layers.cudnn import CudnnCapableRNN, _cudnn_equations


@keras.saving.register_keras_serializable(package="keras_seqcells")
class LSTM(CudnnCapableRNN, keras.layers.LSTM):
    """Long Short-Term Memory layer on `LSTMCell`; drop-in for `keras.layers.LSTM`.

    Equations (see `LSTMCell`; gate order i, f, c, o):

        i_t  = σ(W_xi x_t + W_hi h_{t-1} + b_i)
        f_t  = σ(W_xf x_t + W_hf h_{t-1} + b_f)
        C~_t = tanh(W_xc x_t + W_hc h_{t-1} + b_c)
        C_t  = f_t ⊙ C_{t-1} + i_t ⊙ C~_t
        o_t  = σ(W_xo x_t + W_ho h_{t-1} + b_o)
        h_t  = o_t ⊙ tanh(C_t)

    The layer has the weight variables of `keras.layers.LSTM` (`kernel`,
    `recurrent_kernel`, `bias` in the same fused layout), so weights and
    checkpoints load either way unchanged.

    It is also a `keras.layers.LSTM` (with these equations and weights, not
    Keras's code), so Keras code that checks for one accepts it: in
    particular `keras.layers.Bidirectional` may run both directions in its
    fused cuDNN call, which computes these equations wherever `use_cudnn`
    does not read False.

    Args:
        units: Positive integer, dimensionality of the state and output.
        activation, recurrent_activation, use_bias, kernel_initializer,
            recurrent_initializer, bias_initializer, unit_forget_bias,
            kernel_regularizer, recurrent_regularizer, bias_regularizer,
            kernel_constraint, recurrent_constraint, bias_constraint,
            dropout, recurrent_dropout, seed, chrono_init: as for
            `LSTMCell`. `chrono_init=T_max` initialises `b_f` and `b_i` for
            dependencies of up to about `T_max` steps (chrono
            initialisation).
        activity_regularizer: Regularizer of the layer's output.
        return_sequences, return_state, go_backwards, stateful, unroll: as
            for `keras.layers.RNN` (see `SimpleRNN`).
        use_cudnn: `"auto"` (default), True or False. With `"auto"`, Keras's
            cuDNN kernel (`keras.layers.LSTM`'s, on the TensorFlow and JAX
            backends) runs the layer on a GPU where its equations are these:
            tanh and sigmoid activations, a bias, float32, no mask, no
            recurrent dropout, `unroll=False`, outside
            `keras_seqcells.layers.portable_graphs()`. True raises an error
            where it cannot run; False never uses it.
        **kwargs: Base layer keyword arguments (`name`, `dtype`,
            `zero_output_for_mask`, and the legacy `implementation`, which is
            accepted and changes nothing).

    Call arguments:
        sequences: A 3D tensor of shape `(batch, timesteps, features)`.
        initial_state: Optional list `[h_0, C_0]` of tensors of shape
            `(batch, units)`.
        mask: Optional boolean tensor of shape `(batch, timesteps)`; a masked
            step carries the state and the previous output unchanged.
        training: Python boolean, whether dropout is applied.

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> whole, h, c = keras_seqcells.LSTM(
    ...     4, return_sequences=True, return_state=True)(inputs)
    >>> whole.shape, h.shape, c.shape
    ((32, 10, 4), (32, 4), (32, 4))
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
        use_cudnn="auto",
        chrono_init=None,
        **kwargs,
    ):
        kwargs.pop("implementation", None)
        cell = LSTMCell(
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
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name="lstm_cell",
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

    def _cudnn_supported(self):
        backend = keras.backend.backend()
        # JAX's kernel returns a backward sequence in input order; Keras's
        # loop, and so this layer, returns it in processing order.
        if backend == "jax" and self.go_backwards and self.return_sequences:
            return False
        return backend in ("tensorflow", "jax") and _cudnn_equations(self.cell, self.unroll)

    def _cudnn_loop(self, sequences, initial_state):
        cell = self.cell
        h, c = initial_state
        return keras_backend.lstm(
            sequences,
            h,
            c,
            None,
            kernel=cell.kernel,
            recurrent_kernel=cell.recurrent_kernel,
            bias=cell.bias,
            **self._cudnn_options(),
        )

    unit_forget_bias = _from_cell("unit_forget_bias")
    chrono_init = _from_cell("chrono_init")
