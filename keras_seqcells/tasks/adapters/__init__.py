"""The tasks' export adapters: what each task's SavedModel serves, and how it is checked.

Importing this package registers them (`keras_seqcells.tasks` does); each
module imports its task's helpers, and serving knows only the adapter
interface of `keras_seqcells.serving.adapters`, so dependencies run one way.
"""

from keras_seqcells.tasks.adapters import forecasting, next_word, tagging, text_classification

__all__ = ["forecasting", "next_word", "tagging", "text_classification"]
