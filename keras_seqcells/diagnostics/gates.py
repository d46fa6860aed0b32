"""What `keras-seqcells gates` shows: every gate over one input, and what the model makes of it.

`gate_view` traces every recurrent layer of a model (`trace_model`) over one
input given as text, the way a person types it: a text for a model on raw
text (text classification, tagging), a prompt for a next-word model, or
comma-separated numbers for a model on numeric sequences (forecasting). For
a next-word model it adds the likeliest next words after each step of the
prompt; for a numeric model, the input values of the steps the recurrent
layers see. `keras_seqcells.diagnostics.plots.plot_gates` draws a view.
"""

import dataclasses

import numpy as np

from keras_seqcells._checks import check_positive_int
from keras_seqcells.diagnostics.trace import model_example, trace_model
from keras_seqcells.stepping import find_layers
from keras_seqcells.tasks.next_word import Vocabulary, next_words_by_step, tokenize


@dataclasses.dataclass
class GateView:
    """The gates of a model's recurrent layers over one input, with the input's context.

    Args:
        traces: What `trace_model` returns: one dict per recurrent layer (and
            direction) with its `"name"`, `"gates"` (gate name to an array
            of shape `(units, steps)`) and `"labels"` (one per step).
        next_words: For a next-word model, one list per step of the prompt
            of `(word, probability)` pairs, the likeliest next words after
            that step; else None.
        values: For a model on numeric sequences, the input values of the
            steps the first recurrent layer sees, shape `(steps, features)`;
            else None.
    """

    traces: list
    next_words: list | None = None
    values: np.ndarray | None = None

    @property
    def labels(self):
        """The step labels of the first recurrent layer (tokens, or step numbers)."""
        return self.traces[0]["labels"]


def parse_numbers(text, features):
    """The steps of a numeric sequence typed as comma- (or space-) separated numbers.

    Args:
        text: The numbers, step after step (`features` numbers per step).
        features: The number of values per step.

    Returns:
        A list of steps, each a list of `features` floats.
    """
    try:
        values = [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise ValueError(
            "Expected comma-separated numbers for a model on numeric sequences. "
            f"Received: input={text!r}"
        ) from None
    if not values or len(values) % features:
        raise ValueError(
            f"Expected a non-empty list of numbers, a multiple of the model's {features} "
            f"feature(s). Received: input={text!r}"
        )
    return [values[i : i + features] for i in range(0, len(values), features)]


def _vocabulary(model):
    found = find_layers(model, Vocabulary)
    return found[0] if found else None


def inputs_from_text(model, text):
    """One input of `model` from text as a person types it.

    Args:
        model: A `keras.Model` with one input.
        text: A text for a model on raw text; a prompt for a next-word model
            (one with a `Vocabulary` layer); comma-separated numbers for a
            model on numeric sequences.

    Returns:
        What `trace_model` and `model_example` take: the text itself, the
        prompt's token ids, or the list of steps.
    """
    vocabulary = _vocabulary(model)
    if vocabulary is not None:
        tokens = tokenize(text) if isinstance(text, str) else []
        if not tokens:
            raise ValueError(
                f"Expected a prompt with words for a next-word model. Received: input={text!r}"
            )
        return vocabulary.ids(tokens)
    if model.inputs[0].dtype == "string":
        return text
    return parse_numbers(text, model.inputs[0].shape[-1])


def gate_view(model, inputs, top=3):
    """Traces every recurrent layer of a model over one input, with the input's context.

    Args:
        model: A `keras.Model` with keras_seqcells recurrent layers and one
            input, such as a task model loaded from its `.keras` file.
        inputs: One input, as text (see `inputs_from_text`) or as what
            `trace_model` takes.
        top: Number of next words per step, for a next-word model.

    Returns:
        A `GateView`.

    Example:

    >>> view = gate_view(model, "the just man", top=2)  # a next-word model
    >>> view.labels
    ['the', 'just', 'man']
    >>> len(view.next_words), len(view.next_words[0])
    (3, 2)
    """
    check_positive_int("top", top)
    vocabulary = _vocabulary(model)
    if vocabulary is not None:
        if not isinstance(inputs, str):
            raise TypeError(
                f"Expected a prompt (a string) for a next-word model. Received: inputs={inputs!r}"
            )
        traces = trace_model(model, inputs_from_text(model, inputs))
        tokens, next_words = next_words_by_step(model, inputs, top)
        for item in traces:
            item["labels"] = [tokens[step] for step in item["steps"]]
        return GateView(traces, next_words=next_words)
    if isinstance(inputs, str):
        inputs = inputs_from_text(model, inputs)
    traces = trace_model(model, inputs)
    if model.inputs[0].dtype == "string" or "int" in str(model.inputs[0].dtype):
        return GateView(traces)
    first = traces[0]
    steps = model_example(model, inputs)[0]
    # A layer fed fewer steps than the input (a forecasting model crops the
    # older rows of a seasonal window) sees the latest ones.
    values = steps.reshape(len(steps), -1)[-first["length"] :][first["steps"]]
    return GateView(traces, values=values)
