"""Exact SimpleRNN, LSTM and GRU cells and layers for Keras 3.

The cells compute the equations of the specification exactly (up to
floating-point rounding), run inside `keras.layers.RNN` on every Keras
backend, and convert exactly to and from Keras's built-in layers.
"""

from keras_seqcells.architectures import (
    encoder_decoder,
    many_to_many,
    many_to_one,
    one_to_many,
    one_to_one,
)
from keras_seqcells.cells import (
    CellWeight,
    CIFGLSTMCell,
    GRUCell,
    LayerNormGRUCell,
    LayerNormLSTMCell,
    LayerNormSimpleRNNCell,
    LSTMCell,
    MinGRUCell,
    MinLSTMCell,
    PeepholeLSTMCell,
    Recurrence,
    RecurrentCell,
    SimpleRNNCell,
)
from keras_seqcells.convert import from_keras, to_keras
from keras_seqcells.convert_addons import from_addons
from keras_seqcells.convert_torch import from_torch, to_torch
from keras_seqcells.diagnostics import GradientNormLogger, gradient_flow, trace
from keras_seqcells.layers import (
    CIFGLSTM,
    GRU,
    LSTM,
    RNN,
    LayerNormGRU,
    LayerNormLSTM,
    LayerNormSimpleRNN,
    MinGRU,
    MinLSTM,
    PeepholeLSTM,
    SimpleRNN,
)
from keras_seqcells.onnx_export import export_onnx

__version__ = "0.1.0"


def export(model, path, version=None, task=None, overwrite=False, xla=True, top=5):
    """Exports `model` as a versioned SavedModel for TensorFlow Serving.

    This is `keras_seqcells.serving.export` (which documents the signatures and
    the atomic write), importable from the top-level package. TensorFlow is
    imported only when it is called, so the cells stay usable on the JAX and
    torch backends without it.

    Args:
        model: A task model or any Keras model.
        path: The model's folder, absolute or relative, e.g.
            `"saved_models/tagger"` or `"/models/tagger"`; each version goes
            below it. For a model name that comes from outside, use
            `keras_seqcells.serving.model_folder(root, name)`, which refuses
            names that could leave `root`.
        version: The version number; by default one above the highest one.
        task: The task whose signatures to export; by default recognised
            from the model.
        overwrite: Whether an existing `version` may be replaced.
        xla: Whether to add the `serving_xla` signature.
        top: Number of `top_words` of a next-word model.

    Returns:
        The path of the written version (a `pathlib.Path`).

    Example:

    ```python
    import keras_seqcells

    keras_seqcells.export(model, "saved_models/tagger")  # saved_models/tagger/1
    ```
    """
    from keras_seqcells.serving import export as export_saved_model

    return export_saved_model(
        model, path, version=version, task=task, overwrite=overwrite, xla=xla, top=top
    )


def serve_check(path, model=None, version=None, model_name=None, grpc=True, fresh_process=True):
    """Loads an export and checks its answers to the example requests stored with it.

    This is `keras_seqcells.serving.serve_check`, which lists each check: it
    loads with `tf.compat.v1.saved_model.loader` (Python over TensorFlow's C++
    session, not TensorFlow Serving's own `LoadSavedModel`), checks REST
    bodies and a gRPC `PredictRequest` as a protobuf round trip (no server
    is started), and runs `saved_model_cli run` and `tf.saved_model.load` in
    fresh `python -I` processes that cannot import keras_seqcells.

    Args:
        path: The export folder (`saved_models/<name>`) or one version folder.
        model: Optional Keras model whose answers the export must give.
        version: The version to check (the newest by default).
        model_name: The model name of the gRPC request (the folder's name).
        grpc: Whether to check the gRPC `PredictRequest` round trip.
        fresh_process: Whether to run the checks in fresh processes.

    Returns:
        A list of lines saying what was checked.
    """
    from keras_seqcells.serving import serve_check as check_export

    return check_export(
        path,
        model=model,
        version=version,
        model_name=model_name,
        grpc=grpc,
        fresh_process=fresh_process,
    )


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

    This is `keras_seqcells.litert.export_litert`, which documents the two
    forms (the whole sequence, or one streaming step with the recurrent
    states as inputs and outputs), what is supported and refused, and the
    vocabulary file written beside a text model. TensorFlow is imported only
    when it is called.

    Args:
        model: A Keras model on the TensorFlow backend.
        path: The file to write, ending in `.tflite`.
        streaming: Whether to export the one-step model instead of the
            whole-sequence model.
        sequence_length: The number of steps of the whole-sequence model,
            when the model does not fix it.
        quantize: None (float32), `"float16"` (float16 weights) or `"int8"`
            (dynamic-range quantisation).
        overwrite: Whether an existing file may be replaced.
        batch_size: The fixed batch size of the inputs (default 1).
        fused_lstm: Whether LSTM layers run as TensorFlow Lite's fused
            `UNIDIRECTIONAL_SEQUENCE_LSTM` where it computes their equations
            (it clips the cell state to [-10, 10]; off by default).

    Returns:
        The path of the written file (a `pathlib.Path`).

    Example:

    ```python
    import keras_seqcells

    keras_seqcells.export_litert(model, "model.tflite", sequence_length=20)
    keras_seqcells.export_litert(model, "model_step.tflite", streaming=True)
    ```
    """
    from keras_seqcells.litert import export_litert as export_tflite

    return export_tflite(
        model,
        path,
        streaming=streaming,
        sequence_length=sequence_length,
        quantize=quantize,
        overwrite=overwrite,
        batch_size=batch_size,
        fused_lstm=fused_lstm,
    )


__all__ = [
    "CIFGLSTM",
    "GRU",
    "LSTM",
    "RNN",
    "CIFGLSTMCell",
    "CellWeight",
    "GRUCell",
    "GradientNormLogger",
    "LSTMCell",
    "LayerNormGRU",
    "LayerNormGRUCell",
    "LayerNormLSTM",
    "LayerNormLSTMCell",
    "LayerNormSimpleRNN",
    "LayerNormSimpleRNNCell",
    "MinGRU",
    "MinGRUCell",
    "MinLSTM",
    "MinLSTMCell",
    "PeepholeLSTM",
    "PeepholeLSTMCell",
    "Recurrence",
    "RecurrentCell",
    "SimpleRNN",
    "SimpleRNNCell",
    "encoder_decoder",
    "export",
    "export_litert",
    "export_onnx",
    "from_addons",
    "from_keras",
    "from_torch",
    "gradient_flow",
    "many_to_many",
    "many_to_one",
    "one_to_many",
    "one_to_one",
    "serve_check",
    "to_keras",
    "to_torch",
    "trace",
]
