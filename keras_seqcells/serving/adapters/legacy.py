"""The task of a model saved before task models kept their task's name.

Task models are built as `TaskModel`s, whose config holds the task's name
(see `keras_seqcells.serving.adapters`). Models built and saved by earlier
versions are plain functional models; this module recognises their task
from what those tasks built, as the export did before: the next-word task's
`Vocabulary` layer, the tagger's `TagProbabilities`, the text classifier's
single string input `text`, and the forecaster's input `window` with a
`normalize` layer. It is used for models without a task name only, and
names `"generic"` for any other model.
"""

import keras

from keras_seqcells.stepping import find_layers, layer_names


def recognise_task(model):
    """The name of the task that built `model`, recognised from its layers and inputs.

    The task layers are recognised by their registered names, so that this
    module needs no import of the task modules (which import serving).
    """
    registered = {
        keras.saving.get_registered_name(type(layer))
        for layer in find_layers(model, keras.layers.Layer)
    }
    if "keras_seqcells>Vocabulary" in registered:
        return "next-word"
    if "keras_seqcells>TagProbabilities" in registered:
        return "tagging"
    names = [tensor.name for tensor in model.inputs]
    if len(names) == 1 and model.inputs[0].dtype == "string" and names[0] == "text":
        return "text-classification"
    if names == ["window"] and "normalize" in layer_names(model):
        return "forecasting"
    return "generic"
