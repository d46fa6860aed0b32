"""Export adapters: how each kind of model is served, and how its answers are checked.

An `ExportAdapter` says, for one task, what the `serving_default` function
of an export takes and returns, which example requests are stored with it,
whether and how the `step` signature feeds the model one time step at a
time, and what `serve_check` compares with the Keras model's own answers.
`keras_seqcells.serving.signatures` builds every signature from an adapter,
without knowing any task.

Adapters are registered by name with `register_adapter`. The generic adapter
(a model's own inputs and outputs, by name) is registered here; each task's
adapter lives with its task (`keras_seqcells.tasks.adapters.<task>`) and
registers itself when `keras_seqcells.tasks` is imported. `adapter_for` and
`adapter_named` import `keras_seqcells.tasks` first (when called, never at
import), so that a loaded task model finds its adapter.

A task builds its model as a `TaskModel`, which keeps the task's name in its
config: a model saved with `model.save()` and loaded again with
`keras.saving.load_model` still names its adapter. Models saved before task
models kept their name are recognised as before (see `legacy`).

Example:

```python
import tensorflow as tf

import keras_seqcells
from keras_seqcells.serving.adapters import ExportAdapter, Serving, register_adapter


class Doubling(ExportAdapter):
    name = "doubling"

    def serving(self, model, runner, resources, top):
        def serve(x):
            return {"doubled": 2.0 * runner(x)}

        return Serving(serve, [tf.TensorSpec([None, 3], tf.float32, name="x")], {"x": [[1, 2, 3]]})


register_adapter(Doubling())
keras_seqcells.export(model, "saved_models/doubling", task="doubling")
```

(`serve_check(..., model=model)` then compares the export's answers with
the adapter's `keras_answers`, which a subclass overrides where its outputs
are not the model's own.)
"""

import dataclasses
import importlib
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from keras_seqcells.serving.comparison import compare_outputs

#: The name of the adapter of any Keras model (its own inputs and outputs).
GENERIC = "generic"


@dataclasses.dataclass
class Serving:
    """A `serving_default` (or `serving_xla`) function, its input spec and example request.

    Attributes:
        function: Takes one tensor per entry of `input_spec`; returns a dict
            of named output tensors.
        input_spec: The `tf.TensorSpec` of each input, named as the request's
            inputs.
        examples: An example request `{input name: list}` that the export
            stores and `serve_check` runs.
    """

    function: Callable
    input_spec: list
    examples: dict


@dataclasses.dataclass
class StepParts:
    """How the `step` signature feeds the model one time step.

    Attributes:
        input_spec: The `tf.TensorSpec` of one step's input (its name is the
            step input's name).
        prepare: Turns that input into the model's input for one step.
        finish: Turns the model's output of one step into a dict of named
            outputs.
    """

    input_spec: tf.TensorSpec
    prepare: Callable
    finish: Callable


