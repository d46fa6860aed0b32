"""Untrusted files: what the package writes loads in safe mode, what it reads
is never unpickled or evaluated, and user-given names stay in their folder."""

import json
import re
import zipfile
from pathlib import Path

import keras
import pytest

import keras_seqcells as ks
from keras_seqcells import cli
from keras_seqcells.tasks import Forecasting, NextWord, Tagging, TextClassification
from tests.task_helpers import tiny_settings

PACKAGE = Path(ks.__file__).resolve().parent
KERAS_FILES = {"config.json", "metadata.json", "model.weights.h5"}

TINY_TASKS = {
    "text-classification": (
        TextClassification(max_tokens=300, sequence_length=12, embedding_dim=8),
        {"limit": 64},
    ),
    "forecasting": (Forecasting(window=8, horizon=3, min_epoch_windows=1), {"limit": 32}),
    "tagging": (
        Tagging(max_length=8, embedding_dim=8, feature_bins=50, feature_dim=4),
        {"limit": 48},
    ),
    "next-word": (NextWord(sequence_length=8, embedding_dim=8), {"limit": 40}),
}


def _classes(config):
    """Every `class_name` in a serialised Keras config."""
    if isinstance(config, dict):
        if "class_name" in config:
            yield config["class_name"]
        for value in config.values():
            yield from _classes(value)
    elif isinstance(config, list):
        for value in config:
            yield from _classes(value)


# Slow (a training run per task): each task's own tests also reload its saved
# model with safe_mode=True in the default suite.
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TINY_TASKS))
def test_every_task_model_loads_in_safe_mode(name, tmp_path):
    task, options = TINY_TASKS[name]
    result = task.train(tiny_settings(tmp_path, batch_size=64), **options)
    with zipfile.ZipFile(result.model_path) as archive:
        config = json.loads(archive.read("config.json"))
        names = set(archive.namelist())
    assert names >= KERAS_FILES
    # Anything else is a vocabulary or other text asset, never code or pickles.
    assert all(n.startswith("assets/") and n.endswith(".txt") for n in names - KERAS_FILES), names
    classes = set(_classes(config))
    assert not classes & {"Lambda", "function", "__lambda__"}, classes
    assert "__lambda__" not in json.dumps(config)
    keras.saving.load_model(result.model_path, safe_mode=True)
    cli.load_model(result.model_path)  # the CLI's checks and safe mode


def test_the_cli_refuses_a_model_with_a_lambda(tmp_path):
    path = tmp_path / "lambda.keras"
    model = keras.Sequential([keras.Input((3,)), keras.layers.Lambda(lambda x: x * 2)])
    model.save(path)
    with pytest.raises(ValueError) as raised:
        cli.load_model(path)
    message = str(raised.value)
    assert f"Expected `--model` to be a .keras model saved by Keras. Received: --model={path}" in (
        message
    )
    assert "safe_mode" in message or "lambda" in message.lower(), message


UNSAFE = {
    "pickle": re.compile(r"\bimport pickle|\bfrom pickle\b|\bpickle\.|\bcPickle\b|\bdill\b"),
    "eval/exec": re.compile(r"(?<![\w.])(eval|exec)\("),
    "allow_pickle=True": re.compile(r"allow_pickle\s*=\s*True"),
    "marshal/shelve": re.compile(r"\bimport (marshal|shelve)\b"),
    "yaml.load": re.compile(r"\byaml\.(unsafe_)?load\("),
    "safe_mode=False": re.compile(r"safe_mode\s*=\s*False"),
    "py_function": re.compile(r"\b(py_function|numpy_function|py_func)\("),
    "enable_unsafe_deserialization": re.compile(r"enable_unsafe_deserialization"),
}


def test_the_package_never_unpickles_or_evaluates_what_it_reads():
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 20
    found = []
    for path in sources:
        text = path.read_text(encoding="utf-8")
        for what, pattern in UNSAFE.items():
            found += [f"{path.relative_to(PACKAGE)}: {what}" for _ in pattern.finditer(text)]
        # NumPy files are read with allow_pickle=False, always.
        for call in re.finditer(r"np\.load\(([^)]*)\)", text):
            if "allow_pickle=False" not in call.group(1):
                found.append(f"{path.relative_to(PACKAGE)}: np.load without allow_pickle=False")
    assert not found, found
