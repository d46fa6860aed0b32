"""LiteRT (TensorFlow Lite) export with built-in operations only.

`export_litert` writes a `.tflite` file that any LiteRT interpreter runs
without the Flex delegate (no `SELECT_TF_OPS`): the cells' equations are
matrix products, additions, sigmoids, tanhs and products, all of them
built-in operations, once the loop over time is taken apart.

Two forms:

- The whole-sequence model (the default): a fixed batch size and a fixed
  number of steps; the recurrent layers run with their step loop unrolled
  in Python, so the graph holds no `WHILE`; the weights are constants of
  the graph (see `_with_constant_weights`), so it reads no variable.
- The streaming step model (`streaming=True`): one time step, the recurrent
  states as explicit inputs and outputs, built from
  `keras_seqcells.stepping.ModelStepper` (the core of the SavedModel `step`
  signature). A stateful model exports this form: its states become inputs.

Why unrolled rather than a `tf.while_loop`: with constant weights, both
convert to built-in operations and both match the Keras model to 1e-7. The
unrolled graph measured 4-9 times faster on the LiteRT CPU runtime (an LSTM
and a GRU of 32 units over 50 steps: 0.10-0.12 ms against 0.8-0.9 ms per
call; the XNNPACK delegate takes the whole unrolled graph but no `WHILE`
body), at the price of a file and a conversion time that grow with the
number of steps (132 KB against 39 KB for the LSTM above; 2.5 s against 0.4 s
to convert).

Text preprocessing stays outside the file: for a model whose input is text
(a `TextVectorization` layer, and the tagger's `TokenFeatureHashing`
spelling features) or a next-word model (a `Vocabulary` layer), the file
takes token ids (and feature ids), and what a client needs to make them is
written beside it: the vocabulary and settings as JSON
(`<name>.vocabulary.json`) and a standalone preprocessing module
(`<name>.preprocess.py`); see `keras_seqcells.text_export`, which the ONNX
export shares.

TensorFlow Lite's fused `UNIDIRECTIONAL_SEQUENCE_LSTM` is emitted on request
(`fused_lstm=True`): the converter fuses a function with the interface of
tf.keras 2's `standard_lstm` and the attribute `api_implements="lstm_<id>"`,
which Keras 3's layers no longer produce; this module traces such a
function for each LSTM layer whose equations the fused kernel computes
(`_fusable_lstm`, unmasked calls). The converter reads it only when the
weights reach it as constants, not as variables. An LSTM of 32 units over
50 steps is then a 27 KB file running in 0.05 ms (built-in kernels; the
XNNPACK delegate does not take it). It is not the default because the
fused kernel clips the cell state to [-10, 10] (the converter sets
`cell_clip=10`), which the equations do not.
"""

import contextlib
import os
import pathlib
import uuid

import keras
import numpy as np

from keras_seqcells import text_export
from keras_seqcells._keras_internals import plain_tensorflow_adds
from keras_seqcells.cells import LSTMCell
from keras_seqcells.layers import portable_graphs
from keras_seqcells.stepping import (
    ModelStepper,
    StateHook,
    is_recurrent,
    recurrent_layers,
    state_hooks,
)

#: What `quantize=` accepts.
QUANTIZE_MODES = (None, "float16", "int8")
#: The suffix of the vocabulary file written beside a text model's `.tflite` file.
VOCABULARY_SUFFIX = text_export.VOCABULARY_SUFFIX


