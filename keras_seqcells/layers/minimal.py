"""The MinGRU and MinLSTM layers: a parallel scan over the sequence, or the step loop."""

import functools

import keras
from keras import ops

from keras_seqcells._checks import check_choice
from keras_seqcells.cells.minimal import MinGRUCell, MinLSTMCell
from keras_seqcells.layers.base import CellLayer
from keras_seqcells.layers.loops import _FAST_PATH, active_hook, dropped_out

# `log 0` of a masked step's `b_t`: finite, so that `logaddexp` of two of them
# and its gradient stay finite (exp of it is exactly 0 in float32 and float64).
_LOG_ZERO = -1e30


@functools.cache
def on_accelerator():
    """Whether the Keras backend computes on a GPU or TPU (not on the CPU alone).

    `parallel="auto"` runs the parallel scan there only: on CPUs the step loop
    measured faster (see `benchmarks/min_rnn.py`).
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return any(
            device.device_type in ("GPU", "TPU") for device in tf.config.list_logical_devices()
        )
    if backend == "jax":
        import jax

        return jax.default_backend() != "cpu"
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    return False


def _combine(earlier, later):
    """Composes two steps `h -> a ⊙ h + b` in log space: `earlier` first, then `later`."""
    log_a1, log_b1 = earlier
    log_a2, log_b2 = later
    return log_a1 + log_a2, ops.logaddexp(log_b1 + log_a2, log_b2)


class MinimalRNN(CellLayer):
    """The base of `MinGRU` and `MinLSTM`: a layer whose cell's gates read only `x_t`.

    The cell's recurrence is `h_t = a_t ⊙ h_{t-1} + b_t` with `a_t` in (0, 1)
    and `b_t > 0` computed from `x_t` alone, so, composing the steps,

        h_t = A_t ⊙ h_0 + B_t,   A_t = a_1 ⊙ ... ⊙ a_t,
        B_t = Σ_{s ≤ t} (a_{s+1} ⊙ ... ⊙ a_t) ⊙ b_s.

    The parallel path computes all input projections as one product, then
    `(log A_t, log B_t)` for every `t` with `keras.ops.associative_scan` over
    the time axis, with the operator
    `(la1, lb1) ∘ (la2, lb2) = (la1 + la2, logaddexp(lb1 + la2, lb2))`
    (the paper's log-space scan, `log a_t` and `log b_t` from softplus terms,
    never forming `a_t` or `b_t`). The initial state then enters in linear
    space, `h_t = exp(log B_t) + exp(log A_t) ⊙ h_0`: exact for an initial
    state of any sign (the log-space form needs `h_0 ≥ 0`) with the exact
    gradient with respect to `h_0`, and stable (`exp(log A_t) ≤ 1`, and
    `exp(log B_t)` is the state reached from zero).

    Masking: a masked step has `a_t = 1`, `b_t = 0` (`log b_t` a large
    finite negative number), so it carries the state; its output is the
    previous output as in Keras's loops (zeros before the first unmasked
    step; on JAX without `unroll` the carried state, as Keras's JAX loop
    gives), or zeros with `zero_output_for_mask`. `go_backwards` flips the
    sequence first. Input dropout applies one mask per sequence, as in the
    loop.

    Which path runs, by `parallel`:

    - `"auto"` (default): on a GPU or TPU (`on_accelerator()`), the
      parallel path in training and inference whenever the number of steps
      is known when the layer runs (traced), the step loop otherwise (e.g. a
      `tf.function` whose input signature leaves the number of steps open:
      Keras's scan needs it). On a CPU alone, the step loop: there the
      scan's `O(log T)` levels of slicing, interleaving and log-space
      arithmetic measured 3-6 times slower than the loop, whose minGRU and
      minLSTM steps are elementwise only (a training step at T = 128,
      B = 32, H = 128, on TensorFlow and on JAX; `benchmarks/min_rnn.py`).
      The scan's advantage is the paper's, on GPUs, for long sequences;
    - True: the parallel path on any device, and a `ValueError` where the
      number of steps is not known;
    - False: always the step loop (the cell's `step`, on the layers' fast
      loop).

    Inside `keras_seqcells.layers.state_hooks` (e.g. `keras_seqcells.gradient_flow`)
    a layer with a hook always runs step by step, so the hook sees each
    state; `keras_seqcells.trace` and the SavedModel `step` signature run the
    cell's `step`.
    """

    def __init__(self, units, parallel="auto", **kwargs):
        parallel = check_choice("parallel", parallel, ("auto", True, False))
        super().__init__(units, **kwargs)
        self.parallel = parallel

    def _runs_parallel(self, sequences):
        if not _FAST_PATH[0] or self.parallel is False or active_hook(self) is not None:
            return False
        if self.parallel == "auto" and not on_accelerator():
            return False
        if sequences.shape[1] is not None:
            return True
        if self.parallel is True:
            raise ValueError(
                f"Expected a number of timesteps known when {type(self).__name__} runs with "
                "`parallel=True` (the scan's length is fixed when it is traced); pass "
                "parallel='auto' to run the step loop instead. Received: "
                f"sequences.shape={tuple(sequences.shape)}"
            )
        return False

    def inner_loop(self, sequences, initial_state, mask, training=False):
        """Runs the cell over the sequence: the parallel scan, or the step loop.

        See the class docstring for when each path runs; the step loop is
        `SeqCellRNN.inner_loop`.
        """
        if not self._runs_parallel(sequences):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        cell = self.cell
        input_mask = None
        if training and cell.dropout > 0:
            input_mask = cell.get_dropout_mask(sequences[:, 0, :])
        kernel, bias = cell.input_weights()
        projected = cell.project(dropped_out(cell, sequences, input_mask), kernel, bias)
        log_a, log_b = cell.log_coefficients(projected)
        step_mask = None
        if mask is not None:
            step_mask = ops.expand_dims(ops.cast(mask, "bool"), -1)
            log_a = ops.where(step_mask, log_a, ops.zeros_like(log_a))
            log_b = ops.where(step_mask, log_b, ops.full_like(log_b, _LOG_ZERO))
        if self.go_backwards:
            log_a, log_b = ops.flip(log_a, axis=1), ops.flip(log_b, axis=1)
            step_mask = None if step_mask is None else ops.flip(step_mask, axis=1)
        log_decay, log_from_inputs = ops.associative_scan(_combine, (log_a, log_b), axis=1)
        # TensorFlow's scan loses the static shape inside a traced function.
        log_decay = ops.reshape(log_decay, ops.shape(log_a))
        log_from_inputs = ops.reshape(log_from_inputs, ops.shape(log_b))
        h_0 = ops.expand_dims(ops.cast(initial_state[0], cell.state_dtype), 1)
        states = ops.exp(log_from_inputs) + ops.exp(log_decay) * h_0
        outputs = states
        if step_mask is not None:
            outputs = ops.where(self._output_mask(step_mask), states, ops.zeros_like(states))
        outputs = ops.cast(outputs, cell.compute_dtype)
        return outputs[:, -1], outputs, [states[:, -1]]

    def _output_mask(self, step_mask):
        """Where a step's output is its state, in processing order (zeros elsewhere)."""
        if self.zero_output_for_mask:
            return step_mask
        if keras.backend.backend() == "jax" and not self.unroll:
            # Keras's JAX scan repeats the carried state at a masked step.
            return ops.ones_like(step_mask)
        # The previous output, zeros until the first unmasked step: the state
        # from that step on (a masked step carries it).
        return ops.cumsum(ops.cast(step_mask, "int32"), axis=1) > 0

    def get_config(self):
        return {**super().get_config(), "parallel": self.parallel}


@keras.saving.register_keras_serializable(package="keras_seqcells")
class MinGRU(MinimalRNN):
    """minGRU layer (Feng et al., 2024) on `MinGRUCell`, with a parallel scan over time.

    Equations (see `MinGRUCell`; gate order z, h; `g(a) = a + 0.5` for
    `a ≥ 0`, `σ(a)` for `a < 0`):

        z_t  = σ(W_xz x_t + b_z)
        h~_t = g(W_xh x_t + b_h)
        h_t  = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h~_t

    No gate reads `h_{t-1}`, so the whole sequence can be computed at once by
    a parallel scan in log space (`log(1 - z_t) = -softplus(k_z)`,
    `log(z_t ⊙ h~_t) = -softplus(-k_z) + log g(k_h)`); `MinimalRNN`
    describes that path, its masking, and when it runs (by default on a GPU
    or TPU only).

    Args:
        units: Positive integer, dimensionality of the state and output.
        parallel: `"auto"` (default: the parallel scan on a GPU or TPU, the
            step loop on a CPU), True (always the scan) or False (always the
            step loop); see `MinimalRNN`.
        **kwargs: The arguments of `MinGRUCell` (`use_bias`,
            `kernel_initializer`, `dropout`, ...), of `keras.layers.RNN`
            (`return_sequences`, `return_state`, `go_backwards`, `stateful`,
            `unroll`, `zero_output_for_mask`) and base layer arguments
            (`name`, `dtype`).

    Call arguments:
        sequences: A 3D tensor of shape `(batch, timesteps, features)`.
        initial_state: Optional list with one tensor of shape `(batch, units)`.
        mask: Optional boolean tensor of shape `(batch, timesteps)`; a masked
            step carries the state and the previous output unchanged.
        training: Python boolean, whether dropout is applied.

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> keras_seqcells.MinGRU(4, return_sequences=True)(inputs).shape
    (32, 10, 4)
    """

    cell_class = MinGRUCell


@keras.saving.register_keras_serializable(package="keras_seqcells")
class MinLSTM(MinimalRNN):
    """minLSTM layer (Feng et al., 2024) on `MinLSTMCell`, with a parallel scan over time.

    Equations (see `MinLSTMCell`; gate order f, i, h; `g(a) = a + 0.5` for
    `a ≥ 0`, `σ(a)` for `a < 0`):

        f_t  = σ(W_xf x_t + b_f)
        i_t  = σ(W_xi x_t + b_i)
        h~_t = g(W_xh x_t + b_h)
        f'_t = f_t / (f_t + i_t),   i'_t = i_t / (f_t + i_t)
        h_t  = f'_t ⊙ h_{t-1} + i'_t ⊙ h~_t

    No gate reads `h_{t-1}`, so the whole sequence can be computed at once by
    a parallel scan in log space (with `d = softplus(-k_f) - softplus(-k_i)`,
    `log f'_t = -softplus(d)` and `log i'_t = -softplus(-d)`); `MinimalRNN`
    describes that path, its masking, and when it runs (by default on a GPU
    or TPU only).

    Args:
        units: Positive integer, dimensionality of the state and output.
        parallel: `"auto"` (default: the parallel scan on a GPU or TPU, the
            step loop on a CPU), True (always the scan) or False (always the
            step loop); see `MinimalRNN`.
        **kwargs: The arguments of `MinLSTMCell` (`use_bias`,
            `kernel_initializer`, `dropout`, ...), of `keras.layers.RNN`
            (`return_sequences`, `return_state`, `go_backwards`, `stateful`,
            `unroll`, `zero_output_for_mask`) and base layer arguments
            (`name`, `dtype`).

    Call arguments:
        sequences: A 3D tensor of shape `(batch, timesteps, features)`.
        initial_state: Optional list with one tensor of shape `(batch, units)`.
        mask: Optional boolean tensor of shape `(batch, timesteps)`; a masked
            step carries the state and the previous output unchanged.
        training: Python boolean, whether dropout is applied.

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> keras_seqcells.MinLSTM(4)(inputs).shape
    (32, 4)
    """

    cell_class = MinLSTMCell
