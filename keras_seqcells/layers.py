"""RNN layers built on the keras_seqcells cells: drop-in for Keras's own."""

import contextlib
import contextvars

import keras
from keras import ops

# The loop of `keras.layers.RNN` on every backend (masks, go_backwards, unroll);
# Keras exports it only through its private backend module.
from keras.src import backend as keras_backend
from keras.src.utils import tracking

from keras_seqcells._checks import check_bool, check_choice, get_regularizer
from keras_seqcells.cells import GRUCell, LSTMCell, SimpleRNNCell
from keras_seqcells.cells.base import RecurrentCell

# The layer arguments of `keras.layers.RNN` that are flags.
_BOOL_ARGUMENTS = (
    "return_sequences",
    "return_state",
    "go_backwards",
    "stateful",
    "unroll",
    "zero_output_for_mask",
)

# Config keys of the base Layer that belong to the RNN layer, not its cell.
_LAYER_KEYS = ("name", "trainable", "dtype")


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
# loop (`set_xla_loop`) and the fast path itself (off: the generic loop of
# `keras.layers.RNN`, kept for comparisons in tests and benchmarks).
_XLA_LOOP = [True]
_FAST_PATH = [True]


def set_xla_loop(enabled):
    """Turns the XLA-compiled loop of the layers on (default) or off.

    It only matters on the TensorFlow backend, inside traced functions (see
    `SeqCellRNN.inner_loop`). Returns the previous setting.
    """
    previous = _XLA_LOOP[0]
    _XLA_LOOP[0] = bool(enabled)
    return previous


# The XLA loop wins where the per-step overhead dominates; for large steps
# TensorFlow's own matrix products are faster on CPU. Above this many
# floating-point operations in a step's two matrix products (with the batch
# size, or per batch row when the batch size is not known when tracing) the
# loop is not XLA-compiled.
_XLA_MAX_STEP_FLOPS = 1e8
_XLA_MAX_STEP_FLOPS_PER_ROW = 1.5e6


def _use_xla_loop(sequences, cell):
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
    row_flops = 2.0 * (features + cell.units) * len(cell.gate_names) * cell.units
    if batch is None:
        return row_flops <= _XLA_MAX_STEP_FLOPS_PER_ROW
    return batch * row_flops <= _XLA_MAX_STEP_FLOPS


