"""What the ONNX and LiteRT exports of a text model share: its numeric part and its preprocessing.

String operations stay out of the exported files (neither ONNX's standard
operators nor LiteRT's built-in ones tokenise text as Keras does). A text
model is exported from its token ids on (`numeric_model`), and what a client
needs to make those ids from raw text is written beside the file:

- `<name>.vocabulary.json`: the vocabulary and the tokeniser's settings,
  the spelling features of a tagger (feature, bins, length), the label of
  each output unit, and the name and dtype of each input of the file;
- `<name>.preprocess.py`: `keras_seqcells/text_client.py` copied, a module
  that imports only the standard library and numpy and turns raw texts into
  the file's inputs from the JSON file (`TextPreprocessor`).
"""

import contextlib
import json
import os
import pathlib
import secrets

import keras

#: The suffix of the settings file written beside a text model's file.
VOCABULARY_SUFFIX = ".vocabulary.json"
#: The suffix of the standalone preprocessing module written beside it.
PREPROCESS_SUFFIX = ".preprocess.py"
#: The name of a text model's token ids input in the exported files.
TOKEN_IDS = "token_ids"


def sidecar_paths(path):
    """The JSON settings file and the preprocessing module beside the model file `path`."""
    path = pathlib.Path(path)
    return (
        path.with_name(path.stem + VOCABULARY_SUFFIX),
        path.with_name(path.stem + PREPROCESS_SUFFIX),
    )


def labels(model):
    """The names of the output layer's units (class names, tags), if it keeps them."""
    for layer in reversed(model.layers):
        for attribute in ("classes", "tags"):
            names = getattr(layer, attribute, None)
            if isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names):
                return list(names)
    return None


def _setting(value):
    return value if value is None or isinstance(value, str) else repr(value)


def _readers(model, source):
    return [
        layer
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
        and any(tensor is source for node in layer._inbound_nodes for tensor in node.input_tensors)
    ]


def _next_word_sidecar(model):
    vocabulary = next(
        (
            layer
            for layer in model.layers
            if type(layer).__name__ == "Vocabulary" and hasattr(layer, "vocabulary")
        ),
        None,
    )
    if vocabulary is None:
        return None
    from keras_seqcells.tasks.next_word import TOKEN_PATTERN

    return {
        "vocabulary": list(vocabulary.vocabulary),
        "oov_id": 0,
        "token_pattern": TOKEN_PATTERN.pattern,
        "sequence_length": None,
        "input": TOKEN_IDS,
    }


