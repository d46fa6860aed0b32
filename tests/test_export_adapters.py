"""Export adapters: the registry, the task name a task model keeps, and custom adapters."""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seqcells.serving import (
    EXPORT_TASKS,
    ExportAdapter,
    TaskModel,
    adapter_for,
    detect_task,
    export,
    read_examples,
    register_adapter,
    serve_check,
)
from keras_seqcells.serving import adapters as adapters_module
from keras_seqcells.serving.adapters import Serving, StepParts, adapter_named
from keras_seqcells.serving.serve_check import CppLoaded, ServeCheckError
from keras_seqcells.tasks import TASKS
from tests.test_export import TASK_OPTIONS, task_model


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def registry(monkeypatch):
    """The registry, restored after the test (which may register adapters)."""
    monkeypatch.setattr(adapters_module, "_ADAPTERS", dict(adapters_module._ADAPTERS))
    return adapters_module._ADAPTERS


class Doubling(ExportAdapter):
    """Serves twice the model's output, under the name `doubled`; steps over `x`."""

    name = "doubling"

    def serving(self, model, runner, resources, top):
        def serve(x):
            return {"doubled": 2.0 * tf.cast(runner(x), tf.float32)}

        spec = [tf.TensorSpec([None, None, 3], tf.float32, name="x")]
        examples = {"x": np.linspace(-1, 1, 2 * 4 * 3).reshape(2, 4, 3).tolist()}
        return Serving(serve, spec, examples)

    def step(self, model, resources, top):
        return StepParts(
            tf.TensorSpec([None, 3], tf.float32, name="x"),
            lambda x: x,
            lambda y: {"doubled": 2.0 * tf.cast(y, tf.float32)},
        )

    def keras_answers(self, model, feed, top=5):
        return {"doubled": 2.0 * model.predict(np.asarray(feed["x"], "float32"), verbose=0)}


class Undoubling(Doubling):
    def keras_answers(self, model, feed, top=5):
        return {"doubled": model.predict(np.asarray(feed["x"], "float32"), verbose=0)}


def doubling_model(model_class=keras.Model, **kwargs):
    inputs = keras.Input((None, 3), name="x")
    x = keras.layers.SimpleRNN(4, return_sequences=True, name="rnn")(inputs)
    return model_class(inputs, keras.layers.Dense(2, name="y")(x), **kwargs)


# ----------------------------------------------------------------- registry
def test_every_task_registers_its_adapter_and_export_tasks_lists_them():
    assert set(EXPORT_TASKS) == {*TASKS, "generic"}
    assert EXPORT_TASKS[-1] == "generic"
    for name in TASKS:
        assert adapter_named(name).name == name
        module = "keras_seqcells.tasks.adapters." + name.replace("-", "_")
        assert type(adapter_named(name)).__module__ == module


