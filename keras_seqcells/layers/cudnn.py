"""Keras's cuDNN kernels as a path of the LSTM and GRU layers, where they compute our equations."""

import keras

from keras_seqcells._checks import check_choice
from keras_seqcells.layers.base import SeqCellRNN
from keras_seqcells.layers.loops import _PORTABLE_GRAPHS, dropped_out


def _cudnn_equations(cell, unroll):
    """Whether cuDNN's LSTM/GRU equations are the cell's: its activations and a bias."""
    return (
        cell.activation is keras.activations.tanh
        and cell.recurrent_activation is keras.activations.sigmoid
        and cell.use_bias
        and not unroll
    )


def _gpu_available():
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))


def _check_use_cudnn(use_cudnn):
    return check_choice("use_cudnn", use_cudnn, ("auto", True, False))


class CudnnCapableRNN(SeqCellRNN):
    """Base of the layers that Keras's cuDNN kernels can run: `LSTM` and `GRU`.

    Args:
        cell: The layer's keras_seqcells cell.
        use_cudnn: `"auto"`, True or False (see `LSTM` and `GRU`).
        **kwargs: The arguments of `keras.layers.RNN`.
    """

    def __init__(self, cell, use_cudnn="auto", **kwargs):
        super().__init__(cell, **kwargs)
        self.use_cudnn = use_cudnn
        # As in `keras.layers.LSTM`: where a cuDNN kernel may run, a model
        # holding the layer is not XLA-compiled (the kernel has no XLA form).
        if (
            keras.backend.backend() == "tensorflow"
            and self.use_cudnn in ("auto", True)
            and self._cudnn_supported()
            and _gpu_available()
        ):
            self.supports_jit = False

    @property
    def use_cudnn(self):
        """The `use_cudnn` setting; False where no cuDNN kernel computes these equations.

        Keras reads this attribute too: `keras.layers.Bidirectional` hands an
        LSTM whose `use_cudnn` is `"auto"` or True to its fused cuDNN call
        of both directions. That call is exact only where the layer's own
        cuDNN path would be, so the setting reads False with a compute or
        state dtype other than float32 (mixed precision keeps the gates in
        float32), with activations or a bias that cuDNN's equations do not
        have, with `unroll=True`, and inside `portable_graphs()`.
        """
        if self._use_cudnn is False or not self._cudnn_equations_hold():
            return False
        return self._use_cudnn

    @use_cudnn.setter
    def use_cudnn(self, value):
        self._use_cudnn = _check_use_cudnn(value)

    def _cudnn_equations_hold(self):
        """Whether cuDNN's equations, on any backend, are this layer's."""
        return (
            self.cell.compute_dtype == "float32"
            and self.cell.state_dtype == "float32"
            and not _PORTABLE_GRAPHS.get()
            and _cudnn_equations(self.cell, self.unroll)
        )

    def _cudnn_outputs(self, sequences, initial_state, mask, input_mask, recurrent_mask):
        if self._cudnn_applies(mask, recurrent_mask):
            try:
                outputs = self._cudnn_loop(
                    dropped_out(self.cell, sequences, input_mask), initial_state
                )
            except NotImplementedError:
                pass  # No GPU, or no cuDNN op: the fast path below.
            else:
                if keras.backend.backend() == "tensorflow":
                    self.supports_jit = False
                return outputs
        if self._use_cudnn is True:
            raise ValueError(
                "Expected a configuration that Keras's cuDNN kernel supports with "
                f"`use_cudnn=True` ({self._CUDNN_CONDITIONS}). Received: use_cudnn=True for "
                f"layer {self.name!r}. Pass use_cudnn='auto' to fall back to the other paths."
            )
        return None

    # ------------------------------------------------------------ cuDNN path
    _CUDNN_CONDITIONS = (
        "an LSTM, or a GRU with reset_after=True; a GPU; tanh and sigmoid activations; "
        "use_bias=True; unroll=False; float32 compute dtype; no mask; no recurrent dropout; "
        "outside portable_graphs()"
    )

    def _cudnn_supported(self):
        """Whether the layer's configuration (not the call) suits Keras's cuDNN kernel."""
        return False

    def _cudnn_applies(self, mask, recurrent_mask):
        """Whether this call may run Keras's cuDNN kernel (when the device has one).

        The kernel computes the cell's equations only where they coincide
        with cuDNN's, in float32 (mixed precision computes the gates in
        float32, cuDNN would not), without a mask (cuDNN refuses masks that
        are not right-padded, and the JAX kernel takes none) and without
        recurrent dropout; exports (`portable_graphs()`) never hold it.
        """
        return (
            self.use_cudnn in ("auto", True)
            and mask is None
            and recurrent_mask is None
            and self._cudnn_supported()
        )

    def _cudnn_loop(self, sequences, initial_state):
        """`(last_output, outputs, states)` from Keras's cuDNN kernel.

        Raises NotImplementedError where the backend or the device has none.
        """
        raise NotImplementedError

    def _cudnn_options(self):
        """The keyword arguments that Keras's cuDNN kernels share."""
        return {
            "activation": self.cell.activation,
            "recurrent_activation": self.cell.recurrent_activation,
            "return_sequences": self.return_sequences,
            "go_backwards": self.go_backwards,
            "unroll": self.unroll,
        }
