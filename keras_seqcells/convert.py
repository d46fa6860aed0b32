"""Exact conversion between keras_seqcells layers and Keras's built-in RNN layers.

`LSTM` and `SimpleRNN` (without the output head) share Keras's variables, so
their weights copy unchanged. `GRU` weights the new candidate with the update
gate where Keras weights the old state, so the update gate's kernel columns
and bias are negated (σ(-a) = 1 - σ(a)); Keras's reset-after GRU also keeps a
separate recurrent bias, whose update and reset parts add into the single
bias here and whose candidate part has no counterpart in the equations.
"""

import keras
import numpy as np

from keras_seqcells.layers import GRU, LSTM, SeqCellRNN, SimpleRNN

_PAIRS = (
    (keras.layers.SimpleRNN, SimpleRNN),
    (keras.layers.LSTM, LSTM),
    (keras.layers.GRU, GRU),
)


def from_keras(layer):
    """Returns the keras_seqcells layer computing exactly what `layer` computes.

    Args:
        layer: a `keras.layers.SimpleRNN`, `LSTM` or `GRU`. If it is built,
            its weights are converted too; if not, only its configuration.

    Returns:
        A `keras_seqcells.SimpleRNN`, `LSTM` or `GRU` with the same
        configuration (name included) and, when built, the same outputs.

    Raises:
        TypeError: if `layer` is not one of those Keras layers.
        ValueError: for a reset-after `keras.layers.GRU` with a non-zero
            recurrent bias of the candidate, which the specification's
            equations cannot express, or whose `recurrent_activation` does
            not satisfy f(-a) = 1 - f(a).

    Example:

    >>> keras_lstm = keras.layers.LSTM(8)
    >>> _ = keras_lstm(np.zeros((1, 5, 3)))
    >>> ours = keras_seqcells.from_keras(keras_lstm)
    """
    target = _counterpart(layer, keras_side=True)
    if target is GRU:
        _check_gate_symmetry(layer.cell.recurrent_activation)
    converted = target.from_config(layer.get_config())
    if layer.built:
        _build_like(converted, layer)
        weights = layer.get_weights()
        if target is GRU:
            weights = _gru_weights_from_keras(layer, weights)
        converted.set_weights(weights)
    return converted


def to_keras(layer):
    """Returns the built-in Keras layer computing exactly what `layer` computes.

    Args:
        layer: a `keras_seqcells.SimpleRNN` (without `output_units`), `LSTM`
            or `GRU`. If it is built, its weights are converted too.

    Returns:
        A `keras.layers.SimpleRNN`, `LSTM` or `GRU` with the same
        configuration and, when built, the same outputs. A GRU becomes a
        `keras.layers.GRU` with the same `reset_after` (and a zero recurrent
        bias when `reset_after=True`).

    Raises:
        TypeError: if `layer` is not one of those keras_seqcells layers.
        ValueError: for a `SimpleRNN` with an output head, which Keras's layer
            does not have, or a GRU whose `recurrent_activation` does not
            satisfy f(-a) = 1 - f(a).
    """
    target = _counterpart(layer, keras_side=False)
    config = layer.get_config()
    if isinstance(layer, SimpleRNN) and config.pop("output_units") is not None:
        raise ValueError(
            "Expected a SimpleRNN without an output head: keras.layers.SimpleRNN "
            f"has no softmax head. Received: output_units={layer.output_units}"
        )
    # Chrono initialisation only sets initial values; the weights carry over.
    config.pop("chrono_init", None)
    if target is keras.layers.GRU:
        _check_gate_symmetry(layer.cell.recurrent_activation)
    converted = target.from_config(config)
    if layer.built:
        _build_like(converted, layer)
        weights = layer.get_weights()
        if target is keras.layers.GRU:
            weights = _gru_weights_to_keras(layer, weights)
        converted.set_weights(weights)
    return converted


def _counterpart(layer, keras_side):
    for keras_class, our_class in _PAIRS:
        source, target = (keras_class, our_class) if keras_side else (our_class, keras_class)
        if isinstance(layer, source) and not (keras_side and isinstance(layer, SeqCellRNN)):
            return target
    expected = (
        "a keras.layers.SimpleRNN, LSTM or GRU"
        if keras_side
        else "a keras_seqcells.SimpleRNN, LSTM or GRU"
    )
    raise TypeError(f"Expected {expected}. Received: layer={layer!r}")


def _build_like(converted, source):
    input_dim = source.cell.kernel.shape[0]
    batch = source.states[0].shape[0] if source.stateful and source.states else None
    converted.build((batch, None, input_dim))


def _check_gate_symmetry(activation):
    """The update-gate negation is exact only if f(-a) = 1 - f(a)."""
    grid = keras.ops.convert_to_tensor(np.linspace(-8.0, 8.0, 33), "float32")
    f = keras.ops.convert_to_numpy(activation(grid))
    f_neg = keras.ops.convert_to_numpy(activation(-grid))
    # float32 rounding leaves ~1e-7; asymmetric activations miss by far more.
    if not np.allclose(f_neg, 1.0 - f, rtol=0.0, atol=1e-6):
        raise ValueError(
            "Expected a GRU `recurrent_activation` with f(-a) = 1 - f(a) (such as "
            "sigmoid or hard_sigmoid), so that the update-gate conventions map "
            "exactly. Received: recurrent_activation="
            f"{keras.activations.serialize(activation)}"
        )


def _negate_update_gate(array, units):
    """Negates the update gate's block (the first) along the last axis."""
    array = np.array(array, copy=True)
    array[..., :units] = -array[..., :units]
    return array


def _gru_weights_from_keras(layer, weights):
    cell = layer.cell
    units = cell.units
    kernel, recurrent_kernel, *bias = weights
    converted = [
        _negate_update_gate(kernel, units),
        _negate_update_gate(recurrent_kernel, units),
    ]
    if bias:
        (bias,) = bias
        if cell.reset_after:
            input_bias, recurrent_bias = bias
            candidate_bias = recurrent_bias[2 * units :]
            if np.any(candidate_bias != 0):
                raise ValueError(
                    "Expected a keras.layers.GRU(reset_after=True) whose recurrent bias of "
                    "the candidate (bias[1, 2*units:]) is zero: the specification's "
                    "reset-after candidate tanh(W_xh x + r * (W_hh h) + b_h) has no bias "
                    "inside the reset product, so it cannot be converted exactly. "
                    f"Received: max |bias[1, 2*units:]|={np.abs(candidate_bias).max()}"
                )
            bias = input_bias + np.concatenate([recurrent_bias[: 2 * units], candidate_bias])
        converted.append(_negate_update_gate(bias, units))
    return converted


def _gru_weights_to_keras(layer, weights):
    units = layer.cell.units
    kernel, recurrent_kernel, *bias = weights
    converted = [
        _negate_update_gate(kernel, units),
        _negate_update_gate(recurrent_kernel, units),
    ]
    if bias:
        bias = _negate_update_gate(bias[0], units)
        if layer.cell.reset_after:
            bias = np.stack([bias, np.zeros_like(bias)])
        converted.append(bias)
    return converted