def export_litert(
    model,
    path,
    streaming=False,
    sequence_length=None,
    quantize=None,
    overwrite=False,
    batch_size=1,
    fused_lstm=False,
):
    """Writes `model` as a LiteRT (`.tflite`) file of built-in operations only.

    The whole-sequence form takes the model's input with a fixed batch size
    and number of steps and answers as the model does. It supports the
    keras_seqcells recurrent layers (`go_backwards`, `return_sequences`
    both ways, stacked layers, `keras.layers.Bidirectional`), masking from
    an `Embedding(mask_zero=True)` (a masked step keeps the states, as in
    Keras), and the layers around them that convert to built-in operations
    (`Embedding`, `Dense`, `TimeDistributed`, dropout, normalisation, ...).

    The streaming form (`streaming=True`) runs one time step: its inputs are
    the step's input and the recurrent states (named as
    `ModelStepper.state_names`: `state_h`, `state_c`, or
    `<layer>_state_h` with several recurrent layers), its outputs the
    model's output for the step and the new states under the same names. A
    new sequence starts from zero states. It needs a model that can run
    step by step (see `keras_seqcells.stepping.ModelStepper`): no
    bidirectional layer, `go_backwards` or masking.

    Refused: a stateful model in the whole-sequence form (export its step
    model with `streaming=True`), a model whose text input is read by other
    layers than one `TextVectorization` and `TokenFeatureHashing` layers,
    and any operation the converter cannot express with built-in operations
    (the converter's error is raised).

    Text models take token ids: a `TextVectorization` front end (and the
    tagger's `TokenFeatureHashing` spelling features, whose ids become the
    inputs `<feature>_ids`) is left out of the file, and its vocabulary,
    settings, the spelling features and the labels of the output layer (if
    it names them) are written to `<name>.vocabulary.json` beside the
    `.tflite` file, with `<name>.preprocess.py`, a module importing only
    numpy that turns raw texts into the file's inputs (`TextPreprocessor`);
    so are the vocabulary and tokeniser of a next-word model.

    Args:
        model: A Keras model on the TensorFlow backend.
        path: The file to write, ending in `.tflite`.
        streaming: Whether to export the one-step model (True) or the
            whole-sequence model (False, the default).
        sequence_length: The number of steps of the whole-sequence model;
            taken from the model's input shape (or its `TextVectorization`'s
            `output_sequence_length`) when the model fixes it, and then
            optional. Not used with `streaming=True`.
        quantize: None (float32, the default), `"float16"` (weights stored
            as float16, computed in float32) or `"int8"` (dynamic-range
            quantisation: int8 weights, activations quantised on the fly; no
            representative dataset needed).
        overwrite: Whether an existing file may be replaced.
        batch_size: The fixed batch size of the inputs (default 1).
        fused_lstm: Whether the LSTM layers of the whole-sequence form run
            as TensorFlow Lite's fused `UNIDIRECTIONAL_SEQUENCE_LSTM` (one
            operation per layer: a smaller and faster file) where it
            computes their equations: tanh and sigmoid activations, float32,
            no mask, no `return_state`. Off by default: the fused kernel
            clips the cell state `C_t` to [-10, 10], which the equations do
            not, so its answers differ from the model's once `|C_t|` passes
            10.

    Returns:
        The path of the written `.tflite` file (a `pathlib.Path`).

    Example:

    ```python
    import keras_seqcells

    keras_seqcells.export_litert(model, "tagger.tflite", sequence_length=20)
    keras_seqcells.export_litert(model, "tagger_step.tflite", streaming=True)
    ```
    """
    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            "Expected the TensorFlow Keras backend to export a LiteRT model. "
            f"Received: backend={keras.backend.backend()!r}"
        )
    path = _target_path(path, overwrite)
    if quantize not in QUANTIZE_MODES:
        raise ValueError(
            f"Expected `quantize` to be one of {list(QUANTIZE_MODES)}. "
            f"Received: quantize={quantize!r}"
        )
    if (
        not isinstance(batch_size, (int, np.integer))
        or isinstance(batch_size, bool)
        or batch_size < 1
    ):
        raise ValueError(
            f"Expected `batch_size` to be a positive integer. Received: batch_size={batch_size!r}"
        )
    _check_float32_layers(model)
    numeric, sidecar = text_export.numeric_model(model)
    if streaming:
        concrete = _step_function(numeric, int(batch_size), sidecar)
    else:
        if sequence_length is None and sidecar is not None:
            sequence_length = sidecar.get("sequence_length")
        concrete = _sequence_function(
            numeric, int(batch_size), sequence_length, sidecar, bool(fused_lstm)
        )
    flatbuffer = _convert(concrete, quantize)
    if sidecar is not None:
        dtypes = {name: "int32" for name in text_export.input_names(sidecar)}
        text_export.write_sidecar(path, sidecar, dtypes, "step" if streaming else "sequence")
    text_export.write_atomically(path, flatbuffer)
    if sidecar is None:
        # The preprocessing left by an overwritten text model no longer belongs here.
        text_export.write_sidecar(path, None, {}, None)
    return path


