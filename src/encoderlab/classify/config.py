"""The options of `train classify` (torch-free: the CLI builds its options from these fields)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

from ..config import TrainConfig, option
from ..errors import EncoderlabError

_DATA, _INPUTS = "Data", "Inputs"


@dataclass
class ClassifyTrainConfig(TrainConfig):
    output_dir: str = option("runs/classify", "Run directory.", "--output-dir", "-o", panel="Training")
    train: str = option("", "Training data: .tsv/.csv with a header (GLUE SST-2 as is), .jsonl(.gz), .json, or "
                        "hub:NAME[:CONFIG][:SPLIT].", panel=_DATA, show_default=False)
    eval: Optional[str] = option(None, "Evaluation data (default: a stratified share of --train, see "
                                 "--validation-fraction).", panel=_DATA)
    text_column: Optional[str] = option(None, "Column with the text [found by name: sentence, text, review, content, …].",
                                        panel=_DATA, show_default=False)
    text_pair_column: Optional[str] = option(None, "Column with the second text of pairs [sentence2 / hypothesis when "
                                             "present].", panel=_DATA, show_default=False)
    label_column: Optional[str] = option(None, "Column with the label [found by name: label, labels, sentiment, …].",
                                         panel=_DATA, show_default=False)
    labels: Optional[list[str]] = option(None, "Comma-separated label names fixing the label order (default: sorted; "
                                         "integers numerically).", panel=_DATA)
    limit: Optional[int] = option(None, "Train on N texts (a stratified sample with --stratify, the default).",
                                  panel=_DATA)
    eval_limit: Optional[int] = option(None, "Evaluate on N texts.", panel=_DATA)
    stratify: bool = option(True, "--limit/--eval-limit keep the class proportions (random, by --seed) or take the "
                            "first N rows.", panel=_DATA)
    validation_fraction: float = option(0.1, "Share of the selected --train texts (after --limit) held out, stratified, when --eval is not given.",
                                        panel=_DATA)
    max_seq_length: int = option(128, "Tokens per input, special tokens included.", panel=_INPUTS)
    truncation: str = option("head", "How longer texts are cut: head, tail or head+tail (first and last tokens, "
                             "Sun et al. 2019).", panel=_INPUTS)
    head_tokens: Optional[int] = option(None, "head+tail: tokens kept from the start [a quarter of --max-seq-length].",
                                        panel=_INPUTS, show_default=False)
    num_train_epochs: float = option(3.0, "Training epochs, may be fractional.", "--epochs", "--num-train-epochs",
                                     panel="Training")
    learning_rate: float = option(5e-5, "Peak AdamW learning rate.", "--learning-rate", "--lr", panel="Training")
    train_batch_size: int = option(32, "Per-device training batch size.", panel="Training")
    metric_for_best_model: Optional[str] = option("accuracy", "Metric for early stopping and the best model.", "--metric",
                                                  panel="Training")

    RANGES: ClassVar[dict[str, tuple]] = {
        "limit": (1, None, True, True), "eval_limit": (1, None, True, True),
        "validation_fraction": (0, 1, False, False), "max_seq_length": (4, None, True, True),
        "head_tokens": (0, None, True, True),
    }

    def validate(self) -> None:
        super().validate()
        from ..data.text import TRUNCATIONS

        if self.truncation not in TRUNCATIONS:
            raise EncoderlabError(f"truncation must be one of {', '.join(TRUNCATIONS)}, not '{self.truncation}'")
