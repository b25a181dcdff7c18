"""Masked-language-model pretraining (optionally with next-sentence prediction) and perplexity.

    from encoderlab.mlm import PretrainConfig, pretrain
    metrics = pretrain(PretrainConfig(model="scratch:bert-mini", corpus="wiki.train.raw", num_train_epochs=3))

Modules: `corpus` (reading documents), `features` (packing, NSP pairs, masking collator),
`evaluate` (perplexity on fixed held-out masks), `train` (the run).
"""
from __future__ import annotations

_LAZY = {"Corpus": "corpus", "Document": "corpus", "hold_out": "corpus", "load_corpus": "corpus",
         "split_sentences": "corpus", "MaskedLMEvaluator": "evaluate", "perplexity": "evaluate",
         "MaskingCollator": "features", "PretrainFeatures": "features", "build_features": "features",
         "make_nsp_pairs": "features", "pack_for_mlm": "features", "PretrainConfig": "config",
         "epoch_table": "train", "format_table": "train", "pretrain": "train"}


def __getattr__(name: str):
    """Members are imported on first use, so that ``encoderlab.mlm.config`` loads without torch."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_LAZY)