def _check_float32_layers(model):
    """Refuses a model with layers that compute in half precision (a mixed precision policy)."""
    for layer in model._flatten_layers(include_self=False):
        compute_dtype = getattr(layer, "compute_dtype", "float32")
        if compute_dtype in ("bfloat16", "float16") and layer.weights:
            raise ValueError(
                "Expected a model whose layers compute in float32 to export as LiteRT "
                "(TensorFlow Lite's built-in operations have no bfloat16 kernels and few "
                "float16 ones; `quantize='float16'` stores float16 weights of a float32 "
                f"model). Received: layer {layer.name!r} with dtype policy "
                f"{layer.dtype_policy.name!r}. Rebuild the model under the float32 policy and "
                "copy its weights (they are float32) into it, or export a SavedModel."
            )


# ------------------------------------------------------------------ the file
def _target_path(path, overwrite):
    text = os.fspath(path) if isinstance(path, (str, os.PathLike)) else None
    if not text or pathlib.Path(text).suffix != ".tflite":
        raise ValueError(
            f"Expected `path` to be a file ending in '.tflite'. Received: path={path!r}"
        )
    target = pathlib.Path(text)
    if target.is_dir():
        raise ValueError(f"Expected `path` to be a file, not a folder. Received: path={path!r}")
    text_export.check_free(target, overwrite)
    return target


def _input_specs(model, batch_size, sequence_length, sidecar):
    """One `tf.TensorSpec` per model input: fixed batch size and number of steps."""
    import tensorflow as tf

    specs = []
    for index, tensor in enumerate(model.inputs):
        shape = [batch_size, *tensor.shape[1:]]
        if len(shape) >= 2:
            known = shape[1]
            if known is None:
                if sequence_length is None:
                    raise ValueError(
                        "Expected `sequence_length` for a model whose number of steps is not "
                        f"fixed. Received: sequence_length=None, input {tensor.name!r} of shape "
                        f"{tuple(tensor.shape)}"
                    )
                shape[1] = _positive(sequence_length)
            elif sequence_length is not None and _positive(sequence_length) != known:
                raise ValueError(
                    f"Expected `sequence_length` to be the model's number of steps ({known}). "
                    f"Received: sequence_length={sequence_length!r}"
                )
        if any(size is None for size in shape):
            raise ValueError(
                "Expected model inputs whose sizes are known but for the batch and the steps. "
                f"Received: input {tensor.name!r} of shape {tuple(tensor.shape)}"
            )
        specs.append(
            tf.TensorSpec(
                shape, _device_dtype(tensor.dtype), name=_input_name(tensor, index, sidecar)
            )
        )
    return specs


def _positive(sequence_length):
    if (
        not isinstance(sequence_length, (int, np.integer))
        or isinstance(sequence_length, bool)
        or sequence_length < 1
    ):
        raise ValueError(
            "Expected `sequence_length` to be a positive integer. "
            f"Received: sequence_length={sequence_length!r}"
        )
    return int(sequence_length)


def _input_name(tensor, index, sidecar=None):
    """The name of a model input in the file: its own, unless Keras made one up."""
    if sidecar is not None:
        return text_export.input_names(sidecar)[index]
    name = tensor.name
    if not name or name.startswith("keras_tensor"):
        return "inputs" if index == 0 else f"inputs_{index}"
    return name


def _device_dtype(dtype):
    """The dtype a LiteRT client feeds: int32 token ids, float32 values."""
    import tensorflow as tf

    dtype = tf.as_dtype(dtype)
    if dtype.is_integer:
        return tf.int32
    if dtype.is_floating:
        return tf.float32
    return dtype


def _output_names(model):
    """One name per model output: the name of the layer giving it."""
    names = [tensor._keras_history.operation.name for tensor in model.outputs]
    if len(set(names)) != len(names):
        names = [f"output_{i}" for i in range(len(model.outputs))]
    return names


