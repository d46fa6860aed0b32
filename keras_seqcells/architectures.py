"""Small model builders for the classic RNN types.

Each builder takes the cell name (`"simple_rnn"`, `"lstm"` or `"gru"`) and the
sizes, and returns an uncompiled `keras.Model` made only of Keras layers and
keras_seqcells layers, so that it saves and loads with
`keras.saving.load_model(path, safe_mode=True)`.
"""

import keras

from keras_seqcells._checks import check_optional_positive_int, check_positive_int
from keras_seqcells.layers import layer_for_cell


def _check_stateful(stateful, batch_size):
    check_optional_positive_int("batch_size", batch_size)
    if stateful and batch_size is None:
        raise ValueError(
            "Expected a fixed `batch_size` with `stateful=True` (the layer keeps one state "
            "per sequence of the batch). Received: batch_size=None"
        )


def one_to_one(cell, input_dim, units, output_dim, name="one_to_one"):
    """One-to-one model: one input vector, one step of the recurrent layer, one output.

    The input vector is reshaped into a sequence of a single step (T = 1), so
    the recurrent layer applies its cell once from the zero state: for a
    SimpleRNN, `h_1 = tanh(W_xh x_1 + b_h)`, the equivalent of a dense layer
    with a tanh activation. A `Dense` layer maps `h_1` to the output.

    Args:
        cell: One of `"simple_rnn"`, `"lstm"`, `"gru"` (`keras_seqcells.SimpleRNN`,
            `LSTM`, `GRU`).
        input_dim: Positive integer, the size of the input vector.
        units: Positive integer, the size of the recurrent state.
        output_dim: Positive integer, the size of the output vector.
        name: Name of the model.

    Returns:
        An uncompiled `keras.Model` mapping `(batch, input_dim)` to
        `(batch, output_dim)`.

    Example:

    >>> model = keras_seqcells.one_to_one("gru", input_dim=3, units=8, output_dim=2)
    >>> tuple(model(np.zeros((4, 3), "float32")).shape)
    (4, 2)
    """
    layer = layer_for_cell(cell)
    for arg, value in (("input_dim", input_dim), ("units", units), ("output_dim", output_dim)):
        check_positive_int(arg, value)
    inputs = keras.Input((input_dim,), name="inputs")
    x = keras.layers.Reshape((1, input_dim), name="one_step")(inputs)
    x = layer(units, name=cell)(x)
    outputs = keras.layers.Dense(output_dim, name="output")(x)
    return keras.Model(inputs, outputs, name=name)


def one_to_many(cell, input_dim, units, output_dim, output_steps, name="one_to_many"):
    """One-to-many model: one input vector, a sequence of `output_steps` outputs.

    The input vector is repeated at every step (`keras.layers.RepeatVector`)
    and fed to a recurrent layer with `return_sequences=True`; a `Dense`
    layer maps each step's state `h_t` to that step's output. This is the
    shape of a captioning or generation model conditioned on one vector.

    Args:
        cell: One of `"simple_rnn"`, `"lstm"`, `"gru"`.
        input_dim: Positive integer, the size of the input vector.
        units: Positive integer, the size of the recurrent state.
        output_dim: Positive integer, the size of each step's output.
        output_steps: Positive integer, the number of output steps.
        name: Name of the model.

    Returns:
        An uncompiled `keras.Model` mapping `(batch, input_dim)` to
        `(batch, output_steps, output_dim)`.

    Example:

    >>> model = keras_seqcells.one_to_many(
    ...     "lstm", input_dim=3, units=8, output_dim=2, output_steps=5
    ... )
    >>> tuple(model(np.zeros((4, 3), "float32")).shape)
    (4, 5, 2)
    """
    layer = layer_for_cell(cell)
    for arg, value in (
        ("input_dim", input_dim),
        ("units", units),
        ("output_dim", output_dim),
        ("output_steps", output_steps),
    ):
        check_positive_int(arg, value)
    inputs = keras.Input((input_dim,), name="inputs")
    x = keras.layers.RepeatVector(output_steps, name="repeat")(inputs)
    x = layer(units, return_sequences=True, name=cell)(x)
    outputs = keras.layers.Dense(output_dim, name="output")(x)
    return keras.Model(inputs, outputs, name=name)


def many_to_one(
    cell,
    input_dim,
    units,
    output_dim,
    timesteps=None,
    stateful=False,
    batch_size=None,
    name="many_to_one",
):
    """Many-to-one model: a sequence in, one output for the whole sequence.

    The recurrent layer reads the sequence and a `Dense` layer maps its last
    state `h_T` to the output (sequence classification, one-step forecasting).

    Args:
        cell: One of `"simple_rnn"`, `"lstm"`, `"gru"`.
        input_dim: Positive integer, the number of features per step.
        units: Positive integer, the size of the recurrent state.
        output_dim: Positive integer, the size of the output.
        timesteps: Positive integer, or `None` (the default) for sequences of
            any length.
        stateful: Boolean, whether the recurrent layer keeps its last state
            as the initial state of the next batch (see
            `keras_seqcells.tbptt`). Requires `batch_size`.
        batch_size: Positive integer or `None`, the fixed batch size of the
            input (required with `stateful=True`).
        name: Name of the model.

    Returns:
        An uncompiled `keras.Model` mapping `(batch, timesteps, input_dim)`
        to `(batch, output_dim)`.

    Example:

    >>> model = keras_seqcells.many_to_one("simple_rnn", input_dim=3, units=8, output_dim=2)
    >>> tuple(model(np.zeros((4, 7, 3), "float32")).shape)
    (4, 2)
    """
    layer = layer_for_cell(cell)
    for arg, value in (("input_dim", input_dim), ("units", units), ("output_dim", output_dim)):
        check_positive_int(arg, value)
    check_optional_positive_int("timesteps", timesteps)
    _check_stateful(stateful, batch_size)
    inputs = keras.Input((timesteps, input_dim), batch_size=batch_size, name="inputs")
    x = layer(units, stateful=stateful, name=cell)(inputs)
    outputs = keras.layers.Dense(output_dim, name="output")(x)
    return keras.Model(inputs, outputs, name=name)


