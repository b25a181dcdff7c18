"""Extractive question answering: features, postprocessing, prediction, training."""
from .predict import QuestionAnswerer, predict_examples  # noqa: F401