def _unrolled(model, fused_lstm=False):
    """Within the context, the model's recurrent layers run their steps in a Python loop.

    Each layer runs `keras_seqcells.stepping.run_steps` (through a state hook
    that changes nothing), which handles masks, `go_backwards` and
    `zero_output_for_mask` as the layers' own loop does. Keras's unrolled
    backend loop (`unroll=True`) is not used: with `go_backwards`, a mask
    and `zero_output_for_mask` (what `Bidirectional` sets with
    `return_sequences=True`) it zeroes the outputs of the wrong steps.

    With `fused_lstm`, the LSTM layers that `_fusable_lstm` accepts run a
    function the converter replaces by `UNIDIRECTIONAL_SEQUENCE_LSTM`
    instead, on their unmasked calls.
    """
    layers = []
    for entry in recurrent_layers(model, any_cell=True):
        if not is_recurrent(entry.layer):
            raise ValueError(
                "Expected keras_seqcells recurrent layers (convert Keras's own with "
                f"`keras_seqcells.from_keras`). Received: layer {entry.label!r} "
                f"({type(entry.layer).__name__} on {type(entry.layer.cell).__name__})"
            )
        layers.append(entry.layer)
    fused = [layer for layer in layers if fused_lstm and _fusable_lstm(layer)]
    stack = contextlib.ExitStack()
    stack.enter_context(state_hooks({layer: StateHook() for layer in layers}))
    for layer in fused:
        stack.enter_context(_fused_inner_loop(layer))
    return stack


def _fusable_lstm(layer):
    """Whether TensorFlow Lite's fused LSTM computes `layer`'s equations.

    The fused kernel has fixed sigmoid gates and tanh activations, computes
    in float32, and gives no final states (so none may be used: no
    `return_state`, no stateful layer).
    """
    cell = layer.cell
    # Subclasses (the peephole LSTM) compute other equations.
    if type(cell) is not LSTMCell:
        return False
    config = cell.get_config()
    return (
        config["activation"] == "tanh"
        and config["recurrent_activation"] == "sigmoid"
        and cell.compute_dtype == "float32"
        and cell.bias_in_projection
        and not layer.return_state
        and not layer.stateful
    )


@contextlib.contextmanager
def _fused_inner_loop(layer):
    """Within the context, `layer`'s unmasked calls run a fusable LSTM function.

    The function has the interface the converter recognises as a Keras LSTM
    layer (tf.keras 2's `standard_lstm`: the arguments `inputs, init_h,
    init_c, kernel, recurrent_kernel, bias`, five results, and the
    attributes `api_implements="lstm_<id>"`, `time_major`,
    `go_backwards`), and replaces by `UNIDIRECTIONAL_SEQUENCE_LSTM`, whose
    outputs are in processing order as Keras's. Its body, the cell's
    equations, is what runs where the converter does not fuse it.
    """
    import tensorflow as tf

    cell = layer.cell
    go_backwards = bool(layer.go_backwards)

    def standard_lstm(inputs, init_h, init_c, kernel, recurrent_kernel, bias):
        steps = range(inputs.shape[1] - 1, -1, -1) if go_backwards else range(inputs.shape[1])
        h, c, outputs = init_h, init_c, []
        for t in steps:
            z = tf.matmul(inputs[:, t], kernel) + tf.matmul(h, recurrent_kernel) + bias
            z_i, z_f, z_c, z_o = tf.split(z, 4, axis=-1)
            c = tf.sigmoid(z_f) * c + tf.sigmoid(z_i) * tf.tanh(z_c)
            h = tf.sigmoid(z_o) * tf.tanh(c)
            outputs.append(h)
        outputs = tf.stack(outputs, axis=1)
        return outputs[:, -1], outputs, h, c, tf.constant(0.0)

    fused = tf.function(
        standard_lstm,
        autograph=False,
        experimental_attributes={
            "api_implements": f"lstm_{uuid.uuid4()}",
            "api_preferred_device": "CPU",
            "time_major": False,
            "go_backwards": go_backwards,
        },
    )
    own_loop = type(layer).inner_loop.__get__(layer)

    def inner_loop(sequences, initial_state, mask, training=False):
        if mask is not None or training:
            return own_loop(sequences, initial_state, mask, training=training)
        bias = cell.bias if cell.use_bias else tf.zeros([4 * cell.units])
        last_output, outputs, h, c, _ = fused(
            tf.cast(sequences, tf.float32),
            *initial_state,
            tf.convert_to_tensor(cell.kernel),
            tf.convert_to_tensor(cell.recurrent_kernel),
            tf.convert_to_tensor(bias),
        )
        return last_output, outputs, [h, c]

    # An instance attribute set past Keras's attribute tracking, removed after.
    object.__setattr__(layer, "inner_loop", inner_loop)
    try:
        yield
    finally:
        object.__delattr__(layer, "inner_loop")


