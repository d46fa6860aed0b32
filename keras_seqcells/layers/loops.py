"""How the layers run a cell over a sequence: the fast loop, its XLA form, and steps.

- `fast_loop`: the weights read and cast once, then Keras's backend loop over
  the cell's `step` (what the layers run by default), or on torch
  `torch_loop`, a Python loop over it;
- `xla_loop`: that loop as one XLA-compiled function (TensorFlow inference);
- `run_steps`: a Python loop over the steps that reports every step's
  intermediate values and lets a `StateHook` see and change each new state
  (the stepping core of `trace` and `gradient_flow`).
"""

import contextlib
import contextvars

import keras
from keras import ops

from keras_seqcells._keras_internals import keras_backend, variables_in_own_dtype
from keras_seqcells.cells.base import Recurrence

_PORTABLE_GRAPHS = contextvars.ContextVar("keras_seqcells_portable_graphs", default=False)


@contextlib.contextmanager
def portable_graphs():
    """Builds graphs of standard operations only, within the context.

    Fast paths that tie a graph to a compiler or a device (an XLA-compiled
    loop, a cuDNN kernel) are switched off while the context is active, so a
    function traced inside it, such as an exported serving signature, runs on
    any TensorFlow runtime and device.
    """
    token = _PORTABLE_GRAPHS.set(True)
    try:
        yield
    finally:
        _PORTABLE_GRAPHS.reset(token)


# Module switches (one-element lists, read when a layer is traced): the XLA
# loop (`set_xla_loop`), the fast path itself (off: the generic loop of
# `keras.layers.RNN`) and its torch loop (off: Keras's torch `rnn` loop),
# kept for comparisons in tests and benchmarks.
_XLA_LOOP = [True]
_FAST_PATH = [True]
_TORCH_LOOP = [True]


def set_xla_loop(enabled):
    """Turns the XLA-compiled loop of the layers on (default) or off.

    It only matters on the TensorFlow backend, inside traced functions (see
    `SeqCellRNN.inner_loop`). Returns the previous setting.
    """
    previous = _XLA_LOOP[0]
    _XLA_LOOP[0] = bool(enabled)
    return previous


# The XLA loop measured faster than TensorFlow's own kernels on CPU at every
# size up to these: a GRU at B=256, H=1024 (1.7e9 floating-point operations
# in a step's matrix products) and an LSTM at H=1024 (8.7e6 per batch row,
# the bound used when the batch size is not known when tracing). Larger
# steps keep TensorFlow's kernels, not measured against XLA.
_XLA_MAX_STEP_FLOPS = 1.8e9
_XLA_MAX_STEP_FLOPS_PER_ROW = 9e6


def use_xla_loop(sequences, cell):
    """Whether the fast path runs as an XLA-compiled function here and now."""
    if not _XLA_LOOP[0] or _PORTABLE_GRAPHS.get() or keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    # A number of steps unknown when tracing (e.g. `predict` after it relaxed
    # its input signature) keeps the plain loop: that case is not verified
    # under XLA.
    if not tf.inside_function() or sequences.shape[1] is None:
        return False
    batch, features = sequences.shape[0], sequences.shape[-1]
    input_blocks, recurrent_blocks = len(cell.gate_names), len(cell._recurrent_blocks())
    row_flops = 2.0 * (features * input_blocks + cell.units * recurrent_blocks) * cell.units
    if batch is None:
        return row_flops <= _XLA_MAX_STEP_FLOPS_PER_ROW
    return batch * row_flops <= _XLA_MAX_STEP_FLOPS


def xla_loop(loop, sequences, initial_state, mask):
    """`loop(sequences, initial_state, mask)` as one XLA-compiled function.

    The loop's gradient cannot leave an XLA function (its while-loop
    accumulators are TensorLists, which do not cross the XLA boundary), so
    inside the compiled function the loop has a custom gradient that
    recomputes the forward pass and differentiates it. The forward pass
    then hands no intermediates to its gradient, and the gradient is a
    second XLA function. A custom gradient around a nested compiled function
    instead measured 0.1-0.3 ms slower per call at batch 1.
    """
    import tensorflow as tf

    n_states = len(initial_state)

    def forward(sequences, *states):
        last_output, outputs, new_states = loop(sequences, list(states), mask)
        return (last_output, outputs, *new_states)

    @tf.custom_gradient
    def run(sequences, *states):
        def gradient(*upstream, variables=None):
            variables = list(variables or [])

            def backward(sequences, states, upstream):
                with tf.GradientTape() as tape:
                    tape.watch([sequences, *states])
                    again = forward(sequences, *states)
                return tape.gradient(
                    again,
                    [sequences, *states, *variables],
                    output_gradients=list(upstream),
                    unconnected_gradients=tf.UnconnectedGradients.ZERO,
                )

            grads = tf.function(backward, jit_compile=True, autograph=False)(
                sequences, list(states), list(upstream)
            )
            return grads[: 1 + n_states], grads[1 + n_states :]

        return forward(sequences, *states), gradient

    compiled = tf.function(run, jit_compile=True, autograph=False)
    last_output, outputs, *new_states = compiled(sequences, *initial_state)
    return last_output, outputs, new_states