def _xla_loop(loop, sequences, initial_state, mask):
    """`loop(sequences, initial_state, mask, None, None)` as one XLA-compiled function.

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
        last_output, outputs, new_states = loop(sequences, list(states), mask, None, None)
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


def _from_cell(attribute):
    return property(
        lambda self: getattr(self.cell, attribute),
        doc=f"The cell's `{attribute}` (see the cell's docstring).",
    )


def _check_use_cudnn(use_cudnn):
    return check_choice("use_cudnn", use_cudnn, ("auto", True, False))


@keras.saving.register_keras_serializable(package="keras_seqcells")
class SeqCellRNN(keras.layers.RNN):
    """Base of the keras_seqcells RNN layers.

    A `keras.layers.RNN` whose constructor takes the cell's arguments (like
    `keras.layers.LSTM`) and whose states stay in the cell's state dtype
    (float32 under a mixed precision policy) through the whole sequence.
    With a cell that is not a keras_seqcells cell it is exactly
    `keras.layers.RNN`.

    Subclasses may also derive from Keras's own layer (`LSTM` derives from
    `keras.layers.LSTM`, so that Keras treats it as one); the methods here
    therefore call `keras.layers.RNN`'s explicitly, never the Keras layer's.
    """

    def __init__(self, cell, **kwargs):
        for argument in _BOOL_ARGUMENTS:
            if argument in kwargs:
                kwargs[argument] = check_bool(argument, kwargs[argument])
        if "activity_regularizer" in kwargs:
            kwargs["activity_regularizer"] = get_regularizer(
                "activity_regularizer", kwargs["activity_regularizer"]
            )
        keras.layers.RNN.__init__(self, cell, **kwargs)

    units = _from_cell("units")
    activation = _from_cell("activation")
    use_bias = _from_cell("use_bias")
    kernel_initializer = _from_cell("kernel_initializer")
    recurrent_initializer = _from_cell("recurrent_initializer")
    bias_initializer = _from_cell("bias_initializer")
    kernel_regularizer = _from_cell("kernel_regularizer")
    recurrent_regularizer = _from_cell("recurrent_regularizer")
    bias_regularizer = _from_cell("bias_regularizer")
    kernel_constraint = _from_cell("kernel_constraint")
    recurrent_constraint = _from_cell("recurrent_constraint")
    bias_constraint = _from_cell("bias_constraint")
    dropout = _from_cell("dropout")
    recurrent_dropout = _from_cell("recurrent_dropout")
    seed = _from_cell("seed")

    def build(self, sequences_shape, initial_state_shape=None):
        self._check_sequences_shape(sequences_shape)
        keras.layers.RNN.build(self, sequences_shape, initial_state_shape)

    def _check_sequences_shape(self, shape):
        if len(shape) != 3:
            raise ValueError(
                f"Expected `sequences` of rank 3 (batch, timesteps, features) for "
                f"{type(self).__name__}. Received: sequences.shape={tuple(shape)}"
            )
        if shape[1] == 0:
            raise ValueError(
                f"Expected `sequences` with at least one timestep for {type(self).__name__}. "
                f"Received: sequences.shape={tuple(shape)}"
            )

    def _check_state_batch(self, sequences, states):
        batch = sequences.shape[0]
        received = [s.shape[0] for s in states]
        if batch is not None and any(size not in (None, batch) for size in received):
            raise ValueError(
                f"Expected `initial_state` with the batch size of `sequences` ({batch}). "
                f"Received: initial_state batch sizes={received}"
            )

    def _check_stateful_batch(self, sequences):
        batch = sequences.shape[0]
        if None not in (batch, self._expected_batch_size) and batch != self._expected_batch_size:
            raise ValueError(
                "Expected `sequences` with the batch size of the stateful layer's states "
                f"({self._expected_batch_size}). Received: sequences.shape={tuple(sequences.shape)}"
            )

    def call(self, sequences, initial_state=None, mask=None, training=False):
        if not isinstance(self.cell, RecurrentCell):
            return keras.layers.RNN.call(
                self, sequences, initial_state=initial_state, mask=mask, training=training
            )
        self._check_sequences_shape(sequences.shape)
        if self.unroll and sequences.shape[1] is None:
            raise ValueError(
                "Expected a known number of timesteps with `unroll=True`. Received: "
                f"sequences.shape={tuple(sequences.shape)}"
            )
        if initial_state is not None:
            initial_state = self.cell._check_states(initial_state, argument="initial_state")
            self._check_state_batch(sequences, initial_state)
        elif self.stateful:
            self._check_stateful_batch(sequences)
            initial_state = self.states
        else:
            initial_state = self.get_initial_state(ops.shape(sequences)[0])
        initial_state = [ops.cast(s, self.cell.state_dtype) for s in initial_state]

        # One dropout mask per sequence, prepared outside the loop (as
        # `keras.layers.RNN` does) so that the loop body stays stateless.
        self.cell.get_dropout_mask(sequences[:, 0, :])
        self.cell.get_recurrent_dropout_mask(initial_state[0])
        last_output, outputs, states = self.inner_loop(
            sequences=sequences,
            initial_state=initial_state,
            mask=mask,
            training=training,
        )
        self.cell.reset_dropout_mask()
        self.cell.reset_recurrent_dropout_mask()

        if self.stateful:
            for variable, state in zip(self.states, states, strict=True):
                variable.assign(ops.cast(state, variable.dtype))
        output = outputs if self.return_sequences else last_output
        output = ops.cast(output, self.compute_dtype)
        if self.return_state:
            return output, *states
        return output

    # -------------------------------------------------------------- the loop
    def inner_loop(self, sequences, initial_state, mask, training=False):
        """Runs the cell over the sequence on the fastest exact path.

        The fast path reads (and casts) the weights once before the loop,
        applies the per-sequence input dropout mask to the whole sequence (as
        the cell applies it step by step) and loops over the steps with the
        equations of the cell (`RecurrentCell._recurrent_step`, the code the
        cell itself runs) via Keras's backend `rnn` loop, so masking,
        `go_backwards`, `unroll`, `zero_output_for_mask`, `return_sequences`
        and the states behave exactly as in the generic loop of
        `keras.layers.RNN`. Two exceptions work around Keras's backend loops:
        on JAX a masked step of a SimpleRNN with a head repeats the previous
        output (Keras's JAX loop would repeat the hidden state), and on torch
        an unrolled `go_backwards` loop with a mask reverses the steps before
        the loop (Keras's fails there). Each step computes `x_t @ kernel + bias` and the
        recurrent product (computing the input projection of all steps as
        one product before the loop measured slower on CPU, with and without
        XLA, in training and inference: a wide intermediate and its gradient).

        On the TensorFlow backend, when the layer runs inside a traced
        function (`predict`, `evaluate`, a `tf.function`) with
        `training=False`, the whole loop is an XLA-compiled function
        (`tf.function(jit_compile=True)`); its gradient, when one is taken, is
        a second XLA function that recomputes the forward pass. The loop is
        not XLA-compiled inside `portable_graphs()` (which keeps traced graphs
        free of compiler-specific functions), in eager execution, in
        training (where TensorFlow's own kernels are faster on CPU), for a
        number of steps unknown when tracing, for
        large steps (more than `_XLA_MAX_STEP_FLOPS` in a step's matrix
        products, where they are faster too), or after
        `keras_seqcells.layers.set_xla_loop(False)`.

        On a GPU, an LSTM, or a GRU with `reset_after=True`, runs Keras's
        cuDNN kernel instead wherever its equations are the cell's (see
        `_cudnn_applies` and the layers' `use_cudnn`).

        The generic loop of `keras.layers.RNN` (the cell called once per
        step) is used for a cell that is not a keras_seqcells cell.
        """
        if not _FAST_PATH[0] or not isinstance(self.cell, RecurrentCell):
            return keras.layers.RNN.inner_loop(
                self, sequences, initial_state, mask, training=training
            )
        cell = self.cell
        input_mask = None
        if training and cell.dropout > 0:
            input_mask = cell.get_dropout_mask(sequences[:, 0, :])
        recurrent_mask = cell._recurrent_mask(initial_state[0], training)
        outputs = self._cudnn_outputs(sequences, initial_state, mask, input_mask, recurrent_mask)
        if outputs is not None:
            return outputs
        if not training and _use_xla_loop(sequences, cell):
            return _xla_loop(self._fast_loop, sequences, list(initial_state), mask)
        return self._fast_loop(sequences, list(initial_state), mask, input_mask, recurrent_mask)

    def _cudnn_outputs(self, sequences, initial_state, mask, input_mask, recurrent_mask):
        """`inner_loop`'s outputs from a cuDNN kernel, or None where none runs.

        A layer without a cuDNN form (`SimpleRNN`) has none; see
        `CudnnCapableRNN`.
        """
        return None

    # -------------------------------------------------------------- fast path
    def _dropped_out(self, sequences, input_mask):
        """The sequences in the compute dtype, times the sequence's input dropout mask."""
        x = ops.cast(sequences, self.cell.compute_dtype)
        if input_mask is not None:
            x = x * ops.expand_dims(ops.cast(input_mask, x.dtype), 1)
        return x

    def _fast_loop(self, sequences, initial_state, mask, input_mask, recurrent_mask):
        """The fast path: weights read and cast once, then Keras's backend loop.

        Each step computes its own input projection `x_t @ kernel + bias`
        (not all steps' at once before the loop) and then the cell's
        `_recurrent_step`.
        """
        cell = self.cell
        kernel, bias = cell._loop_input_weights()
        recurrent_kernel = cell._loop_recurrent_kernel()
        x = self._dropped_out(sequences, input_mask)
        backend = keras.backend.backend()

        def step(x_t, states):
            projected = cell._project_inputs(x_t, kernel, bias)
            output, new_states, _ = cell._recurrent_step(
                projected, states, recurrent_mask, recurrent_kernel
            )
            return ops.cast(output, cell.compute_dtype), new_states

        go_backwards = self.go_backwards
        if go_backwards and self.unroll and mask is not None and backend == "torch":
            # Keras's unrolled torch loop fails to reverse a mask (it flips a
            # tuple); reversing the steps here runs the same computation.
            x = ops.flip(x, axis=1)
            mask = ops.flip(ops.convert_to_tensor(mask), axis=1)
            go_backwards = False

        # Keras's JAX loop (not unrolled) repeats `states[0]` as the output of
        # a masked step. Where the output is not the first state (a softmax
        # head), the previous output travels as an extra first state instead,
        # starting from zeros like the other backends' previous output.
        carry_output = (
            backend == "jax"
            and mask is not None
            and not self.unroll
            and not self.zero_output_for_mask
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

        last_output, outputs, states = keras_backend.rnn(
            loop_step,
            x,
            loop_states,
            go_backwards=go_backwards,
            mask=mask,
            unroll=self.unroll,
            input_length=sequences.shape[1],
            zero_output_for_mask=self.zero_output_for_mask,
            return_all_outputs=self.return_sequences,
        )
        if carry_output:
            states = list(states)[1:]
        return last_output, outputs, states

    @tracking.no_automatic_dependency_tracking
    def _create_state_variables(self, batch_size):
        # The stateful layer's states are read and written in the state dtype:
        # an autocast variable would read float32 states as float16 under a
        # mixed precision policy, and on torch an assignment inside the call
        # would write into that cast copy and be lost.
        with keras_backend.name_scope(self.name, caller=self):
            self.states = [
                keras.Variable(
                    value,
                    trainable=False,
                    dtype=self.variable_dtype,
                    name="rnn_state",
                    autocast=False,
                )
                for value in self.get_initial_state(batch_size)
            ]

    def get_config(self):
        config = keras.layers.RNN.get_config(self)
        if not isinstance(self.cell, RecurrentCell):
            return config
        config.pop("cell")
        cell_config = {
            key: value for key, value in self.cell.get_config().items() if key not in _LAYER_KEYS
        }
        config["activity_regularizer"] = keras.regularizers.serialize(self.activity_regularizer)
        return {**config, **cell_config}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        if "cell" in config:
            # A layer around a cell that is not a keras_seqcells cell.
            return keras.layers.RNN.from_config.__func__(cls, config, custom_objects)
        return cls(**config)


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
                outputs = self._cudnn_loop(self._dropped_out(sequences, input_mask), initial_state)
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


@keras.saving.register_keras_serializable(package="keras_seqcells")
class SimpleRNN(SeqCellRNN):
    """Fully-connected RNN layer on `SimpleRNNCell`; drop-in for `keras.layers.SimpleRNN`.

    Equations (see `SimpleRNNCell`):

        h_t = tanh(W_hh h_{t-1} + W_xh x_t + b_h)
        y_t = softmax(W_hy h_t + b_y)        # only with `output_units`

    Without `output_units` the layer has the weight variables of
    `keras.layers.SimpleRNN` (`kernel`, `recurrent_kernel`, `bias`), so
    weights and checkpoints load either way unchanged.

    Args:
        units: Positive integer, dimensionality of the state.
        activation, use_bias, kernel_initializer, recurrent_initializer,
            bias_initializer, kernel_regularizer, recurrent_regularizer,
            bias_regularizer, kernel_constraint, recurrent_constraint,
            bias_constraint, dropout, recurrent_dropout, seed: as for
            `SimpleRNNCell`.
        activity_regularizer: Regularizer of the layer's output.
        return_sequences: Boolean, whether to return the whole output
            sequence rather than the last output. Default: False.
        return_state: Boolean, whether to also return the last state.
        go_backwards: Boolean, whether to process the sequence backwards and
            return the reversed sequence.
        stateful: Boolean, whether the last state of each sample is the
            initial state of the same sample in the next batch.
        unroll: Boolean, whether to unroll the loop (faster for short
            sequences, more memory).
        output_units: None or a positive integer: the per-step softmax head of
            `SimpleRNNCell`.
        **kwargs: Base layer keyword arguments (`name`, `dtype`,
            `zero_output_for_mask`, ...).

    Call arguments:
        sequences: A 3D tensor of shape `(batch, timesteps, features)`.
        initial_state: Optional list with one tensor of shape `(batch, units)`.
        mask: Optional boolean tensor of shape `(batch, timesteps)`; a masked
            step carries the state and the previous output unchanged.
        training: Python boolean, whether dropout is applied.

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> keras_seqcells.SimpleRNN(4, return_sequences=True)(inputs).shape
    (32, 10, 4)
    """

    def __init__(
        self,
        units,
        activation="tanh",
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
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        seed=None,
        output_units=None,
        **kwargs,
    ):
        cell = SimpleRNNCell(
            units,
            output_units=output_units,
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
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name="simple_rnn_cell",
        )
        super().__init__(
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            activity_regularizer=activity_regularizer,
            **kwargs,
        )

    output_units = _from_cell("output_units")


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


#: The layer of each cell name, as tasks, builders and the command line spell it.
CELL_LAYERS = {"simple_rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}


def layer_for_cell(cell):
    """Returns the layer class for a cell name: `"simple_rnn"`, `"lstm"` or `"gru"`."""
    if cell not in CELL_LAYERS:
        raise ValueError(
            f"Expected `cell` to be one of {sorted(CELL_LAYERS)}. Received: cell={cell!r}"
        )
    return CELL_LAYERS[cell]