def many_to_many(
    cell,
    input_dim,
    units,
    output_dim,
    timesteps=None,
    stateful=False,
    batch_size=None,
    name="many_to_many",
):
    """Aligned many-to-many model: one output per input step.

    The recurrent layer returns every step's state (`return_sequences=True`)
    and a `Dense` layer maps each `h_t` to the output of step t (tagging,
    language modelling, sequence-to-sequence forecasting of equal length).

    Args:
        cell: One of `"simple_rnn"`, `"lstm"`, `"gru"`.
        input_dim: Positive integer, the number of features per step.
        units: Positive integer, the size of the recurrent state.
        output_dim: Positive integer, the size of each step's output.
        timesteps: Positive integer, or `None` (the default) for sequences of
            any length.
        stateful: Boolean, whether the recurrent layer keeps its last state
            as the initial state of the next batch, as truncated
            backpropagation through time needs (see `keras_seqcells.tbptt`).
            Requires `batch_size`.
        batch_size: Positive integer or `None`, the fixed batch size of the
            input (required with `stateful=True`).
        name: Name of the model.

    Returns:
        An uncompiled `keras.Model` mapping `(batch, timesteps, input_dim)`
        to `(batch, timesteps, output_dim)`.

    Example:

    >>> model = keras_seqcells.many_to_many("gru", input_dim=3, units=8, output_dim=2)
    >>> tuple(model(np.zeros((4, 7, 3), "float32")).shape)
    (4, 7, 2)
    """
    layer = layer_for_cell(cell)
    for arg, value in (("input_dim", input_dim), ("units", units), ("output_dim", output_dim)):
        check_positive_int(arg, value)
    check_optional_positive_int("timesteps", timesteps)
    _check_stateful(stateful, batch_size)
    inputs = keras.Input((timesteps, input_dim), batch_size=batch_size, name="inputs")
    x = layer(units, return_sequences=True, stateful=stateful, name=cell)(inputs)
    outputs = keras.layers.Dense(output_dim, name="output")(x)
    return keras.Model(inputs, outputs, name=name)


def encoder_decoder(
    cell,
    source_dim,
    target_dim,
    units,
    output_dim,
    source_steps=None,
    target_steps=None,
    name="encoder_decoder",
):
    """Encoder-decoder (sequence-to-sequence) model of unaligned sequences.

    An encoder recurrent layer reads the source sequence and returns its final
    state (`[h_T]`, or `[h_T, C_T]` for an LSTM); a decoder recurrent layer of
    the same cell starts from that state (`initial_state=`) and reads the
    decoder input sequence (in training, the target sequence shifted by one
    step: teacher forcing). A `Dense` layer maps each decoder state to that
    step's output. The source and target lengths may differ.

    Args:
        cell: One of `"simple_rnn"`, `"lstm"`, `"gru"`.
        source_dim: Positive integer, the number of features per source step.
        target_dim: Positive integer, the number of features per decoder
            input step.
        units: Positive integer, the size of both recurrent states.
        output_dim: Positive integer, the size of each output step.
        source_steps: Positive integer or `None` (any length), the source
            length.
        target_steps: Positive integer or `None` (any length), the decoder
            length.
        name: Name of the model.

    Returns:
        An uncompiled `keras.Model` with two inputs, the source
        `(batch, source_steps, source_dim)` and the decoder input
        `(batch, target_steps, target_dim)`, and the output
        `(batch, target_steps, output_dim)`.

    Example:

    >>> model = keras_seqcells.encoder_decoder(
    ...     "lstm", source_dim=3, target_dim=2, units=8, output_dim=5
    ... )
    >>> source = np.zeros((4, 7, 3), "float32")
    >>> decoder_inputs = np.zeros((4, 6, 2), "float32")
    >>> tuple(model([source, decoder_inputs]).shape)
    (4, 6, 5)
    """
    layer = layer_for_cell(cell)
    for arg, value in (
        ("source_dim", source_dim),
        ("target_dim", target_dim),
        ("units", units),
        ("output_dim", output_dim),
    ):
        check_positive_int(arg, value)
    check_optional_positive_int("source_steps", source_steps)
    check_optional_positive_int("target_steps", target_steps)
    source = keras.Input((source_steps, source_dim), name="source")
    decoder_inputs = keras.Input((target_steps, target_dim), name="decoder_inputs")
    _, *state = layer(units, return_state=True, name="encoder")(source)
    x = layer(units, return_sequences=True, name="decoder")(decoder_inputs, initial_state=state)
    outputs = keras.layers.Dense(output_dim, name="output")(x)
    return keras.Model([source, decoder_inputs], outputs, name=name)