def dropped_out(cell, sequences, input_mask):
    """The sequences in the compute dtype, times the sequence's input dropout mask."""
    x = ops.cast(sequences, cell.compute_dtype)
    if input_mask is not None:
        x = x * ops.expand_dims(ops.cast(input_mask, x.dtype), 1)
    return x


def fast_loop(layer, sequences, initial_state, mask, input_mask, recurrent_mask):
    """The fast path: weights read and cast once, then Keras's backend loop.

    On the torch backend the loop is `torch_loop` instead (a Python loop
    around the cell's `step`, measured faster there). Elsewhere, each step
    computes its own input projection `x_t @ kernel + bias` (not
    all steps' at once before the loop: that measured slower on CPU, with and
    without XLA, in training and inference: a wide intermediate and its
    gradient) and then the cell's `step`. Masking, `go_backwards`, `unroll`,
    `zero_output_for_mask`, `return_sequences` and the states behave exactly
    as in the generic loop of `keras.layers.RNN`, with two workarounds of
    Keras's backend loops: on JAX a masked step of a cell whose output is not
    its first state repeats the previous output (Keras's JAX loop would
    repeat the first state), and on torch an unrolled `go_backwards` loop
    with a mask reverses the steps before the loop (Keras's fails there).

    Returns:
        `(last_output, outputs, states)` as Keras's backend `rnn` returns them.
    """
    cell = layer.cell
    kernel, bias = cell.input_weights()
    recurrence = cell.recurrence(recurrent_mask)
    x = dropped_out(cell, sequences, input_mask)
    backend = keras.backend.backend()
    if backend == "torch" and _TORCH_LOOP[0]:
        return torch_loop(layer, x, initial_state, mask, kernel, bias, recurrence)

    def step(x_t, states):
        output, new_states, _ = cell.step(cell.project(x_t, kernel, bias), states, recurrence)
        return ops.cast(output, cell.compute_dtype), new_states

    go_backwards = layer.go_backwards
    if go_backwards and layer.unroll and mask is not None and backend == "torch":
        # Keras's unrolled torch loop fails to reverse a mask (it flips a
        # tuple); reversing the steps here runs the same computation.
        x = ops.flip(x, axis=1)
        mask = ops.flip(ops.convert_to_tensor(mask), axis=1)
        go_backwards = False

    # Keras's JAX loop (not unrolled) repeats `states[0]` as the output of a
    # masked step. Where the output is not the first state (a softmax head),
    # the previous output travels as an extra first state instead, starting
    # from zeros like the other backends' previous output.
    carry_output = (
        backend == "jax"
        and mask is not None
        and not layer.unroll
        and not layer.zero_output_for_mask
        and not cell.output_is_first_state
    )
    loop_step, loop_states = step, initial_state
    if carry_output:
        batch = ops.shape(sequences)[0]
        no_output = ops.zeros((batch, cell.output_size), dtype=cell.compute_dtype)
        loop_states = [no_output, *initial_state]

        def loop_step(x_t, states):
            output, new_states = step(x_t, list(states[1:]))
            return output, [output, *new_states]

    with variables_in_own_dtype():
        last_output, outputs, states = keras_backend.rnn(
            loop_step,
            x,
            loop_states,
            go_backwards=go_backwards,
            mask=mask,
            unroll=layer.unroll,
            input_length=sequences.shape[1],
            zero_output_for_mask=layer.zero_output_for_mask,
            return_all_outputs=layer.return_sequences,
        )
    if carry_output:
        states = list(states)[1:]
    return last_output, outputs, states


# The dtype in which Keras's torch `matmul` of two tensors of that dtype is a
# plain `torch.matmul` (it computes float16 in float32 on CPU, and float64 in
# float32: its result dtype of two torch float64 tensors is float32).
_PLAIN_PRODUCT_DTYPE = "float32"


