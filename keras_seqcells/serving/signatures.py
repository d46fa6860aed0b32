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

The preprocessing of text (the Python tokenisation of the next-word task,
the splitting of long sentences by the tagger) runs inside the graph with
`tf.strings` operations and lookup tables, written to give exactly the
tokens of the Python code. Checked over every Unicode code point, the graph
tokeniser differs from `next_word.tokenize` on about 270 of them only, all
from scripts added in recent Unicode versions, whose case mappings or
categories TensorFlow's ICU and Python's `unicodedata` do not share yet.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from keras_seqcells.layers import portable_graphs
from keras_seqcells.stepping import ModelStepper, StepError

TEXT_CLASSIFICATION = "text-classification"
TAGGING = "tagging"
NEXT_WORD = "next-word"
FORECASTING = "forecasting"
GENERIC = "generic"
#: What `task=` accepts; `generic` exports the model's own inputs and outputs.
EXPORT_TASKS = (TEXT_CLASSIFICATION, FORECASTING, TAGGING, NEXT_WORD, GENERIC)

# Python's `str.isspace()` characters (what `str.split()` and `\s` split on),
# as an RE2 character class body.
_SPACE = r"\t\n\x{0b}\x{0c}\r\x{1c}-\x{1f}\x{85}\p{Z}"
# `next_word.TOKEN_PATTERN` in RE2: Python's `[^\W_]` (letters and digits)
# is `[\p{L}\p{N}]`, and `[^\w\s]` everything else but `_` and whitespace.
_WORD = r"[\p{L}\p{N}]"
_TOKEN_RE2 = rf"{_WORD}+(?:'{_WORD}+)*|--|[^\p{{L}}\p{{N}}_{_SPACE}]"


def _layer_named(model, cls_name):
    return next((layer for layer in model.layers if type(layer).__name__ == cls_name), None)


def detect_task(model):
    """The task a model was built by (`"generic"` for any other model)."""
    from keras_seqcells.tasks.next_word import Vocabulary
    from keras_seqcells.tasks.tagging import TagProbabilities

    if any(isinstance(layer, Vocabulary) for layer in model.layers):
        return NEXT_WORD
    if any(isinstance(layer, TagProbabilities) for layer in model.layers):
        return TAGGING
    names = [tensor.name for tensor in model.inputs]
    if len(names) == 1 and model.inputs[0].dtype == "string" and names[0] == "text":
        return TEXT_CLASSIFICATION
    if names == ["window"] and any(layer.name == "normalize" for layer in model.layers):
        return FORECASTING
    return GENERIC


def check_task(task, model):
    if task is None:
        return detect_task(model)
    if task not in EXPORT_TASKS:
        raise ValueError(
            f"Expected `task` to be one of {list(EXPORT_TASKS)}. Received: task={task!r}"
        )
    return task


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
                for layer in model.layers
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


# ------------------------------------------------------------ text helpers
def _string_spec(name):
    """A batch of strings; its rank is checked in the graph (see `_batch_of_strings`)."""
    return tf.TensorSpec(None, tf.string, name=name)


def _batch_of_strings(strings, name):
    """`strings` if it is a rank-1 batch, else a clear error from the graph.

    Checked in the graph rather than by the signature's shape, which a server
    does not enforce: "Shape of tensor <name> [1,2] is not compatible with
    expected shape [?]".
    """
    return tf.ensure_shape(tf.identity(strings, name=name), [None])


def _check_non_empty(strings, message):
    """Asserts that every string holds a non-whitespace character."""
    blank = tf.strings.regex_full_match(strings, rf"[{_SPACE}]*")
    return tf.debugging.Assert(tf.logical_not(tf.reduce_any(blank)), [message])


def _normalise_spaces(strings):
    """Every whitespace run (Python's `str.isspace`) as one ASCII space, stripped."""
    return tf.strings.strip(tf.strings.regex_replace(strings, rf"[{_SPACE}]+", " "))


def tokenize(prompts):
    """`next_word.tokenize` in the graph: a ragged batch of tokens (strings)."""
    lowered = tf.strings.lower(prompts, encoding="utf-8")
    spaced = tf.strings.regex_replace(lowered, _TOKEN_RE2, r" \0 ")
    spaced = tf.strings.regex_replace(spaced, rf"[_{_SPACE}]+", " ")
    return tf.strings.split(spaced)


def _vocabulary_table(words):
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(words)), tf.range(len(words), dtype=tf.int32)
        ),
        default_value=0,
    )


# ------------------------------------------------------------ signatures
@dataclasses.dataclass
class Signatures:
    """The functions to export, their input signatures and example requests."""

    functions: dict  # name -> (python function, list of TensorSpec)
    trackables: list
    examples: dict  # signature name -> {input name: list}
    step_example: dict | None = None  # {"inputs": [feeds], "serving_default": feed}
    notes: list = dataclasses.field(default_factory=list)