def numeric_model(model):
    """The part of `model` from token ids on, and what a client needs to make them.

    A model whose string input is read by one `TextVectorization` layer
    (`output_mode="int"`), and possibly by `TokenFeatureHashing` layers
    (the tagger's spelling features), gives the model from their outputs on:
    its inputs are the token ids (`token_ids`) and each feature's ids
    (`<feature>_ids`). A next-word model (a `Vocabulary` layer) is itself
    numeric; its vocabulary and tokeniser are described all the same.

    Args:
        model: A functional or Sequential Keras model.

    Returns:
        `(numeric_model, sidecar)`: `sidecar` is None for a model without a
        vocabulary, else the dict written to `<name>.vocabulary.json`
        (without the `input_dtypes` and `form` that the export adds).

    Raises:
        ValueError: for text read by other layers.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"Expected a Keras model. Received: model={type(model).__name__}")
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise ValueError(
            "Expected a functional or Sequential model with known inputs (built on "
            f"`keras.Input`). Received: model={model.name!r} without inputs"
        )
    names = labels(model)
    string_inputs = [tensor for tensor in model.inputs if tensor.dtype == "string"]
    if not string_inputs:
        sidecar = _next_word_sidecar(model)
        if sidecar is not None and names is not None:
            sidecar["labels"] = names
        return model, sidecar
    readers = _readers(model, string_inputs[0])
    vectorizers = [layer for layer in readers if isinstance(layer, keras.layers.TextVectorization)]
    hashers = [layer for layer in readers if type(layer).__name__ == "TokenFeatureHashing"]
    if (
        len(model.inputs) != 1
        or len(vectorizers) != 1
        or len(vectorizers) + len(hashers) != len(readers)
        or any(len(layer._inbound_nodes) != 1 for layer in readers)
    ):
        raise ValueError(
            "Expected a text model whose text input is read by one TextVectorization layer, "
            "and by TokenFeatureHashing layers (spelling features) alone, each called once; "
            "other string processing has no ONNX or LiteRT operations. "
            f"Received: layers reading the text {[layer.name for layer in readers]}"
        )
    (vectorizer,) = vectorizers
    config = vectorizer.get_config()
    if config.get("output_mode") != "int" or config.get("ngrams") is not None:
        raise ValueError(
            "Expected the text input to be read by a TextVectorization layer with "
            f"output_mode='int' and no ngrams. Received: layer {vectorizer.name!r} "
            f"(output_mode={config.get('output_mode')!r}, ngrams={config.get('ngrams')!r})"
        )
    split = _setting(config.get("split"))
    standardize = _setting(config.get("standardize"))
    known = (None, "lower", "strip_punctuation", "lower_and_strip_punctuation")
    if split != "whitespace" or standardize not in known:
        raise ValueError(
            "Expected a TextVectorization layer with split='whitespace' and standardize among "
            f"{list(known)}, which a client can reproduce. Received: layer {vectorizer.name!r} "
            f"(split={split!r}, standardize={standardize!r})"
        )
    features = [
        {
            "input": f"{layer.feature}_ids",
            "feature": layer.feature,
            "num_bins": layer.num_bins,
            "suffix_length": layer.suffix_length,
            "sequence_length": layer.output_sequence_length,
            "hash": "farmhash_fingerprint64",
        }
        for layer in hashers
    ]
    numeric_inputs = [vectorizer.output, *(layer.output for layer in hashers)]
    numeric = keras.Model(
        numeric_inputs if features else numeric_inputs[0],
        model.outputs,
        name=f"{model.name}_token_ids",
    )
    sidecar = {
        "vocabulary": [str(word) for word in vectorizer.get_vocabulary()],
        "padding_id": 0,
        "oov_id": 1,
        "standardize": standardize,
        "split": split,
        "sequence_length": config.get("output_sequence_length"),
        "input": TOKEN_IDS,
    }
    if features:
        sidecar["features"] = features
    if names is not None:
        sidecar["labels"] = names
    return numeric, sidecar


def input_names(sidecar):
    """The names of the numeric model's inputs in the exported file, in order."""
    return [sidecar["input"], *(feature["input"] for feature in sidecar.get("features", []))]


def check_free(path, overwrite):
    """Raises FileExistsError if the file or its sidecar files exist, unless `overwrite`."""
    if overwrite:
        return
    for existing in (pathlib.Path(path), *sidecar_paths(path)):
        if existing.exists():
            raise FileExistsError(
                f"Expected a path that does not exist yet, or `overwrite=True`. "
                f"Received: path={os.fspath(existing)!r} (exists)"
            )


def write_atomically(path, content):
    """Writes `content` to a temporary file beside `path`, then renames it to `path`."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Opened with "xb" (not `tempfile.mkstemp`, whose files only their owner
    # may read) so that the file gets the permissions of the umask.
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "xb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_sidecar(path, sidecar, input_dtypes, form):
    """Writes the settings and the preprocessing module beside the model file `path`.

    With `sidecar=None` (a model without text), removes those an earlier
    text model left there.

    Args:
        path: The exported model file.
        sidecar: The dict of `numeric_model`, or None.
        input_dtypes: `{input name: numpy dtype name}` of the file's inputs.
        form: `"sequence"` or `"step"`.
    """
    settings_path, script_path = sidecar_paths(path)
    if sidecar is None:
        for stale in (settings_path, script_path):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        return
    settings = {**sidecar, "input_dtypes": dict(input_dtypes), "form": form}
    write_atomically(
        settings_path, json.dumps(settings, ensure_ascii=False, indent=1).encode("utf-8")
    )
    client = pathlib.Path(__file__).with_name("text_client.py")
    write_atomically(script_path, client.read_bytes())
