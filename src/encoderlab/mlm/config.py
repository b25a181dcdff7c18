"""The options of `train mlm` / `pretrain` (torch-free: the CLI builds its options from these fields)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

from ..config import TrainConfig, best_metric, option
from ..errors import EncoderlabError

_DATA, _OBJECTIVE = "Data", "Objective"
OBJECTIVES = ("mlm", "mlm+nsp")
NSP_METRICS = ("nsp_accuracy", "nsp_loss")   # need the NSP head (objective mlm+nsp)


@dataclass
class PretrainConfig(TrainConfig):
    model: str = option("scratch:bert-mini", "builtin:minilm-l6, scratch:<preset>, a model or run directory, or a Hub "
                        "name.", "--model", "-m", panel="Model")
    output_dir: str = option("runs/pretrain", "Run directory.", "--output-dir", "-o", panel="Training")
    corpus: Optional[str] = option(None, "Text to pretrain on: a text file (WikiText conventions), a directory of them, "
                                   ".jsonl(.gz) with --text-field, or hub:NAME[:CONFIG][:SPLIT].", panel=_DATA)
    eval_corpus: Optional[str] = option(None, "Held-out text for perplexity (default: hold out --validation-fraction of "
                                        "the corpus' documents).", panel=_DATA)
    text_field: str = option("text", "JSONL field / Hub column holding the text.", panel=_DATA)
    limit: Optional[int] = option(None, "Read the first N documents of --corpus only.", panel=_DATA)
    validation_fraction: float = option(0.05, "Share of documents held out when --eval-corpus is not given.",
                                        "--validation-fraction", "--eval-fraction", panel=_DATA,
                                        aliases=("eval_fraction",))
    objective: str = option("mlm", "mlm, or mlm+nsp (BERT's next-sentence prediction too; BERT-type models).",
                            panel=_OBJECTIVE)
    mlm_probability: float = option(0.15, "Share of tokens masked (80% [MASK], 10% random, 10% kept).",
                                    panel=_OBJECTIVE)
    whole_word_mask: bool = option(False, "Mask all word pieces of a chosen word together.", panel=_OBJECTIVE)
    max_seq_length: int = option(128, "Tokens per packed sequence, special tokens included.", panel=_OBJECTIVE)
    eval_before_training: bool = option(True, "Measure the perplexity before the first step (epoch 0).",
                                        panel=_OBJECTIVE)
    learning_rate: float = option(1e-4, "Peak AdamW learning rate.", "--learning-rate", "--lr", panel="Training")
    eval_batch_size: int = option(32, "Per-device evaluation batch size (MLM logits are batch x length x vocabulary "
                                  "floats).", panel="Training")
    metric_for_best_model: Optional[str] = option("loss", "Metric for early stopping and the best model.", "--metric",
                                                  panel="Training")

    RANGES: ClassVar[dict[str, tuple]] = {
        "limit": (1, None, True, True), "validation_fraction": (0, 1, False, False),
        "max_seq_length": (8, None, True, True), "mlm_probability": (0, 1, False, False),
    }

    def validate(self) -> None:
        if self.objective not in OBJECTIVES:
            raise EncoderlabError(f"unknown objective '{self.objective}' (known: {', '.join(OBJECTIVES)})")
        super().validate()

    def selection_metric(self) -> tuple[str, bool]:
        """(metric, greater_is_better) that picks the best model: the registry's masked-LM metrics, the NSP
        ones only with an NSP head."""
        return best_metric(self, allowed=lambda name: self.objective == "mlm+nsp" or name not in NSP_METRICS)