def _text_classification(model, runner):
    from keras_seqcells.tasks.text_classification import class_names

    names = tf.constant(list(class_names(model)))
    width = model.output_shape[-1]

    def serve(text):
        text = _batch_of_strings(text, "text")
        check = _check_non_empty(text, "Expected non-empty texts in `text`.")
        with tf.control_dependencies([check]):
            outputs = tf.cast(runner(text), tf.float32)
        outputs = tf.reshape(outputs, [-1, width])
        # A two-class model's one sigmoid output is the second class's probability.
        if width == 1:
            outputs = tf.concat([1.0 - outputs, outputs], axis=-1)
        return {
            "probabilities": outputs,
            "label": tf.gather(names, tf.argmax(outputs, axis=-1, output_type=tf.int32)),
        }

    spec = [_string_spec("text")]
    examples = {"text": ["a gripping , beautifully acted film .", "dull , lifeless and too long ."]}
    return serve, spec, examples


def _tagging(model, runner):
    from keras_seqcells.tasks.tagging import tag_names

    names = tf.constant(list(tag_names(model)))
    length = model.output_shape[1]

    def serve(sentence):
        sentence = _batch_of_strings(sentence, "sentence")
        check = _check_non_empty(sentence, "Expected non-empty sentences in `sentence`.")
        with tf.control_dependencies([check]):
            words = tf.strings.split(_normalise_spaces(sentence), sep=" ")
        counts = tf.cast(words.row_lengths(), tf.int32)
        # Each sentence cut into pieces of at most `length` tokens, as in Python.
        pieces_per_row = tf.maximum((counts + length - 1) // length, 1)
        first_piece = tf.cumsum(pieces_per_row, exclusive=True)
        position = tf.ragged.range(counts).flat_values
        row = tf.cast(words.value_rowids(), tf.int32)
        piece = tf.gather(first_piece, row) + position // length
        pieces = tf.RaggedTensor.from_value_rowids(
            words.flat_values, piece, nrows=tf.reduce_sum(pieces_per_row)
        )
        probabilities = tf.cast(
            runner(tf.strings.reduce_join(pieces, axis=1, separator=" ")), tf.float32
        )
        token_probabilities = tf.gather_nd(probabilities, tf.stack([piece, position % length], -1))
        per_sentence = tf.RaggedTensor.from_value_rowids(
            token_probabilities, row, nrows=tf.shape(sentence)[0]
        )
        best = tf.argmax(per_sentence.flat_values, axis=-1, output_type=tf.int32)
        tags = per_sentence.with_flat_values(tf.gather(names, best))
        return {
            "tokens": words.to_tensor(""),
            "tags": tags.to_tensor(""),
            "probabilities": per_sentence.to_tensor(0.0),
            "lengths": counts,
        }

    spec = [_string_spec("sentence")]
    examples = {
        "sentence": [
            "I love New York in the spring .",
            "The  cat sat on the mat .",
            "Hi",
        ]
    }
    return serve, spec, examples


def _next_word(model, runner, table, top):
    from keras_seqcells.tasks.next_word import vocabulary_layer

    words = tf.constant(list(vocabulary_layer(model).vocabulary))
    size = len(vocabulary_layer(model).vocabulary)
    top = min(top, size - 1)

    def answer(logits):
        logits = tf.cast(logits, tf.float32)
        probabilities = tf.nn.softmax(logits, axis=-1)
        # `[UNK]` (id 0) is never proposed.
        masked = tf.concat([tf.fill([tf.shape(logits)[0], 1], -np.inf), logits[:, 1:]], axis=1)
        best = tf.math.top_k(masked, k=top).indices
        return {
            "probabilities": probabilities,
            "top_words": tf.gather(words, best),
            "top_probabilities": tf.gather(probabilities, best, batch_dims=1),
        }

    def serve(prompt):
        tokens = tokenize(_batch_of_strings(prompt, "prompt"))
        counts = tf.cast(tokens.row_lengths(), tf.int32)
        check = tf.debugging.Assert(
            tf.reduce_all(counts > 0), ["Expected prompts with words in `prompt`."]
        )
        with tf.control_dependencies([check]):
            ids = table.lookup(tokens).to_tensor(0)
        logits = runner(ids)
        last = tf.gather(logits, tf.maximum(counts - 1, 0), batch_dims=1)
        return answer(last)

    spec = [_string_spec("prompt")]
    examples = {"prompt": ["the just man", "and socrates said that"]}
    return serve, spec, examples, answer


def _forecasting(model, runner):
    window = model.inputs[0].shape[1]

    def serve(window_values):
        # The length is checked here, not by the signature's shape, so that a
        # server (which does not check shapes) answers a wrong one clearly too.
        length = tf.debugging.Assert(
            tf.equal(tf.shape(window_values)[1], window),
            [
                f"Expected windows of {window} values in `window`. Received:",
                tf.shape(window_values),
            ],
        )
        with tf.control_dependencies([length]):
            finite = tf.debugging.Assert(
                tf.reduce_all(tf.math.is_finite(window_values)),
                ["Expected finite values in `window`."],
            )
        with tf.control_dependencies([finite]):
            window_values = tf.ensure_shape(window_values, [None, window])
            outputs = runner(window_values[..., None])
        if isinstance(outputs, dict):
            outputs = outputs["forecast"]
        return {"forecast": tf.cast(outputs, tf.float32)}

    spec = [tf.TensorSpec([None, None], tf.float32, name="window")]
    normalize = model.get_layer("normalize")
    std = 1.0 / float(np.asarray(normalize.scale))
    mean = -float(np.asarray(normalize.offset)) * std
    steps = np.arange(window, dtype="float64")
    examples = {
        "window": [
            (mean + std * np.sin(steps / 3.0)).astype("float32").tolist(),
            (mean - 0.5 * std * np.cos(steps / 5.0)).astype("float32").tolist(),
        ]
    }
    return serve, spec, examples


def _output_names(model):
    # A Sequential model has no `output` until called; its output is never a dict.
    if not isinstance(model, keras.Sequential) and isinstance(model.output, dict):
        return list(model.output)
    return [tensor._keras_history.operation.name for tensor in model.outputs]


def _generic(model, runner):
    names = [tensor.name for tensor in model.inputs]
    outputs = _output_names(model)

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
    return serve, spec, examples


# -------------------------------------------------------------------- step
def _step_functions(model, step_input_spec, prepare, finish):
    """`step(input, *states)` and `initial_state(batch_size)` functions and specs."""
    stepper = ModelStepper(model)
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
        (step, [step_input_spec, *state_specs]),
        (initial_state, [tf.TensorSpec([], tf.int32, name="batch_size")]),
    )