class _TorchRecurrence(Recurrence):
    """A `Recurrence` whose product is `torch.matmul` itself where Keras's is the same.

    Where the compute and state dtypes are both float32, the
    casts of `Recurrence.__call__` change nothing and Keras's `ops.matmul`
    calls `torch.matmul` on its operands unchanged, so the product is the same
    tensor without Keras's dispatch (about 14 us of the 21 us a product took at B=1, H=128).
    Any other case runs `Recurrence.__call__`.
    """

    def __init__(self, recurrence):
        super().__init__(recurrence.cell, recurrence.kernel, recurrence.mask)
        cell, kernel = self.cell, self.kernel
        self._plain = (
            kernel is not None
            and cell.compute_dtype == cell.state_dtype
            and cell.compute_dtype == _PLAIN_PRODUCT_DTYPE
            and keras.backend.standardize_dtype(kernel.dtype) == cell.compute_dtype
        )

    def __call__(self, h, gates=None, dropout=True):
        if not self._plain or h.dtype != self.kernel.dtype:
            return super().__call__(h, gates=gates, dropout=dropout)
        import torch

        kernel = self.kernel
        if gates is not None:
            kernel = kernel[:, self.cell._block_columns(gates, self.cell._recurrent_blocks())]
        if dropout:
            h = self.dropped(h)
        return torch.matmul(h, kernel)


def torch_loop(layer, x, initial_state, mask, kernel, bias, recurrence):
    """The fast path's loop on the torch backend: a Python loop over the cell's `step`.

    Keras's torch `rnn` loop costs more per step than the cell's own
    operations at small sizes; this loop computes the same values with
    plain torch operations around the cell's `step` (the equations the cell
    itself runs). The input projections of all steps are one product
    `x @ kernel + bias` before the loop (`cell.project` on the whole
    sequence; each step's slice equals the step's own projection up to
    rounding), and the recurrent product is `torch.matmul` itself where Keras's
    `ops.matmul` computes exactly that (`_TorchRecurrence`).

    Masking (a masked step keeps the states and repeats the previous output,
    zeros before the first step and with `zero_output_for_mask`),
    `go_backwards` (steps and outputs in processing order), `unroll` (the
    same loop: torch runs eagerly), `return_sequences` (the outputs stacked
    only then) and the states are as in Keras's torch `rnn` loop.

    Measured against Keras's `rnn` loop on 2 CPU cores (H=128, D=32,
    medians of interleaved repeats, ms): inference at B=1, T=100
    (`torch.no_grad()`) SimpleRNN 3.0 vs 10.9, LSTM 6.7 vs 18.4, GRU 7.0 vs
    17.1; forward at B=64, T=10 LSTM 3.0 vs 4.7, GRU 2.6 vs 4.1; at B=64,
    T=100 SimpleRNN 5.9 vs 13.3, LSTM 26.4 vs 31.3, GRU 16.3 vs 26.1; a
    training step (`train_on_batch`, B=64, T=100) LSTM 60.6 vs 68.5, GRU
    55.8 vs 62.8, SimpleRNN 13.4 vs 21.8. One product for all steps' input
    projections measured faster than a product per step (B=1: 6.7 vs 8.7
    ms for the LSTM) and no slower in training.

    Args:
        layer: The layer (its cell a `RecurrentCell`).
        x: The `(batch, timesteps, features)` input in the compute dtype,
            input dropout applied.
        initial_state: The list of initial states, in the state dtype.
        mask: Optional `(batch, timesteps)` mask.
        kernel: The input kernel from `cell.input_weights()`.
        bias: The bias from `cell.input_weights()`, or None.
        recurrence: The sequence's `Recurrence`.

    Returns:
        `(last_output, outputs, states)` as Keras's backend `rnn` returns
        them (`outputs` of shape `(batch, 1, output_size)`, the last output,
        without `return_sequences`).
    """
    import torch

    cell = layer.cell
    recurrence = _TorchRecurrence(recurrence)
    with variables_in_own_dtype():
        steps = torch.unbind(cell.project(x, kernel, bias), dim=1)
        step_masks = None
        if mask is not None:
            mask = ops.convert_to_tensor(mask).to(torch.bool)
            step_masks = torch.unbind(mask.unsqueeze(-1), dim=1)
        if layer.go_backwards:
            steps = steps[::-1]
            step_masks = None if step_masks is None else step_masks[::-1]
        states, output, outputs = list(initial_state), None, []
        for t, projected in enumerate(steps):
            step_output, new_states, _ = cell.step(projected, states, recurrence)
            step_output = ops.cast(step_output, cell.compute_dtype)
            if step_masks is not None:
                step_mask = step_masks[t]
                if layer.zero_output_for_mask or output is None:
                    previous = torch.zeros_like(step_output)
                else:
                    previous = output
                step_output = torch.where(step_mask, step_output, previous)
                new_states = [
                    torch.where(step_mask, new, old)
                    for new, old in zip(new_states, states, strict=True)
                ]
            states, output = list(new_states), step_output
            if layer.return_sequences:
                outputs.append(output)
    outputs = torch.stack(outputs, dim=1) if outputs else output.unsqueeze(1)
    return output, outputs, states


