"""The public base of recurrent cells, and what every cell shares.

Every cell stores its weights in Keras's fused layout: `kernel` of shape
`(input_dim, n_blocks * units)`, `recurrent_kernel` of shape
`(units, n_blocks * units)` and `bias` of shape `(n_blocks * units,)`, with one
column block per gate in the order given by the cell's `gate_names`. The
equations of the specification use the "document orientation" (matrices act
on column vectors), so the named weight `W_x<g>` is the transpose of the
kernel block of gate `<g>`.
"""

from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from keras_seqcells._checks import (
    check_bool,
    check_number_above,
    check_optional_int,
    check_positive_int,
    check_rate,
    get_activation,
    get_constraint,
    get_initializer,
    get_regularizer,
)
from keras_seqcells._keras_internals import DropoutRNNCell, variables_in_own_dtype

# Re-exported: the cell modules import these checks from here.
__all__ = [
    "CellWeight",
    "Recurrence",
    "RecurrentCell",
    "check_positive_int",
    "check_rate",
    "get_activation",
]

_MIXED_COMPUTE_DTYPES = ("float16", "bfloat16")


def check_chrono_init(chrono_init, use_bias):
    """Returns `chrono_init` if it is None or a number above 2, else raises."""
    if chrono_init is None:
        return None
    check_number_above("chrono_init", chrono_init, 2)
    if not use_bias:
        raise ValueError(
            "Expected `use_bias=True` with `chrono_init`, which initialises gate biases. "
            f"Received: use_bias={use_bias}, chrono_init={chrono_init}"
        )
    return chrono_init


def chrono_biases(t_max, seed):
    """An initializer drawing `log(u)`, `u ~ U(1, t_max - 1)`, seeded by `seed`."""

    def initializer(shape, dtype=None, **_):
        dtype = dtype or keras.config.floatx()
        u = keras.random.uniform(shape, minval=1.0, maxval=float(t_max) - 1.0, seed=seed)
        return ops.cast(ops.log(u), dtype)

    return initializer


@dataclass(frozen=True)
class CellWeight:
    """A weight that a cell declares beyond `kernel`, `recurrent_kernel` and `bias`.

    `RecurrentCell.build` creates it (as the attribute `name` of the cell) and
    `named_weights()` exposes it, so a cell never builds weights by hand.

    Example: the peephole vectors of an LSTM, one block of `units` per gate,
    named `p_i`, `p_f` and `p_o` in `named_weights()`.

    ```python
    def extra_weights(self, input_dim):
        return [CellWeight("peephole", (3 * self.units,), document_name="p",
                           gates=("i", "f", "o"))]
    ```

    Args:
        name: The variable's name, also the cell attribute holding it.
        shape: The variable's shape (a tuple of ints).
        initializer: Initializer (name, config or object). Default: `"zeros"`.
        regularizer: Optional regularizer.
        constraint: Optional constraint.
        document_name: The name in `named_weights()`; default `name`. With
            `gates`, the prefix of one name per gate block (`"<name>_<gate>"`).
        transpose: Whether `named_weights()` shows the transpose (a kernel
            acting on row vectors, shown in document orientation).
        gates: Optional gate names: the last axis holds one block of `units`
            per gate, each named on its own in `named_weights()`.
    """

    name: str
    shape: tuple
    initializer: object = "zeros"
    regularizer: object = None
    constraint: object = None
    document_name: str | None = None
    transpose: bool = False
    gates: tuple | None = None


class Recurrence:
    """The recurrent products of one step: `h @ recurrent_kernel`, with recurrent dropout.

    A cell's `step` receives one; the layers build it once per sequence (the
    kernel read and cast once, the dropout mask sampled once), so a step only
    multiplies.

    Args:
        cell: The cell.
        kernel: The recurrent kernel in the compute dtype (None for a cell
            without one).
        mask: The sequence's recurrent dropout mask on `h_{t-1}`, or None.

    Example:

    >>> cell = keras_seqcells.GRUCell(4)
    >>> cell.build((None, 3))
    >>> recurrence = cell.recurrence()
    >>> h = np.ones((2, 4), "float32")
    >>> recurrence(h).shape, recurrence(h, gates=("r", "h")).shape
    ((2, 12), (2, 8))
    """

    def __init__(self, cell, kernel, mask):
        self.cell = cell
        self.kernel = kernel
        self.mask = mask

    def dropped(self, h):
        """`h` times the recurrent dropout mask (unchanged without dropout)."""
        return h if self.mask is None else h * ops.cast(self.mask, h.dtype)

    def __call__(self, h, gates=None, dropout=True):
        """`dropped(h) @ recurrent_kernel[:, blocks of gates]` in the state dtype.

        Args:
            h: A `(batch, units)` tensor, usually `h_{t-1}`.
            gates: Names of the gate blocks to multiply by, consecutive in
                `recurrent_gate_names`; all blocks by default.
            dropout: Whether to apply the recurrent dropout mask to `h`
                (False when `h` already went through `dropped`).
        """
        cell = self.cell
        kernel = self.kernel
        if gates is not None:
            kernel = kernel[:, cell._block_columns(gates, cell._recurrent_blocks())]
        if dropout:
            h = self.dropped(h)
        product = ops.matmul(ops.cast(h, cell.compute_dtype), kernel)
        return ops.cast(product, cell.state_dtype)


