"""Text classification: features (head / tail / head+tail truncation), training, prediction."""
from .predict import TextClassifier  # noqa: F401
