"""The serving signatures of an exported model.

Every signature takes raw inputs and returns named outputs, so that a
serving client needs neither Python nor Keras:

- `serving_default`: the task's answer for a batch of raw inputs (strings for
  text classification, tagging and next-word models, float32 windows for
  forecasting; the model's own inputs and outputs, by name, for any other
  Keras model).
- `serving_xla`: the same, its numeric part compiled with XLA.
- `step` and `initial_state`: one time step with the recurrent states as
  explicit inputs and outputs, for streaming sequences through a stateless
  server; `initial_state` returns the zero states a new stream starts from.

What each task's signatures take and return is its `ExportAdapter`'s (see
`keras_seqcells.serving.adapters`); this module builds the signatures from
an adapter alone. Text is preprocessed inside the graph (see
`keras_seqcells.serving.text`).
"""

import dataclasses

import keras
import tensorflow as tf

from keras_seqcells.layers import portable_graphs
from keras_seqcells.serving import adapters
from keras_seqcells.serving.text import tokenize
from keras_seqcells.stepping import ModelStepper, StepError, find_layers

GENERIC = adapters.GENERIC


def __getattr__(name):
    # `EXPORT_TASKS` is read from the registry when asked for, so that it
    # holds the adapters the task modules register when they are imported.
    if name == "EXPORT_TASKS":
        return adapters.export_tasks()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def detect_task(model):
    """The task of `model`: the task name it keeps, else recognised (`"generic"` for others).

    Args:
        model: A Keras model.

    Returns:
        The name of the model's export adapter (see `adapters.adapter_for`).
    """
    return adapters.adapter_for(model).name


def check_task(task, model):
    """The name of the adapter that exports `model`; ValueError for an unknown `task`."""
    return adapters.adapter_for(model, task).name


# ---------------------------------------------------------------- runners
class _Runner:
    """Runs the model on its inputs: plainly, or its numeric part under XLA.

    String-consuming layers (`TextVectorization`, `TokenFeatureHashing`) and
    lookups cannot be compiled; the XLA runner applies them first and
    compiles the rest of the model, from their outputs on.
    """

    def __init__(self, model, xla):
        self.model = model
        self.xla = xla
        self._compiled = None
        if xla:
            self._prepare_xla()

    def _prepare_xla(self):
        model = self.model
        if all(tensor.dtype != "string" for tensor in model.inputs):
            self.front = None
            numeric = model
        else:
            if len(model.inputs) != 1:
                raise ValueError(
                    "Expected a model with a single string input for the XLA signature. "
                    f"Received: inputs={[t.name for t in model.inputs]}"
                )
            source = model.inputs[0]
            self.front = [
                layer
                for layer in find_layers(model, keras.layers.Layer)
                if not isinstance(layer, keras.layers.InputLayer)
                and any(
                    tensor is source
                    for node in layer._inbound_nodes
                    for tensor in node.input_tensors
                )
            ]
            numeric = keras.Model(
                [layer.output for layer in self.front], model.outputs, name=f"{model.name}_numeric"
            )
        self.numeric = numeric
        self._compiled = tf.function(
            lambda *args: numeric(list(args) if len(args) > 1 else args[0], training=False),
            jit_compile=True,
            autograph=False,
        )

    def __call__(self, inputs):
        if not self.xla:
            return self.model(inputs, training=False)
        if self.front is None:
            args = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        else:
            args = [layer(inputs) for layer in self.front]
        return self._compiled(*args)


# ------------------------------------------------------------ signatures
@dataclasses.dataclass
class Signatures:
    """The functions to export, their input signatures and example requests."""

    functions: dict  # name -> (python function, list of TensorSpec)
    trackables: list
    examples: dict  # signature name -> {input name: list}
    step_example: dict | None = None  # {"inputs": [feeds], "serving_default": feed}
    notes: list = dataclasses.field(default_factory=list)


# -------------------------------------------------------------------- step
def _step_functions(model, parts):
    """`step(input, *states)` and `initial_state(batch_size)` functions and specs."""
    stepper = ModelStepper(model)
    prepare, finish = parts.prepare, parts.finish
    names, sizes = stepper.state_names, stepper.state_sizes

    def step(x, *states):
        output, new_states = stepper.step(prepare(x), [tf.cast(s, tf.float32) for s in states])
        outputs = finish(output)
        outputs.update(
            {name: tf.cast(s, tf.float32) for name, s in zip(names, new_states, strict=True)}
        )
        return outputs

    state_specs = [
        tf.TensorSpec([None, size], tf.float32, name=name)
        for name, size in zip(names, sizes, strict=True)
    ]

    def initial_state(batch_size):
        return {
            name: tf.zeros(tf.stack([batch_size, size]), tf.float32)
            for name, size in zip(names, sizes, strict=True)
        }

    return (
        (step, [parts.input_spec, *state_specs]),
        (initial_state, [tf.TensorSpec([], tf.int32, name="batch_size")]),
    )


# ------------------------------------------------------------------ build
def build_signatures(model, task, xla=True, top=5):
    """The serving functions of `model` (see the module docstring).

    Args:
        model: The Keras model.
        task: Its `ExportAdapter`, or the name of a registered one.
        xla: Whether to add `serving_xla`.
        top: Number of best candidates, where the task ranks some.

    Returns:
        A `Signatures`.
    """
    adapter = task if isinstance(task, adapters.ExportAdapter) else adapters.adapter_named(task)
    runners = {"serving_default": _Runner(model, xla=False)}
    notes = []
    if xla:
        try:
            runners["serving_xla"] = _Runner(model, xla=True)
        except ValueError as error:
            notes.append(f"no serving_xla signature: {error}")
    resources = adapter.resources(model)
    functions = {}
    for name, runner in runners.items():
        serving = adapter.serving(model, runner, resources, top)
        functions[name] = (serving.function, serving.input_spec)
    examples = serving.examples
    all_examples = {name: examples for name in functions}
    step_example = None
    if adapter.whole_input_reason is not None:
        step_parts = None
        try:
            ModelStepper(model)
        except StepError as error:
            notes.append(f"no step signature: {error}")
        else:
            notes.append(f"no step signature: {adapter.whole_input_reason}")
    else:
        step_parts = adapter.step(model, resources, top)
    if step_parts is not None:
        try:
            step, initial = _step_functions(model, step_parts)
        except StepError as error:
            notes.append(f"no step signature: {error}")
        else:
            functions["step"] = step
            functions["initial_state"] = initial
            all_examples["initial_state"] = {"batch_size": 2}
            step_example = adapter.step_example(examples, step_parts.input_spec.name)
    return Signatures(functions, list(resources.values()), all_examples, step_example, notes)


def trace_signatures(signatures):
    """Every signature as a `tf.function`, traced inside `portable_graphs()`.

    `serving_xla` too: it compiles the whole numeric part of the model with
    XLA itself, and must not hold device-specific operations either, since it
    is served on CPU as well.
    """
    traced = {}
    for name, (function, spec) in signatures.functions.items():
        traced[name] = tf.function(function, input_signature=spec, autograph=False)
        with portable_graphs():
            traced[name].get_concrete_function()
    return traced


__all__ = [
    "GENERIC",
    "Signatures",
    "StepError",
    "build_signatures",
    "check_task",
    "detect_task",
    "tokenize",
    "trace_signatures",
]
