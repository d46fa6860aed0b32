"""Truncated backpropagation through time (TBPTT) with stateful recurrent layers.

A long batch of sequences `(batch, T, features)` is split into consecutive
chunks of `chunk_length` steps. A model whose recurrent layers are
`stateful=True` runs the chunks in order: each chunk starts from the state the
previous chunk ended in, so the forward pass equals one run over the whole
sequence, while the gradient of each training step flows back only through
its own chunk (at most `chunk_length` steps). The states are reset to zero at
the start of every pass over the data.

Example:

>>> import keras_seqcells.tbptt as tbptt
>>> model = keras_seqcells.many_to_many(
...     "gru", input_dim=1, units=8, output_dim=1, stateful=True, batch_size=4
... )
>>> model.compile(optimizer="adam", loss="mse")
>>> x = np.random.rand(4, 60, 1).astype("float32")
>>> history = tbptt.fit_truncated_bptt(model, x, x, chunk_length=20, epochs=2)
>>> len(history["loss"])
2
"""

import keras
import numpy as np

from keras_seqcells._checks import check_positive_int
from keras_seqcells.stepping import recurrent_layers


def _check_chunk_length(chunk_length, timesteps):
    check_positive_int("chunk_length", chunk_length)
    if timesteps % chunk_length:
        raise ValueError(
            f"Expected `chunk_length` to divide the number of timesteps ({timesteps}); pad or "
            f"trim the sequences to a multiple of it. Received: chunk_length={chunk_length}"
        )


def _check_sequences(name, value, batch=None, timesteps=None):
    value = np.asarray(value)
    if value.ndim < 3 or 0 in value.shape[:2]:
        raise ValueError(
            f"Expected `{name}` of shape (batch, timesteps, ...) with batch and timesteps > 0. "
            f"Received: {name}.shape={value.shape}"
        )
    if batch is not None and value.shape[:2] != (batch, timesteps):
        raise ValueError(
            f"Expected `{name}` with the batch size and timesteps of `x` ({batch}, {timesteps}). "
            f"Received: {name}.shape={value.shape}"
        )
    return value


def truncated_bptt_chunks(x, y=None, chunk_length=None):
    """Splits sequences into consecutive chunks of `chunk_length` steps.

    Args:
        x: Array of shape `(batch, timesteps, ...)`.
        y: Optional array of step-aligned targets, `(batch, timesteps, ...)`.
        chunk_length: Positive integer that divides `timesteps` (pad or trim
            the sequences to a multiple of it first).

    Returns:
        A list of `timesteps // chunk_length` chunks in time order: arrays
        `x[:, k * chunk_length:(k + 1) * chunk_length]`, or `(x_chunk, y_chunk)`
        pairs when `y` is given.

    Example:

    >>> from keras_seqcells.tbptt import truncated_bptt_chunks
    >>> chunks = truncated_bptt_chunks(np.zeros((2, 12, 3)), chunk_length=4)
    >>> len(chunks), chunks[0].shape
    (3, (2, 4, 3))
    """
    x = _check_sequences("x", x)
    batch, timesteps = x.shape[:2]
    _check_chunk_length(chunk_length, timesteps)
    if y is not None:
        y = _check_sequences("y", y, batch, timesteps)
    chunks = []
    for start in range(0, timesteps, chunk_length):
        window = slice(start, start + chunk_length)
        chunks.append(x[:, window] if y is None else (x[:, window], y[:, window]))
    return chunks


def _check_stateful_model(model, batch):
    layers = [found.layer for found in recurrent_layers(model, any_cell=True)]
    not_stateful = [layer.name for layer in layers if not layer.stateful]
    if not layers or not_stateful:
        raise ValueError(
            "Expected a model whose recurrent layers are all `stateful=True` (with a fixed "
            "batch size). Received: model with "
            + (f"non-stateful recurrent layers={not_stateful}" if layers else "no recurrent layer")
        )
    expected = model.inputs[0].shape[0] if getattr(model, "inputs", None) else None
    if expected is not None and expected != batch:
        raise ValueError(
            f"Expected `x` with the model's fixed batch size ({expected}). "
            f"Received: x.shape[0]={batch}"
        )
    return layers


def reset_states(model):
    """Resets the state of every recurrent layer of `model` to zeros.

    Args:
        model: A Keras layer or model with stateful recurrent layers.

    Returns:
        The list of the layers reset.
    """
    layers = [
        found.layer for found in recurrent_layers(model, any_cell=True) if found.layer.stateful
    ]
    for layer in layers:
        layer.reset_state()
    return layers


def predict_truncated_bptt(model, x, chunk_length):
    """Runs a stateful model over `x` chunk by chunk, carrying the state.

    The states are reset first, so the result equals one run of the
    non-stateful model over the whole sequences.

    Args:
        model: A `keras.Model` whose recurrent layers are `stateful=True`
            with the batch size of `x`.
        x: Array of shape `(batch, timesteps, features)`.
        chunk_length: Positive integer that divides `timesteps`.

    Returns:
        The outputs of the chunks, concatenated along the time axis when they
        have one (`(batch, timesteps, ...)`), otherwise the last chunk's
        output (the state after the whole sequence, many-to-one).
    """
    x = _check_sequences("x", x)
    chunks = truncated_bptt_chunks(x, chunk_length=chunk_length)
    _check_stateful_model(model, x.shape[0])
    reset_states(model)
    outputs = [keras.ops.convert_to_numpy(model.predict_on_batch(chunk)) for chunk in chunks]
    if outputs[0].ndim >= 3 and outputs[0].shape[1] == chunk_length:
        return np.concatenate(outputs, axis=1)
    return outputs[-1]


def fit_truncated_bptt(model, x, y, chunk_length, epochs=1, verbose=0):
    """Trains a stateful model with truncated backpropagation through time.

    Each epoch resets the recurrent states, then takes one training step
    (`model.train_on_batch`) per chunk of `chunk_length` steps, in time
    order: the state carries over from chunk to chunk, the gradient does not.

    Args:
        model: A compiled `keras.Model` whose recurrent layers are
            `stateful=True` with the batch size of `x` (see
            `keras_seqcells.many_to_many(..., stateful=True, batch_size=...)`).
        x: Array of shape `(batch, timesteps, features)`.
        y: Step-aligned targets of shape `(batch, timesteps, ...)`.
        chunk_length: Positive integer that divides `timesteps`.
        epochs: Positive integer, the number of passes over the data.
        verbose: If true, prints each epoch's mean metrics.

    Returns:
        A dict mapping each metric name (such as `"loss"`) to its per-epoch
        values, each the mean over the epoch's chunks.
    """
    x = _check_sequences("x", x)
    chunks = truncated_bptt_chunks(x, y, chunk_length)
    check_positive_int("epochs", epochs)
    _check_stateful_model(model, x.shape[0])
    if getattr(model, "optimizer", None) is None:
        raise ValueError(
            "Expected a compiled model (call `model.compile(optimizer, loss)` first). "
            "Received: model.optimizer=None"
        )
    history = {}
    for epoch in range(epochs):
        reset_states(model)
        logs = [model.train_on_batch(xc, yc, return_dict=True) for xc, yc in chunks]
        for key in logs[0]:
            history.setdefault(key, []).append(float(np.mean([log[key] for log in logs])))
        if verbose:
            summary = ", ".join(f"{key}={values[-1]:.4g}" for key, values in history.items())
            print(f"epoch {epoch + 1}/{epochs}: {summary}")
    return history