class ExportAdapter:
    """How one kind of model is exported and checked; subclass it for a task.

    Override `serving` (required) and any of the other methods; the defaults
    are those of a model without a step signature whose answers are
    compared output by output.

    Attributes:
        name: The task's name, as `export(task=...)` takes it and the export
            records it (e.g. `"tagging"`).
        whole_input_reason: Why the model cannot be stepped even where its
            layers could (e.g. the text is preprocessed as a whole), or None.
    """

    name = ""
    whole_input_reason = None

    def resources(self, model):
        """Graph resources every signature of one export shares (e.g. lookup tables).

        Returns:
            A dict of trackable objects, saved with the export and passed to
            `serving` and `step` as `resources`.
        """
        return {}

    def serving(self, model, runner, resources, top):
        """The `serving_default` function of `model`.

        Args:
            model: The Keras model.
            runner: Runs the model (plainly, or its numeric part under XLA
                for `serving_xla`); call it instead of `model`.
            resources: What `resources(model)` returned.
            top: The number of best candidates to return, where the task
                ranks some (e.g. next words).

        Returns:
            A `Serving`.
        """
        raise NotImplementedError(f"{type(self).__name__} must define `serving`.")

    def step(self, model, resources, top):
        """`StepParts` of the `step` signature, or None for no step signature."""
        return None

    def step_example(self, examples, input_name):
        """A sequence fed to `step`, and the `serving_default` request it must match.

        Args:
            examples: The example request of `serving_default`.
            input_name: The name of the step's input.

        Returns:
            `{"inputs": [one request per step], "serving_default": request,
            "outputs": names compared (None: those the two share)}`.
        """
        name, values = next(iter(examples.items()))
        sequence = values[0]
        return {
            "inputs": [{input_name: [value]} for value in sequence],
            "serving_default": {name: [sequence]},
            "outputs": None,
        }

    def keras_answers(self, model, feed, top=5):
        """What the Keras model (the task's Python code) answers to the request `feed`."""
        inputs = [np.asarray(feed[t.name]) for t in model.inputs]
        outputs = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
        names = output_names(model)
        if isinstance(outputs, dict):
            return {name: outputs[name] for name in names}
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return dict(zip(names, outputs, strict=True))

    def compare_with_keras(self, got, expected):
        """Raises `ServeCheckError` unless a `serving_default` answer is `keras_answers`'."""
        compare_outputs("Keras", got, expected)


def output_names(model):
    """The names of a model's outputs: its dict keys, or its output layers' names."""
    # A Sequential model has no `output` until called; its output is never a dict.
    if not isinstance(model, keras.Sequential) and isinstance(model.output, dict):
        return list(model.output)
    return [tensor._keras_history.operation.name for tensor in model.outputs]


class GenericAdapter(ExportAdapter):
    """Any Keras model: its own inputs and outputs, by name; a step over its first input."""

    name = GENERIC

    def serving(self, model, runner, resources, top):
        names = [tensor.name for tensor in model.inputs]
        outputs = output_names(model)

        def serve(*args):
            result = runner(list(args) if len(args) > 1 else args[0])
            if isinstance(result, dict):
                return {name: result[name] for name in outputs}
            result = result if isinstance(result, (list, tuple)) else [result]
            return dict(zip(outputs, result, strict=True))

        spec = [
            tf.TensorSpec([None, *tensor.shape[1:]], tensor.dtype, name=name)
            for tensor, name in zip(model.inputs, names, strict=True)
        ]
        rng = np.random.default_rng(0)
        examples = {}
        for tensor, name in zip(model.inputs, names, strict=True):
            shape = [2, *(size or 5 for size in tensor.shape[1:])]
            if tensor.dtype == "string":
                examples[name] = np.full(shape, "example").tolist()
            elif "int" in str(tensor.dtype):
                examples[name] = rng.integers(0, 2, shape).tolist()
            else:
                examples[name] = rng.normal(size=shape).astype("float32").tolist()
        return Serving(serve, spec, examples)

    def step(self, model, resources, top):
        tensor = model.inputs[0]
        if len(tensor.shape) < 2:
            return None
        first_output = output_names(model)[0]
        return StepParts(
            tf.TensorSpec([None, *tensor.shape[2:]], tensor.dtype, name=tensor.name),
            lambda x: x,
            lambda x: {first_output: x},
        )


