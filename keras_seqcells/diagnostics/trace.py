"""Per-step gate values of a recurrent layer, and of every recurrent layer of a model."""

import keras
import numpy as np
from keras import ops

from keras_seqcells.stepping import (
    find_layers,
    is_recurrent,
    layer_names,
    recurrent_layers,
    run_steps,
)


def trace(layer, inputs, initial_state=None):
    """Runs an RNN layer step by step and returns every step's gate values.

    Args:
        layer: a `keras.layers.RNN` (such as `keras_seqcells.LSTM`, or
            `keras.layers.RNN(keras_seqcells.GRUCell(...))`) whose cell is a
            keras_seqcells cell. An unbuilt layer is built on `inputs`.
        inputs: array of shape `(batch, timesteps, input_dim)`.
        initial_state: optional list of initial states, as for the layer;
            zeros by default.

    Returns:
        A dict mapping the names of the intermediate values the cell's
        `step` reports (LSTM: `"i"`, `"f"`, `"c_tilde"`, `"c"`, `"o"`, `"h"`;
        GRU: `"z"`, `"r"`, `"h_tilde"`, `"h"`; SimpleRNN: `"h"`, and `"y"`
        with an output head; see each cell's docstring) to NumPy
        arrays of shape `(batch, timesteps, units)` (`output_units` for
        `"y"`), in the order the layer processes the steps (reversed when
        `go_backwards=True`, like the layer's own sequence output). Dropout is
        not applied.

    Example:

    >>> layer = keras_seqcells.LSTM(4)
    >>> gates = keras_seqcells.trace(layer, np.random.random((2, 7, 3)))
    >>> gates["f"].shape
    (2, 7, 4)
    """
    if not is_recurrent(layer):
        raise TypeError(
            "Expected `layer` to be a keras.layers.RNN on a keras_seqcells cell. "
            f"Received: layer={layer!r}"
        )
    inputs = ops.convert_to_tensor(inputs, dtype=layer.compute_dtype)
    if len(inputs.shape) != 3:
        raise ValueError(
            "Expected `inputs` of rank 3 (batch, timesteps, input_dim). "
            f"Received: inputs.shape={tuple(inputs.shape)}"
        )
    if not layer.built:
        layer.build(inputs.shape)
    cell = layer.cell
    if initial_state is None:
        states = cell.get_initial_state(ops.shape(inputs)[0])
    else:
        states = cell._check_states(initial_state, argument="initial_state")
    *_, intermediates = run_steps(layer, inputs, states)
    return {
        name: np.stack([ops.convert_to_numpy(value) for value in values], axis=1)
        for name, values in intermediates.items()
    }


def text_vectorizer(model):
    """The model's `keras.layers.TextVectorization` layer, or None if it has none."""
    found = find_layers(model, keras.layers.TextVectorization)
    return found[0] if found else None


def model_example(model, inputs):
    """One example as the model takes it, with a batch axis of 1.

    Args:
        model: A `keras.Model` with one input.
        inputs: A string for a model on raw text; else an array of the
            steps, `(timesteps, features)` (or `(timesteps,)` for one
            feature, or token ids for a model on token ids).

    Returns:
        A NumPy array: `[text]` for a model on text, else the steps with a
        batch axis (int32 for a model on integer ids, else float32).
    """
    if isinstance(inputs, str):
        if not inputs.strip():
            raise ValueError(f"Expected a non-empty input text. Received: inputs={inputs!r}")
        if model.inputs[0].dtype != "string":
            raise ValueError(
                "Expected numbers for a model whose input is "
                f"{model.inputs[0].dtype}, not text. Received: inputs={inputs!r}"
            )
        return np.array([inputs])
    dtype = "int32" if "int" in str(model.inputs[0].dtype) else "float32"
    array = np.asarray(inputs, dtype=dtype)
    if array.size == 0:
        raise ValueError(f"Expected a non-empty input sequence. Received: inputs={inputs!r}")
    expected = model.inputs[0].shape
    if array.ndim == len(expected) - 2 and expected[-1] == 1:
        array = array[..., None]
    if array.ndim == len(expected) - 1:
        array = array[None]
    if array.ndim != len(expected) or any(
        size is not None and size != given
        for size, given in zip(expected[1:], array.shape[1:], strict=True)
    ):
        raise ValueError(
            f"Expected one input of shape {tuple(expected[1:])}. "
            f"Received: inputs.shape={np.shape(inputs)}"
        )
    return array[:1]


