"""The base of the keras_seqcells recurrent layers, and `RNN` for any cell."""

import inspect
import re

import keras
from keras import ops

from keras_seqcells._checks import check_bool, get_regularizer
from keras_seqcells._keras_internals import keras_backend, no_automatic_dependency_tracking
from keras_seqcells.cells.base import RecurrentCell
from keras_seqcells.layers.loops import (
    _FAST_PATH,
    active_hook,
    fast_loop,
    run_steps,
    use_xla_loop,
    xla_loop,
)

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


def _from_cell(attribute):
    return property(
        lambda self: getattr(self.cell, attribute),
        doc=f"The cell's `{attribute}` (see the cell's docstring).",
    )


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
        equations of the cell (`RecurrentCell.step`, the code the cell
        itself runs) via Keras's backend `rnn` loop, so masking,
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
        On torch the loop is instead a Python loop around the cell's `step`
        with all steps' input projections in one product before it
        (`loops.torch_loop`: measured faster there than Keras's torch loop,
        in inference and training).

        On the TensorFlow backend, when the layer runs inside a traced
        function (`predict`, `evaluate`, a `tf.function`) with
        `training=False`, the whole loop is an XLA-compiled function
        (`tf.function(jit_compile=True)`); its gradient, when one is taken, is
        a second XLA function that recomputes the forward pass. The loop is
        not XLA-compiled inside `portable_graphs()` (which keeps traced graphs
        free of compiler-specific functions), in eager execution, in
        training (where TensorFlow's own kernels are faster on CPU), for a
        number of steps unknown when tracing, for steps larger than any
        measured against TensorFlow's kernels (`_XLA_MAX_STEP_FLOPS`), or
        after `keras_seqcells.layers.set_xla_loop(False)`.

        On a GPU, an LSTM, or a GRU with `reset_after=True`, runs Keras's
        cuDNN kernel instead wherever its equations are the cell's (see
        `_cudnn_applies` and the layers' `use_cudnn`).

        Inside `keras_seqcells.layers.state_hooks` a layer with a hook runs
        step by step (`run_steps`), its hook seeing each new state.

        The generic loop of `keras.layers.RNN` (the cell called once per
        step) is used for a cell that is not a `RecurrentCell`.
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
        hook = active_hook(self)
        if hook is not None:
            last_output, outputs, states, _ = run_steps(
                self, sequences, initial_state, mask, training, hook
            )
            return last_output, outputs, states
        outputs = self._cudnn_outputs(sequences, initial_state, mask, input_mask, recurrent_mask)
        if outputs is not None:
            return outputs
        if not training and use_xla_loop(sequences, cell):

            def loop(sequences, states, mask):
                return fast_loop(self, sequences, states, mask, None, None)

            return xla_loop(loop, sequences, list(initial_state), mask)
        return fast_loop(self, sequences, list(initial_state), mask, input_mask, recurrent_mask)

    def _cudnn_outputs(self, sequences, initial_state, mask, input_mask, recurrent_mask):
        """`inner_loop`'s outputs from a cuDNN kernel, or None where none runs.

        A layer without a cuDNN form (`SimpleRNN`, `RNN`) has none; see
        `CudnnCapableRNN`.
        """
        return None

    @no_automatic_dependency_tracking
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


@keras.saving.register_keras_serializable(package="keras_seqcells")
class RNN(SeqCellRNN):
    """Recurrent layer for any `RecurrentCell`: the fast loop for cells you write.

    `keras.layers.RNN(cell)` runs a cell once per step in Keras's generic
    loop; `keras_seqcells.RNN(cell)` runs a `keras_seqcells.RecurrentCell`
    on the layers' fast path instead (weights read once per sequence, the
    loop XLA-compiled on TensorFlow where that wins), with the same
    arguments and results. Any other cell runs as in `keras.layers.RNN`.

    Args:
        cell: A `keras_seqcells.RecurrentCell` (or any Keras RNN cell).
        return_sequences, return_state, go_backwards, stateful, unroll,
            zero_output_for_mask: as for `keras.layers.RNN`.
        **kwargs: Base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        sequences: A 3D tensor of shape `(batch, timesteps, features)`.
        initial_state: Optional list of initial states, one per entry of the
            cell's `state_names`, each of shape `(batch, units)`.
        mask: Optional boolean tensor of shape `(batch, timesteps)`.
        training: Python boolean, whether dropout is applied.

    Example:

    >>> cell = keras_seqcells.GRUCell(8)
    >>> keras_seqcells.RNN(cell, return_sequences=True)(np.zeros((2, 5, 3))).shape
    (2, 5, 8)
    """

    def get_config(self):
        return keras.layers.RNN.get_config(self)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return keras.layers.RNN.from_config.__func__(cls, config, custom_objects)


class CellLayer(SeqCellRNN):
    """The base of a layer class for one cell class: `MyLayer(units, **arguments)`.

    A subclass sets `cell_class`; its constructor then takes the cell's
    arguments and `keras.layers.RNN`'s (`return_sequences`, `go_backwards`,
    ...) side by side, like `keras.layers.LSTM`, builds the cell, and saves
    both in one flat config.

    Args:
        units: Positive integer, the cell's `units`.
        **kwargs: The cell's constructor arguments, the arguments of
            `keras.layers.RNN`, and base layer arguments (`name`, `dtype`).

    Example:

    ```python
    @keras.saving.register_keras_serializable()
    class Leaky(keras_seqcells.layers.CellLayer):
        cell_class = LeakyCell
    ```
    """

    cell_class = None

    def __init__(self, units, **kwargs):
        if self.cell_class is None:
            raise TypeError(
                f"Expected {type(self).__name__} to set `cell_class`. "
                f"Received: cell_class={self.cell_class!r}"
            )
        # The cell's own arguments and those it passes on to its bases.
        parameters = {
            name
            for base in self.cell_class.__mro__
            if issubclass(base, RecurrentCell)
            for name in inspect.signature(base.__init__).parameters
        }
        cell_arguments = {
            name: kwargs.pop(name)
            for name in list(kwargs)
            if name in parameters and name not in ("self", "units", "kwargs")
        }
        cell_arguments.update(
            {
                "dtype": kwargs.get("dtype"),
                "trainable": kwargs.get("trainable", True),
                "name": _snake_case(self.cell_class.__name__),
            }
        )
        super().__init__(self.cell_class(units, **cell_arguments), **kwargs)

    def __getattr__(self, name):
        # The cell's own arguments read as the layer's, as `units` does. On
        # torch the cell, a sub-layer, lives in the Module's `_modules`.
        cell = self.__dict__.get("cell", (self.__dict__.get("_modules") or {}).get("cell"))
        if name == "cell" and cell is not None:
            return cell
        if cell is not None and not name.startswith("_") and hasattr(cell, name):
            return getattr(cell, name)
        parent = getattr(super(), "__getattr__", None)
        if parent is not None:
            return parent(name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


def _snake_case(name):
    return re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", name).lower()
