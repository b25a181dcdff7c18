"""Extractive question answering: config, features, postprocessing, prediction, training.

`QuestionAnswerer` and `predict_examples` are imported on first use, so that ``encoderlab.qa.config`` (the
CLI's options) loads without torch.
"""
from __future__ import annotations

_LAZY = {"QuestionAnswerer": "predict", "predict_examples": "predict", "QATrainConfig": "config", "train_qa": "train"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_LAZY)
