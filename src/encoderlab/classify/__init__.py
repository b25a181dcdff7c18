"""Text classification: config, features (head / tail / head+tail truncation), training, prediction.

Members are imported on first use, so that ``encoderlab.classify.config`` loads without torch.
"""
from __future__ import annotations

_LAZY = {"TextClassifier": "predict", "ClassifyTrainConfig": "config", "train_classify": "train"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_LAZY)