# ------------------------------------------------------------- task models
@keras.saving.register_keras_serializable(package="keras_seqcells")
class TaskModel(keras.Model):
    """A functional model that keeps the name of the task that built it.

    `task_name` is part of the model's config, so it survives `model.save()`
    and `keras.saving.load_model` (with `keras_seqcells.serving` or a task
    module imported, as for the tasks' own layers); `export` takes the
    adapter of that name instead of guessing the task from the layers.

    Args:
        *args: What `keras.Model` takes for a functional model (`inputs`,
            `outputs`).
        task_name: The name of the model's export adapter, e.g. `"tagging"`.
        **kwargs: What `keras.Model` takes (`name`, `trainable`).

    Example:

    >>> inputs = keras.Input((3,), name="x")
    >>> model = TaskModel(inputs, keras.layers.Dense(2)(inputs), task_name="generic")
    >>> model.task_name
    'generic'
    """

    def __init__(self, *args, task_name=None, **kwargs):
        if task_name is not None and (not isinstance(task_name, str) or not task_name):
            raise ValueError(
                "Expected `task_name` to be a task's name such as 'tagging'. "
                f"Received: task_name={task_name!r}"
            )
        super().__init__(*args, **kwargs)
        self.task_name = task_name

    def get_config(self):
        return {**super().get_config(), "task_name": self.task_name}


def saved_task_name(model):
    """The task name a model keeps (see `TaskModel`), or None."""
    name = getattr(model, "task_name", None)
    return name if isinstance(name, str) else None


# ---------------------------------------------------------------- registry
_ADAPTERS = {}


def register_adapter(adapter):
    """Registers an `ExportAdapter` under its `name`; returns it.

    Registering an adapter of the same class again (a module imported again)
    replaces it; a name taken by an adapter of another class is refused.

    Args:
        adapter: An `ExportAdapter` instance with a non-empty `name`.

    Returns:
        `adapter`.
    """
    if not isinstance(adapter, ExportAdapter):
        raise TypeError(f"Expected `adapter` to be an ExportAdapter. Received: adapter={adapter!r}")
    name = adapter.name
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"Expected an adapter with a non-empty `name`. Received: name={name!r} of {adapter!r}"
        )
    known = _ADAPTERS.get(name)
    if known is not None and _qualified(type(known)) != _qualified(type(adapter)):
        raise ValueError(
            f"Expected a task name that no other adapter has. Received: name={name!r}, "
            f"registered by {_qualified(type(known))}"
        )
    _ADAPTERS[name] = adapter
    return adapter


def _qualified(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def _import_task_adapters():
    """Imports the task modules, which register their adapters (once)."""
    importlib.import_module("keras_seqcells.tasks")


def export_tasks():
    """The names of the registered adapters, the generic one last."""
    _import_task_adapters()
    return (*sorted(name for name in _ADAPTERS if name != GENERIC), GENERIC)


def adapter_named(task):
    """The registered adapter called `task`; ValueError naming the registered ones if none."""
    _import_task_adapters()
    if not isinstance(task, str) or task not in _ADAPTERS:
        raise ValueError(
            f"Expected `task` to be one of {list(export_tasks())}. Received: task={task!r}"
        )
    return _ADAPTERS[task]


def adapter_for(model, task=None):
    """The adapter that exports `model`.

    Args:
        model: A Keras model.
        task: The adapter's name; by default the task name the model keeps
            (see `TaskModel`), else the task recognised from the layers of a
            model saved before task models kept it, else `"generic"`.

    Returns:
        An `ExportAdapter`.
    """
    if task is not None:
        return adapter_named(task)
    _import_task_adapters()
    name = saved_task_name(model)
    if name is None:
        from keras_seqcells.serving.adapters import legacy

        return adapter_named(legacy.recognise_task(model))
    if name not in _ADAPTERS:
        raise ValueError(
            f"Expected a registered export adapter for the task the model was built by, one of "
            f"{list(export_tasks())} (import the module that registers it, or pass `task`). "
            f"Received: task_name={name!r} (kept by model {model.name!r})"
        )
    return _ADAPTERS[name]


register_adapter(GenericAdapter())

__all__ = [
    "GENERIC",
    "ExportAdapter",
    "GenericAdapter",
    "Serving",
    "StepParts",
    "TaskModel",
    "adapter_for",
    "adapter_named",
    "export_tasks",
    "output_names",
    "register_adapter",
    "saved_task_name",
]