def trace_model(model, inputs):
    """Traces every keras_seqcells recurrent layer of a model on one input.

    For each recurrent layer, a sub-model from the model's input to that
    layer's input computes what reaches it (its sequence and, when the model
    masks padding, its mask); `keras_seqcells.trace` then runs the layer on
    the unmasked steps, which is exactly what the masked layer computes.

    Args:
        model: a built `keras.Model` with one input (such as a saved task
            model) containing keras_seqcells recurrent layers, possibly
            wrapped in `keras.layers.Bidirectional` or stacked.
        inputs: one example: a string for a model on raw text, or an array of
            shape `(timesteps, features)` (or `(timesteps,)` for one feature).

    Returns:
        A list with one dict per recurrent layer (each direction of a
        bidirectional one): `"name"`, `"gates"` (gate name to a NumPy array of
        shape `(units, steps)`, steps in input order even for a backward
        layer), `"labels"` (one label per step: the token from the model's
        `TextVectorization` vocabulary when there is one, else the step
        number), `"steps"` (the positions of the traced steps in the
        sequence reaching the layer: the unmasked ones) and `"length"` (that
        sequence's length).

    Raises:
        ValueError: if the model has no keras_seqcells recurrent layer, or
            for an empty input.
    """
    layers = recurrent_layers(model)
    if not layers:
        raise ValueError(
            "Expected a model with at least one keras_seqcells recurrent layer (SimpleRNN, "
            "LSTM or GRU, possibly inside Bidirectional). Received: model "
            f"{model.name!r} with layers {layer_names(model)}"
        )
    if len(model.inputs) != 1:
        raise ValueError(
            "Expected a model with one input. Received: model "
            f"{model.name!r} with {len(model.inputs)} inputs"
        )
    example = model_example(model, inputs)
    vectorizer = text_vectorizer(model)
    tokens = None
    if vectorizer is not None and isinstance(inputs, str):
        vocabulary = np.array(vectorizer.get_vocabulary())
        ids = ops.convert_to_numpy(vectorizer(example))[0]
        tokens = [str(word) or "[pad]" for word in vocabulary[ids]]

    results = []
    feeds = {}
    for name, rnn, outer in layers:
        if id(outer) not in feeds:
            node_inputs = outer.input if isinstance(outer.input, list) else [outer.input]
            sequences = node_inputs[0]
            masks = [
                t
                for t in node_inputs[1:]
                if t.dtype == "bool" and len(t.shape) == len(sequences.shape) - 1
            ]
            sub_model = keras.Model(model.inputs[0], [sequences, *masks[:1]])
            outputs = sub_model(example, training=False)
            outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
            values = ops.convert_to_numpy(outputs[0])
            rows, length = values.shape[:2]
            unmasked = np.ones((rows, length), dtype=bool)
            if len(outputs) > 1:
                unmasked = ops.convert_to_numpy(outputs[1]).astype(bool)
            # A classifier reading a long text in chunks feeds the layer one row
            # per chunk: each row is traced on its own, the steps joined in order.
            pieces = []
            for row in range(rows):
                row_steps = np.flatnonzero(unmasked[row])
                if len(row_steps):
                    pieces.append((values[row : row + 1, row_steps], row_steps + row * length))
            feeds[id(outer)] = (pieces, rows * length, length)
        pieces, total_steps, length = feeds[id(outer)]
        if not pieces:
            raise ValueError(
                f"Expected at least one unmasked step reaching layer {name!r}. "
                f"Received: inputs={inputs!r}, all of whose steps are masked"
            )
        traced = []
        for piece, _ in pieces:
            piece_gates = trace(rnn, piece)
            if rnn.go_backwards:
                piece_gates = {gate: array[:, ::-1] for gate, array in piece_gates.items()}
            traced.append(piece_gates)
        gates = {gate: np.concatenate([g[gate] for g in traced], axis=1) for gate in traced[0]}
        steps = np.concatenate([positions for _, positions in pieces])
        if tokens is not None and len(tokens) == total_steps:
            labels = [tokens[step] for step in steps]
        else:
            labels = [str(step + 1) for step in steps]
        results.append(
            {
                "name": name,
                "gates": {gate: array[0].T for gate, array in gates.items()},
                "labels": labels,
                "steps": steps.tolist(),
                "length": total_steps,
            }
        )
    return results