def test_serving_imports_no_task_module_and_finds_the_adapters_when_asked():
    script = (
        "import sys\n"
        "import keras_seqcells.serving as serving\n"
        "from keras_seqcells.serving import signatures, serve_check, saved_model\n"
        "assert not [m for m in sys.modules if m.startswith('keras_seqcells.tasks')], 'imported'\n"
        "print(','.join(serving.EXPORT_TASKS))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == ",".join(EXPORT_TASKS)


def test_a_name_taken_by_another_adapter_class_is_refused(registry):
    class Impostor(ExportAdapter):
        name = "tagging"

    with pytest.raises(ValueError, match=r"no other adapter has. Received: name='tagging'"):
        register_adapter(Impostor())
    # The same class registered again (its module imported again) replaces it.
    register_adapter(type(adapter_named("tagging"))())
    with pytest.raises(TypeError, match="Expected `adapter` to be an ExportAdapter"):
        register_adapter("tagging")
    with pytest.raises(ValueError, match="non-empty `name`"):
        register_adapter(ExportAdapter())


def test_an_unknown_task_is_refused_clearly(in_tmp):
    model = doubling_model()
    message = r"Expected `task` to be one of \[.*'generic'\]. Received: task='unknown'"
    with pytest.raises(ValueError, match=message):
        export(model, "saved_models/m", task="unknown")
    with pytest.raises(ValueError, match="Received: task_name='unknown' \\(kept by model"):
        export(doubling_model(TaskModel, task_name="unknown"), "saved_models/m")
    with pytest.raises(ValueError, match="Expected `task_name` to be a task's name"):
        doubling_model(TaskModel, task_name="")
    assert not (in_tmp / "saved_models" / "m").exists()


# -------------------------------------------------------- the kept task name
@pytest.mark.parametrize("task_name", sorted(TASK_OPTIONS))
def test_a_task_model_saved_and_loaded_keeps_its_task(task_name, tmp_path):
    model = task_model(task_name, "gru", tmp_path)
    assert isinstance(model, TaskModel) and model.task_name == task_name
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    assert isinstance(loaded, TaskModel)
    assert loaded.task_name == task_name
    assert detect_task(loaded) == task_name
    assert adapter_for(loaded) is adapter_named(task_name)


@pytest.mark.parametrize("task_name", ["forecasting", "text-classification"])
def test_a_task_model_saved_without_its_task_name_is_still_recognised(task_name, tmp_path):
    """`.keras` files of earlier versions hold plain functional models."""
    model = task_model(task_name, "simple_rnn", tmp_path)
    plain = keras.Model(model.inputs, model.outputs, name=model.name)
    plain.save(tmp_path / "older.keras")
    loaded = keras.saving.load_model(tmp_path / "older.keras", safe_mode=True)
    assert type(loaded) is not TaskModel and getattr(loaded, "task_name", None) is None
    assert detect_task(loaded) == task_name


def test_the_kept_task_name_wins_over_the_layers(in_tmp):
    # A model with the forecaster's input and layer names that says it is generic.
    inputs = keras.Input((5, 1), name="window")
    x = keras.layers.Rescaling(2.0, name="normalize")(inputs)
    outputs = keras.layers.Dense(1, name="out")(keras.layers.Flatten()(x))
    assert detect_task(keras.Model(inputs, outputs)) == "forecasting"
    assert detect_task(TaskModel(inputs, outputs, task_name="generic")) == "generic"


# ----------------------------------------------------------- custom adapters
def test_a_model_keeping_a_custom_task_exports_with_its_adapter(registry, in_tmp):
    register_adapter(Doubling())
    model = doubling_model(TaskModel, name="doubler", task_name="doubling")
    model.save("doubler.keras")
    model = keras.saving.load_model("doubler.keras", safe_mode=True)
    path = export(model, "saved_models/doubler", xla=False)
    examples = read_examples(path)
    assert examples["task"] == "doubling"
    report = serve_check("saved_models/doubler", model=model, grpc=False, fresh_process=False)
    assert report[-1] == "serving_default: the Keras model's answers"
    assert "step: a sequence fed step by step gives the serving_default answer" in report
    with CppLoaded(path) as loaded:
        assert {"initial_state", "serving_default", "step"} <= set(loaded.signatures)
        assert "serving_xla" not in loaded.signatures
        request = {"x": np.ones((1, 2, 3), "float32")}
        answer = loaded.run("serving_default", request)["doubled"]
    np.testing.assert_allclose(
        answer, 2.0 * model.predict(request["x"], verbose=0), rtol=1e-5, atol=1e-6
    )


def test_a_custom_adapter_is_chosen_by_task_and_checked_by_it(registry, in_tmp):
    register_adapter(Doubling())
    model = doubling_model()
    assert detect_task(model) == "generic"
    export(model, "saved_models/by_name", task="doubling", xla=False)
    assert read_examples("saved_models/by_name/1")["task"] == "doubling"
    # The export's adapter checks the answers: here one that expects them undoubled.
    registry["doubling"] = Undoubling()
    with pytest.raises(ServeCheckError, match="Expected Keras output 'doubled'"):
        serve_check("saved_models/by_name", model=model, grpc=False, fresh_process=False)