# ------------------------------------------------------------------ build
def build_signatures(model, task, xla=True, top=5):
    """The serving functions of `model` for `task` (see the module docstring)."""
    runners = {"serving_default": _Runner(model, xla=False)}
    notes = []
    if xla:
        try:
            runners["serving_xla"] = _Runner(model, xla=True)
        except ValueError as error:
            notes.append(f"no serving_xla signature: {error}")
    trackables = []
    step_parts = None
    functions = {}
    step_example = None
    if task == NEXT_WORD:
        from keras_seqcells.tasks.next_word import vocabulary_layer

        table = _vocabulary_table(vocabulary_layer(model).vocabulary)
        trackables.append(table)
        for name, runner in runners.items():
            serve, spec, examples, answer = _next_word(model, runner, table, top)
            functions[name] = (serve, spec)

        def prepare(token):
            token = _batch_of_strings(token, "token")
            return table.lookup(tf.strings.lower(token, encoding="utf-8"))

        step_parts = (_string_spec("token"), prepare, answer)
    else:
        build = {
            TEXT_CLASSIFICATION: _text_classification,
            TAGGING: _tagging,
            FORECASTING: _forecasting,
            GENERIC: _generic,
        }[task]
        for name, runner in runners.items():
            serve, spec, examples = build(model, runner)
            functions[name] = (serve, spec)
        if task == FORECASTING:
            output = "forecast"
            step_parts = (
                tf.TensorSpec([None], tf.float32, name="value"),
                lambda value: value[:, None],
                lambda x: {output: tf.cast(x, tf.float32)},
            )
        elif task == GENERIC:
            tensor = model.inputs[0]
            if len(tensor.shape) >= 2:
                outputs = _output_names(model)
                step_parts = (
                    tf.TensorSpec([None, *tensor.shape[2:]], tensor.dtype, name=tensor.name),
                    lambda x: x,
                    lambda x: {outputs[0]: x},
                )
    if task in (TEXT_CLASSIFICATION, TAGGING):
        try:
            ModelStepper(model)
        except StepError as error:
            notes.append(f"no step signature: {error}")
        else:
            notes.append("no step signature: the text is preprocessed as a whole")
    all_examples = {"serving_default": examples}
    if "serving_xla" in functions:
        all_examples["serving_xla"] = examples
    if step_parts is not None:
        try:
            step, initial = _step_functions(model, *step_parts)
        except StepError as error:
            notes.append(f"no step signature: {error}")
        else:
            functions["step"] = step
            functions["initial_state"] = initial
            all_examples["initial_state"] = {"batch_size": 2}
            step_example = _step_example(task, examples, step_parts[0].name)
    return Signatures(functions, trackables, all_examples, step_example, notes)


def _step_example(task, examples, input_name):
    """A sequence fed to `step` and the `serving_default` request it must match."""
    if task == NEXT_WORD:
        prompt = examples["prompt"][0]
        from keras_seqcells.tasks.next_word import tokenize as python_tokenize

        tokens = python_tokenize(prompt)
        return {
            "inputs": [{input_name: [token]} for token in tokens],
            "serving_default": {"prompt": [prompt]},
            "outputs": ["probabilities"],
        }
    if task == FORECASTING:
        window = examples["window"][0]
        return {
            "inputs": [{input_name: [value]} for value in window],
            "serving_default": {"window": [window]},
            "outputs": ["forecast"],
        }
    name, values = next(iter(examples.items()))
    sequence = values[0]
    return {
        "inputs": [{input_name: [value]} for value in sequence],
        "serving_default": {name: [sequence]},
        "outputs": None,
    }


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
