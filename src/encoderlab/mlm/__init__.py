"""Masked-language-model pretraining (optionally with next-sentence prediction) and perplexity.

    from encoderlab.mlm import PretrainConfig, pretrain
    metrics = pretrain(PretrainConfig(model="scratch:bert-mini", corpus="wiki.train.raw", num_train_epochs=3))

Modules: `corpus` (reading documents), `features` (packing, NSP pairs, masking collator),
`evaluate` (perplexity on fixed held-out masks), `train` (the run).
"""
from .corpus import Corpus, Document, hold_out, load_corpus, split_sentences
from .evaluate import MaskedLMEvaluator, perplexity
from .features import MaskingCollator, PretrainFeatures, build_features, make_nsp_pairs, pack_for_mlm
from .train import PretrainConfig, epoch_table, format_table, pretrain

__all__ = ["Corpus", "Document", "MaskedLMEvaluator", "MaskingCollator", "PretrainConfig", "PretrainFeatures",
           "build_features", "epoch_table", "format_table", "hold_out", "load_corpus", "make_nsp_pairs",
           "pack_for_mlm", "perplexity", "pretrain", "split_sentences"]
