"""Machinery shared by the SimpleRNN, LSTM and GRU cells.

Every cell stores its weights in Keras's fused layout: `kernel` of shape
`(input_dim, n_blocks * units)`, `recurrent_kernel` of shape
`(units, n_blocks * units)` and `bias` of shape `(n_blocks * units,)`, with one
column block per gate in the order given by the cell's `gate_names`. The
equations of the specification use the "document orientation" (matrices act
on column vectors), so the named weight `W_x<g>` is the transpose of the
kernel block of gate `<g>`.
"""

import numbers
from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

# `keras.layers.RNN` recognises cells that need one dropout mask per sequence
# (rather than one per step) by this mixin: it prepares the masks before the
# loop and clears them after it. Inheriting it is how a cell joins that
# protocol, so that dropout behaves like the built-in cells on every backend.
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

from keras_seqcells._checks import (
    check_bool,
    check_optional_int,
    check_positive_int,
    check_rate,
    get_activation,
    get_constraint,
    get_initializer,
    get_regularizer,
)

# Re-exported: the tasks import these checks from here.
__all__ = ["RecurrentCell", "check_positive_int", "check_rate", "get_activation"]

_MIXED_COMPUTE_DTYPES = ("float16", "bfloat16")


def check_chrono_init(chrono_init, use_bias):
    """Returns `chrono_init` if it is None or a number above 2, else raises."""
    if chrono_init is None:
        return None
    if isinstance(chrono_init, (bool, np.bool_)) or not isinstance(chrono_init, numbers.Real):
        raise TypeError(
            "Expected `chrono_init` to be None or a number T_max > 2. "
            f"Received: chrono_init={chrono_init!r}"
        )
    if not chrono_init > 2:
        raise ValueError(
            "Expected `chrono_init` to be None or a number T_max > 2. "
            f"Received: chrono_init={chrono_init}"
        )
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
    """Base class of the keras_seqcells cells.

    Subclasses set `gate_names` (one fused column block per gate, in Keras's
    order) and implement `_recurrent_step(projected, states, recurrent_mask,
    recurrent_kernel)`: one step from the step's input projection
    `x_t @ kernel + bias`, returning the step's output, the new states and a
    dict of the step's intermediate tensors in the specification's names. The
    cell's own `call` (through `_step`) and the layers' fast path both run
    that method, so it is the one place a cell's equations live. A subclass
    with more than one state overrides `state_size`; one whose bias
    initialisation differs per gate overrides `_fused_bias_initializer`.
    Everything else (argument checks, weight creation, dtype handling,
    dropout masks, named weights, configuration) is shared.

    Under a mixed precision policy the matrix products run in the compute
    dtype (float16/bfloat16) while the gates, the states and the output head
    are computed in float32, the dtype of the variables. States are returned
    in the dtype they arrived in, so the cell works inside the generic
    `keras.layers.RNN` loop; the keras_seqcells layers feed float32 states.
    """

    gate_names = ()

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
        return self.units

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

    # ------------------------------------------------------------------ build
    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(
                f"Expected {type(self).__name__} input of shape (batch, input_dim) with a "
                f"known input_dim. Received: input_shape={input_shape}"
            )
        blocks = len(self.gate_names) * self.units
        self.kernel = self.add_weight(
            shape=(input_shape[-1], blocks),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, blocks),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(blocks,),
                name="bias",
                initializer=self._fused_bias_initializer(),
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None

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
            A dict mapping the specification's names (e.g. `"i"`, `"f"`,
            `"c_tilde"`) to tensors of shape `(batch, units)` in the state
            dtype. Dropout is not applied.
        """
        if not self.built:
            self.build(tuple(ops.shape(x_t)))
        _, _, gates = self._run_step(x_t, states, training=False)
        return gates

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
        output, new_states, gates = self._step(x, states, training)
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

    def _recurrent_input(self, h, recurrent_mask):
        """The previous hidden state as it enters the recurrent products."""
        if recurrent_mask is not None:
            h = h * ops.cast(recurrent_mask, h.dtype)
        return ops.cast(h, self.compute_dtype)

    def _input_projection(self, x):
        """`x @ kernel + bias` in the compute dtype, all gate blocks fused."""
        return self._project_inputs(x, *self._loop_input_weights())

    def _loop_input_weights(self):
        """`(kernel, bias)` cast to the compute dtype (`bias` None without bias)."""
        kernel = ops.cast(self.kernel, self.compute_dtype)
        bias = ops.cast(self.bias, self.compute_dtype) if self.use_bias else None
        return kernel, bias

    @staticmethod
    def _project_inputs(x, kernel, bias):
        """`x @ kernel + bias` with weights from `_loop_input_weights()`."""
        z = ops.matmul(x, kernel)
        if bias is not None:
            z = z + bias
        return z

    def _recurrent_projection(self, h, recurrent_kernel, columns=None):
        """`h @ recurrent_kernel[:, columns]`; the kernel is in the compute dtype."""
        if columns is not None:
            recurrent_kernel = recurrent_kernel[:, columns]
        return ops.matmul(h, recurrent_kernel)

    def _loop_recurrent_kernel(self):
        """The recurrent kernel as the steps use it: cast to the compute dtype."""
        return ops.cast(self.recurrent_kernel, self.compute_dtype)

    def _to_state(self, x):
        return ops.cast(x, self.state_dtype)

    def _step(self, x, states, training):
        """One step from the (dropped-out) input `x`: the input projection, then
        `_recurrent_step`."""
        recurrent_mask = self._recurrent_mask(states[0], training)
        return self._recurrent_step(
            self._input_projection(x), states, recurrent_mask, self._loop_recurrent_kernel()
        )

    def _recurrent_step(self, projected, states, recurrent_mask, recurrent_kernel):
        """One step from the input projection `x @ kernel + bias`.

        Args:
            projected: `self._input_projection(x)` for the step, shape
                `(batch, n_blocks * units)` in the compute dtype. The layers'
                fast path computes it inside the loop, one step at a time,
                with the kernel and bias read and cast once before the loop.
            states: the previous states, in the state dtype.
            recurrent_mask: the recurrent dropout mask on `h_{t-1}`, or None.
            recurrent_kernel: `self._loop_recurrent_kernel()`, read once
                before the loop by the layers' fast path.

        Returns:
            `(output, new_states, gates)` as described in the class docstring.
        """
        raise NotImplementedError

    # --------------------------------------------------------- named weights
    def _named_slices(self):
        """Maps each document name to where it lives in the fused variables."""
        slices = {}
        for block, gate in enumerate(self.gate_names):
            columns = slice(block * self.units, (block + 1) * self.units)
            slices[f"W_x{gate}"] = _NamedSlice(self.kernel, columns, transpose=True)
            slices[f"W_h{gate}"] = _NamedSlice(self.recurrent_kernel, columns, transpose=True)
            if self.use_bias:
                slices[f"b_{gate}"] = _NamedSlice(self.bias, columns, transpose=False)
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