def _sequence_function(model, batch_size, sequence_length, sidecar, fused_lstm=False):
    """The whole-sequence model as a concrete function (step loops unrolled)."""
    import tensorflow as tf

    stateful = [
        entry.label
        for entry in recurrent_layers(model, any_cell=True)
        if getattr(entry.layer, "stateful", False)
    ]
    if stateful:
        raise ValueError(
            "Expected a model without stateful layers for the whole-sequence form; export "
            "the step model of a stateful model with `streaming=True`, its states as inputs. "
            f"Received: stateful layers {stateful}"
        )
    specs = _input_specs(model, batch_size, sequence_length, sidecar)
    names = _output_names(model)
    model_dtypes = [tensor.dtype for tensor in model.inputs]

    def run(*inputs):
        inputs = [tf.cast(x, dtype) for x, dtype in zip(inputs, model_dtypes, strict=True)]
        outputs = model(inputs if len(inputs) > 1 else inputs[0], training=False)
        # A dict of outputs flattens in the order of `model.outputs` (sorted keys).
        outputs = keras.tree.flatten(outputs)
        return {name: _float32(y) for name, y in zip(names, outputs, strict=True)}

    with portable_graphs(), plain_tensorflow_adds(), _unrolled(model, fused_lstm):
        return tf.function(
            _with_constant_weights(model, run), autograph=False
        ).get_concrete_function(*specs)


def _step_function(model, batch_size, sidecar):
    """The one-step model as a concrete function: input and states in, output and states out."""
    import tensorflow as tf

    stepper = ModelStepper(model)
    names, sizes = stepper.state_names, stepper.state_sizes
    tensor = model.inputs[0]
    if any(size is None for size in tensor.shape[2:]):
        raise ValueError(
            "Expected a model input whose sizes are known but for the batch and the steps. "
            f"Received: input {tensor.name!r} of shape {tuple(tensor.shape)}"
        )
    step_spec = tf.TensorSpec(
        [batch_size, *tensor.shape[2:]],
        _device_dtype(tensor.dtype),
        name=_input_name(tensor, 0, sidecar),
    )
    state_specs = [
        tf.TensorSpec([batch_size, size], tf.float32, name=name)
        for name, size in zip(names, sizes, strict=True)
    ]
    (output_name,) = _output_names(model)
    if output_name in names:
        output_name = "output"

    def step(x, *states):
        x = tf.cast(x, tensor.dtype)
        states = [tf.cast(s, dtype) for s, dtype in zip(states, stepper.state_dtypes, strict=True)]
        output, new_states = stepper.step(x, states)
        outputs = {output_name: _float32(output)}
        outputs.update({name: _float32(s) for name, s in zip(names, new_states, strict=True)})
        return outputs

    with portable_graphs(), plain_tensorflow_adds():
        return tf.function(
            _with_constant_weights(model, step), autograph=False
        ).get_concrete_function(step_spec, *state_specs)


def _float32(tensor):
    import tensorflow as tf

    tensor = tf.convert_to_tensor(tensor)
    return tf.cast(tensor, tf.float32) if tensor.dtype.is_floating else tensor


def _with_constant_weights(model, function):
    """`function` reading the model's weights as constants of the traced graph.

    Traced as they are, Keras 3's variables stay resource variables in the
    file (`VAR_HANDLE` and `READ_VARIABLE`, left uninitialised), which is
    why a plain conversion of a Keras 3 model gives wrong answers or fails
    at run time. Inside a `keras.StatelessScope` mapping every variable to a
    constant created in the graph, the weights are the constant operands of
    `FULLY_CONNECTED` and the other operations, and the function captures
    nothing.
    """
    import tensorflow as tf

    values = [(variable, variable.numpy()) for variable in model.variables]

    def with_constants(*args):
        mapping = [(variable, tf.constant(value)) for variable, value in values]
        with keras.StatelessScope(state_mapping=mapping):
            return function(*args)

    return with_constants


# ---------------------------------------------------------------- convert
def _convert(concrete, quantize):
    """The LiteRT flatbuffer of `concrete`, built-in operations only."""
    import tensorflow as tf

    # Given a trackable object, the converter keeps the function's input and
    # output names in the file's signature.
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], tf.Module())
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()