@dataclass(frozen=True)
class _NamedSlice:
    """Where a named (document-orientation) weight lives in a fused variable."""

    variable: keras.Variable
    columns: slice
    transpose: bool

    def read(self):
        value = np.asarray(keras.ops.convert_to_numpy(self.variable))
        block = value[..., self.columns]
        return block.T.copy() if self.transpose else block.copy()

    @property
    def shape(self):
        block_shape = (
            *self.variable.shape[:-1],
            _slice_length(self.columns, self.variable.shape[-1]),
        )
        return tuple(reversed(block_shape)) if self.transpose else tuple(block_shape)


def _slice_length(columns, size):
    return len(range(*columns.indices(size)))


class RecurrentCell(keras.layers.Layer, DropoutRNNCell):
    """Base class of recurrent cells: a subclass is its equations and nothing else.

    A subclass declares its weight layout and state and implements one step:

    - `gate_names`: one column block of `units` per name in the fused input
      `kernel` (shape `(input_dim, len(gate_names) * units)`) and `bias`;
    - `recurrent_gate_names`: the blocks of `recurrent_kernel` (shape
      `(units, len(recurrent_gate_names) * units)`); by default the same as
      `gate_names`, `()` for a cell whose gates do not read `h_{t-1}`;
    - `state_names`: the states, each of shape `(batch, units)`; the first is
      `h`, which recurrent dropout applies to;
    - `bias_in_projection`: whether the step receives `x_t @ kernel + bias`
      (True) or `x_t @ kernel` and adds `self.bias` itself (False, e.g. for a
      layer norm between the product and the bias);
    - `extra_weights(input_dim)`: further weights as `CellWeight`s (layer
      norm scales, peephole vectors, an output head), created by `build`;
    - `step(projected, states, recurrence)`: one step (see its docstring).

    From that alone the cell gets: the layers' fast loop (XLA-compiled on
    TensorFlow where that wins) through `keras_seqcells.RNN(cell)`, input and
    recurrent dropout with one mask per sequence, masking, mixed precision
    with the states and gates in float32, `named_weights` and
    `set_named_weights`, `gates` and `keras_seqcells.trace`,
    `keras_seqcells.gradient_flow`, the SavedModel `step` signature and
    step-by-step generation, argument checks and a `get_config` that
    round-trips. It also works inside `keras.layers.RNN`'s generic loop.

    Under a mixed precision policy the matrix products run in the compute
    dtype (float16/bfloat16) while the gates, the states and the output are
    computed in float32, the dtype of the variables: `step` sees the
    projections and states in float32. States are returned in the dtype they
    arrived in, so the cell works inside the generic `keras.layers.RNN`
    loop; the keras_seqcells layers feed float32 states.

    Args:
        units: Positive integer, dimensionality of each state.
        activation: The cell's main activation (`tanh` by default).
        use_bias: Boolean, whether the cell has `bias`.
        kernel_initializer, recurrent_initializer, bias_initializer: the
            initializers of `kernel`, `recurrent_kernel` and `bias`.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: their
            regularizers.
        kernel_constraint, recurrent_constraint, bias_constraint: their
            constraints.
        dropout: Float in [0, 1), fraction of the input units to drop.
        recurrent_dropout: Float in [0, 1), fraction of `h_{t-1}` to drop in
            the recurrent products.
        seed: Random seed for dropout.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Example: a minimal gated cell, `h_t = (1 - g) ⊙ h_{t-1} + g ⊙ tanh(...)`.

    ```python
    @keras.saving.register_keras_serializable()
    class LeakyCell(keras_seqcells.RecurrentCell):
        gate_names = ("g", "h")

        def step(self, projected, states, recurrence):
            (h_prev,) = states
            z_g, z_h = ops.split(projected + recurrence(h_prev), 2, axis=-1)
            g = ops.sigmoid(z_g)
            h = (1 - g) * h_prev + g * self.activation(z_h)
            return h, [h], {"g": g, "h": h}

    layer = keras_seqcells.RNN(LeakyCell(16), return_sequences=True)
    ```
    """

    gate_names = ()
    recurrent_gate_names = None
    state_names = ("h",)
    bias_in_projection = True

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
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        # States keep their own dtype (float32 under mixed precision), so the
        # automatic cast of call arguments and variables to the compute dtype
        # is off; `_run_step` casts inputs, states and weights itself.
        kwargs.pop("autocast", None)
        super().__init__(autocast=False, **kwargs)
        self.units = check_positive_int("units", units)
        self.activation = get_activation("activation", activation)
        self.use_bias = check_bool("use_bias", use_bias)
        self.kernel_initializer = get_initializer("kernel_initializer", kernel_initializer)
        self.recurrent_initializer = get_initializer("recurrent_initializer", recurrent_initializer)
        self.bias_initializer = get_initializer("bias_initializer", bias_initializer)
        self.kernel_regularizer = get_regularizer("kernel_regularizer", kernel_regularizer)
        self.recurrent_regularizer = get_regularizer("recurrent_regularizer", recurrent_regularizer)
        self.bias_regularizer = get_regularizer("bias_regularizer", bias_regularizer)
        self.kernel_constraint = get_constraint("kernel_constraint", kernel_constraint)
        self.recurrent_constraint = get_constraint("recurrent_constraint", recurrent_constraint)
        self.bias_constraint = get_constraint("bias_constraint", bias_constraint)
        self.dropout = check_rate("dropout", dropout)
        self.recurrent_dropout = check_rate("recurrent_dropout", recurrent_dropout)
        self.seed = check_optional_int("seed", seed)
        self.seed_generator = keras.random.SeedGenerator(seed=seed)

    # ------------------------------------------------------------------ sizes
    @property
    def state_size(self):
        if len(self.state_names) == 1:
            return self.units
        return [self.units] * len(self.state_names)

    @property
    def output_size(self):
        return self.units

    @property
    def output_is_first_state(self):
        """Whether each step's output is the step's first state (`h_t`)."""
        return True

    @property
    def state_dtype(self):
        """Dtype of the recurrent state: float32 under mixed precision."""
        return self.variable_dtype

    def _state_sizes(self):
        size = self.state_size
        return list(size) if isinstance(size, (list, tuple)) else [size]

    def get_initial_state(self, batch_size=None):
        return [
            ops.zeros((batch_size, size), dtype=self.state_dtype) for size in self._state_sizes()
        ]

    def output_from_states(self, states):
        """The step's output computed from its new states (`h_t` by default).

        The stepping core calls it after a state hook (see
        `keras_seqcells.gradient_flow`) changed the new states, so the output
        reads the changed states. A cell whose output is not its first state
        (`SimpleRNNCell` with a head) overrides it.
        """
        return states[0]

    # ------------------------------------------------------------------ build
    def _recurrent_blocks(self):
        if self.recurrent_gate_names is None:
            return tuple(self.gate_names)
        return tuple(self.recurrent_gate_names)

    def _block_columns(self, gates, blocks):
        """The columns of consecutive gate blocks `gates` among `blocks`."""
        gates = (gates,) if isinstance(gates, str) else tuple(gates)
        first = blocks.index(gates[0])
        if blocks[first : first + len(gates)] != gates:
            raise ValueError(
                f"Expected consecutive gate blocks among {blocks}. Received: gates={gates}"
            )
        return slice(first * self.units, (first + len(gates)) * self.units)

    def extra_weights(self, input_dim):
        """The cell's weights beyond `kernel`, `recurrent_kernel` and `bias`.

        Args:
            input_dim: The size of the step input.

        Returns:
            A list of `CellWeight`s; `build` creates each one as an attribute
            of the cell. None by default.
        """
        return []

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(
                f"Expected {type(self).__name__} input of shape (batch, input_dim) with a "
                f"known input_dim. Received: input_shape={input_shape}"
            )
        if not self.gate_names:
            raise TypeError(
                f"Expected {type(self).__name__} to declare its gate blocks in `gate_names`. "
                f"Received: gate_names={self.gate_names!r}"
            )
        blocks = len(self.gate_names) * self.units
        self.kernel = self.add_weight(
            shape=(input_shape[-1], blocks),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = None
        if self._recurrent_blocks():
            self.recurrent_kernel = self.add_weight(
                shape=(self.units, len(self._recurrent_blocks()) * self.units),
                name="recurrent_kernel",
                initializer=self.recurrent_initializer,
                regularizer=self.recurrent_regularizer,
                constraint=self.recurrent_constraint,
            )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(blocks,),
                name="bias",
                initializer=self._fused_bias_initializer(),
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        self._extra_weights = list(self.extra_weights(input_shape[-1]))
        for spec in self._extra_weights:
            variable = self.add_weight(
                shape=tuple(spec.shape),
                name=spec.name,
                initializer=spec.initializer,
                regularizer=spec.regularizer,
                constraint=spec.constraint,
            )
            setattr(self, spec.name, variable)

    def _fused_bias_initializer(self):
        return self.bias_initializer

    # ------------------------------------------------------------------- call
    def call(self, inputs, states, training=False):
        output, new_states, _ = self._run_step(inputs, states, training)
        return output, new_states

    def gates(self, x_t, states):
        """Computes one step and returns its intermediate tensors.

        Args:
            x_t: input of the step, shape `(batch, input_dim)`.
            states: the previous states, as for `call`.

        Returns:
            A dict mapping the names the cell's `step` gives its intermediate
            values (e.g. `"i"`, `"f"`, `"c_tilde"`) to tensors of shape
            `(batch, units)` in the state dtype. Dropout is not applied.
        """
        if not self.built:
            self.build(tuple(ops.shape(x_t)))
        _, _, gates = self._run_step(x_t, states, training=False)
        return gates

    def step(self, projected, states, recurrence):
        """One step of the cell's equations: what a subclass implements.

        Args:
            projected: The step's input projection, `x_t @ kernel + bias`
                (without `+ bias` when `bias_in_projection` is False), shape
                `(batch, len(gate_names) * units)`, gate blocks in the order
                of `gate_names`, in the state dtype. Input dropout is already
                applied to `x_t`.
            states: The previous states, a list in the order of
                `state_names`, in the state dtype.
            recurrence: A `Recurrence`: `recurrence(h)` is
                `h @ recurrent_kernel` with recurrent dropout on `h`,
                `recurrence(h, gates=("h",))` multiplies by some blocks only.

        Returns:
            `(output, new_states, intermediates)`: the step's output (usually
            `h_t`), the list of new states, and a dict of named intermediate
            values (the gates and states as the equations name them), which
            `gates` and `keras_seqcells.trace` report.
        """
        raise NotImplementedError(
            f"Expected {type(self).__name__} to implement `step(projected, states, recurrence)`."
        )

    def _run_step(self, inputs, states, training):
        x = ops.cast(ops.convert_to_tensor(inputs), self.compute_dtype)
        if len(x.shape) != 2:
            raise ValueError(
                f"Expected {type(self).__name__} step input of rank 2 (batch, input_dim). "
                f"Received: inputs.shape={tuple(x.shape)}"
            )
        states = self._check_states(states)
        incoming_dtypes = [s.dtype for s in states]
        states = [ops.cast(s, self.state_dtype) for s in states]
        if training and self.dropout > 0:
            x = x * ops.cast(self.get_dropout_mask(x), x.dtype)
        recurrence = self.recurrence(self._recurrent_mask(states[0], training))
        with variables_in_own_dtype():
            output, new_states, gates = self.step(
                self.project(x, *self.input_weights()), states, recurrence
            )
        new_states = [
            ops.cast(s, dtype) for s, dtype in zip(new_states, incoming_dtypes, strict=True)
        ]
        return ops.cast(output, self.compute_dtype), new_states, gates

    def _check_states(self, states, argument="states"):
        """Returns `states` as a list of tensors, checking their number and shapes."""
        if not isinstance(states, (list, tuple)):
            states = [states]
        states = [ops.convert_to_tensor(s) for s in states]
        sizes = self._state_sizes()
        received = [tuple(s.shape) for s in states]
        if len(states) != len(sizes) or any(
            len(shape) != 2 or shape[-1] not in (None, size)
            for shape, size in zip(received, sizes, strict=True)
        ):
            expected = [("batch", size) for size in sizes]
            raise ValueError(
                f"Expected `{argument}` of {type(self).__name__} to be {len(sizes)} tensor(s) "
                f"of shapes {expected}. Received: {argument} shapes={received}"
            )
        return states

    def _recurrent_mask(self, h, training):
        """The sequence's recurrent dropout mask on `h_{t-1}`, or None."""
        if training and self.recurrent_dropout > 0:
            return self.get_recurrent_dropout_mask(h)
        return None

    def input_weights(self):
        """`(kernel, bias)` as the steps use them: cast to the compute dtype.

        `bias` is None without a bias or when `bias_in_projection` is False.
        The layers read them once per sequence.
        """
        kernel = ops.cast(self.kernel, self.compute_dtype)
        bias = None
        if self.use_bias and self.bias_in_projection:
            bias = ops.cast(self.bias, self.compute_dtype)
        return kernel, bias

    def project(self, x, kernel, bias):
        """`x @ kernel + bias` (weights from `input_weights()`) in the state dtype."""
        z = ops.matmul(x, kernel)
        if bias is not None:
            z = z + bias
        return ops.cast(z, self.state_dtype)

    def recurrence(self, recurrent_mask=None):
        """The `Recurrence` of a sequence: the recurrent kernel cast once, and the mask."""
        kernel = None
        if self.recurrent_kernel is not None:
            kernel = ops.cast(self.recurrent_kernel, self.compute_dtype)
        return Recurrence(self, kernel, recurrent_mask)

    # --------------------------------------------------------- named weights
    def _named_slices(self):
        """Maps each document name to where it lives in the variables."""
        slices = {}
        units = self.units
        for block, gate in enumerate(self.gate_names):
            columns = slice(block * units, (block + 1) * units)
            slices[f"W_x{gate}"] = _NamedSlice(self.kernel, columns, transpose=True)
        for block, gate in enumerate(self._recurrent_blocks()):
            columns = slice(block * units, (block + 1) * units)
            slices[f"W_h{gate}"] = _NamedSlice(self.recurrent_kernel, columns, transpose=True)
        if self.use_bias:
            for block, gate in enumerate(self.gate_names):
                columns = slice(block * units, (block + 1) * units)
                slices[f"b_{gate}"] = _NamedSlice(self.bias, columns, transpose=False)
        for spec in getattr(self, "_extra_weights", ()):
            variable = getattr(self, spec.name)
            name = spec.document_name or spec.name
            if spec.gates is None:
                slices[name] = _NamedSlice(variable, slice(None), spec.transpose)
                continue
            for block, gate in enumerate(spec.gates):
                columns = slice(block * units, (block + 1) * units)
                slices[f"{name}_{gate}"] = _NamedSlice(variable, columns, spec.transpose)
        return slices

    def _require_built(self, method):
        if not self.built:
            raise ValueError(
                f"Expected a built {type(self).__name__} before calling `{method}()`; "
                "call the cell (or its RNN layer) on an input first. Received: an unbuilt cell"
            )

    def named_weights(self):
        """Returns the weights in the specification's names and orientation.

        Returns:
            A dict mapping names such as `"W_xi"` (shape `(units, input_dim)`),
            `"W_hi"` (shape `(units, units)`) and `"b_i"` (shape `(units,)`) to
            NumPy arrays (copies).
        """
        self._require_built("named_weights")
        return {name: where.read() for name, where in self._named_slices().items()}

    def set_named_weights(self, weights):
        """Sets weights given in the specification's names and orientation.

        Names not given keep their current values.

        Args:
            weights: a mapping from names (as returned by `named_weights()`) to
                array-likes of the documented shapes.

        Raises:
            ValueError: for an unknown name or a wrong shape, naming it.
        """
        self._require_built("set_named_weights")
        if not hasattr(weights, "items"):
            raise TypeError(
                "Expected `weights` to be a dict of name -> array. "
                f"Received: weights of type {type(weights).__name__}"
            )
        slices = self._named_slices()
        unknown = sorted(set(weights) - set(slices))
        if unknown:
            raise ValueError(
                f"Expected weight names among {sorted(slices)}. Received unknown name(s): {unknown}"
            )
        updated = {}
        for name, value in weights.items():
            where = slices[name]
            array = np.asarray(value)
            if array.shape != where.shape:
                raise ValueError(
                    f"Expected `{name}` of shape {where.shape}. Received: "
                    f"{name}.shape={array.shape}"
                )
            key = id(where.variable)
            if key not in updated:
                updated[key] = (
                    where.variable,
                    np.array(keras.ops.convert_to_numpy(where.variable)),
                )
            target = updated[key][1]
            target[..., where.columns] = array.T if where.transpose else array
        for variable, value in updated.values():
            variable.assign(value)

    # ----------------------------------------------------------------- config
    def get_config(self):
        config = {
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": keras.regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": keras.constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": keras.constraints.serialize(self.recurrent_constraint),
            "bias_constraint": keras.constraints.serialize(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}