# ------------------------------------------------------------------ stepping
class StateHook:
    """Sees, and may change, what a layer's steps compute while `state_hooks` is active.

    Subclasses override either method; the defaults change nothing.
    """

    def sequences(self, layer, sequences):
        """Called once per call of `layer` with its input; returns the input to run."""
        return sequences

    def states(self, layer, step, states):
        """Called with the new states of each step (`step` in processing order).

        Returns the states the next step and the step's output read.
        """
        return states


_STATE_HOOKS = contextvars.ContextVar("keras_seqcells_state_hooks", default=None)


@contextlib.contextmanager
def state_hooks(hooks):
    """Runs the given layers through `run_steps` with their hooks, within the context.

    Args:
        hooks: A dict mapping recurrent layers (keras_seqcells layers on a
            `RecurrentCell`) to `StateHook`s.
    """
    token = _STATE_HOOKS.set({id(layer): hook for layer, hook in hooks.items()})
    try:
        yield
    finally:
        _STATE_HOOKS.reset(token)


def active_hook(layer):
    """The `StateHook` of `layer` in the active `state_hooks` context, or None."""
    hooks = _STATE_HOOKS.get()
    return None if hooks is None else hooks.get(id(layer))


def run_steps(layer, sequences, initial_state, mask=None, training=False, hook=None):
    """Runs a layer's cell step by step in Python, as the layer's loop would.

    Masking (a masked step keeps the states and repeats the previous output,
    or gives zeros with `zero_output_for_mask`), `go_backwards` and dropout
    (the masks the layer prepared for the sequence) behave as in the layer's
    own loop. With a hook, each step's new states pass through
    `hook.states(layer, t, states)` and the output is computed from what it
    returns (`cell.output_from_states`).

    Args:
        layer: A keras_seqcells recurrent layer whose cell is a `RecurrentCell`.
        sequences: A `(batch, timesteps, features)` tensor with a known
            number of steps.
        initial_state: The list of initial states, in the state dtype.
        mask: Optional `(batch, timesteps)` boolean mask.
        training: Whether dropout applies.
        hook: Optional `StateHook`.

    Returns:
        `(last_output, outputs, states, intermediates)`: as Keras's backend
        loop (outputs `(batch, timesteps, output_size)` in processing order),
        plus a dict mapping each intermediate value's name to the list of its
        per-step tensors, in processing order.
    """
    cell = layer.cell
    if hook is not None:
        sequences = hook.sequences(layer, sequences)
    timesteps = sequences.shape[1]
    order = range(timesteps - 1, -1, -1) if layer.go_backwards else range(timesteps)
    states = list(initial_state)
    outputs, output, intermediates = [], None, {}
    for index, t in enumerate(order):
        step_output, new_states, values = cell._run_step(sequences[:, t, :], states, training)
        new_states = [ops.cast(s, cell.state_dtype) for s in new_states]
        step_mask = None
        if mask is not None:
            step_mask = ops.expand_dims(ops.cast(mask[:, t], "bool"), -1)
            new_states = [
                ops.where(step_mask, new, old) for new, old in zip(new_states, states, strict=True)
            ]
        if hook is not None:
            new_states = list(hook.states(layer, index, new_states))
            step_output = ops.cast(cell.output_from_states(new_states), cell.compute_dtype)
        if step_mask is not None:
            fallback = (
                ops.zeros_like(step_output)
                if layer.zero_output_for_mask or output is None
                else output
            )
            step_output = ops.where(step_mask, step_output, fallback)
        states = new_states
        output = step_output
        outputs.append(output)
        for name, value in values.items():
            intermediates.setdefault(name, []).append(value)
    return output, ops.stack(outputs, axis=1), states, intermediates
