"""The options of `train qa` (torch-free: the CLI builds its options from these fields)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

from ..config import TrainConfig, best_metric, option, option_flag
from ..errors import EncoderlabError

_DATA, _WINDOWS = "Data", "QA windows and answers"


@dataclass
class QATrainConfig(TrainConfig):
    output_dir: str = option("runs/qa", "Run directory.", "--output-dir", "-o", panel="Training")
    train: str = option("builtin:squad-sample", "Training data: builtin:squad-sample, SQuAD .json (v1.1/v2.0), .jsonl, "
                        "or hub:NAME[:CONFIG][:SPLIT].", panel=_DATA)
    eval: Optional[str] = option(None, "Evaluation data (default: carve a share of the selected --train questions out, see "
                                 "--validation-fraction).", panel=_DATA)
    split_file: Optional[str] = option(None, "JSON {part: [article titles]} used by --train-split/--eval-split "
                                       "(builtin data sets bring their own).", panel=_DATA)
    train_split: Optional[str] = option(None, "Part of the split file to train on, e.g. train.", panel=_DATA)
    eval_split: Optional[str] = option(None, "Part of the split file to evaluate on, e.g. test.", panel=_DATA)
    train_titles: Optional[list[str]] = option(None, "Comma-separated article titles to train on (with or instead of "
                                               "--train-split).", panel=_DATA)
    eval_titles: Optional[list[str]] = option(None, "Comma-separated article titles to evaluate on.", panel=_DATA)
    limit: Optional[int] = option(None, "Select the first N questions for training (the validation carve-out comes out of them).", panel=_DATA)
    eval_limit: Optional[int] = option(None, "Evaluate on the first N questions only.", panel=_DATA)
    validation_fraction: float = option(0.05, "Share of the selected training questions held out (whole articles, else whole paragraphs) when --eval is not given.",
                                        panel=_DATA)
    on_bad_answer: str = option("repair", "Answer text not at answer_start: repair (nearest occurrence), skip, error.",
                                panel=_DATA)
    max_seq_length: int = option(384, "Window length in tokens.", panel=_WINDOWS)
    doc_stride: int = option(128, "Context tokens shared by consecutive windows.", panel=_WINDOWS)
    max_query_length: int = option(64, "Questions are cut to N tokens.", panel=_WINDOWS)
    n_best_size: int = option(20, "Candidates kept per question.", panel=_WINDOWS)
    max_answer_length: int = option(30, "Longest answer in tokens.", panel=_WINDOWS)
    null_threshold: float = option(0.0, "SQuAD v2.0: answer nothing when null score - best score > this.",
                                   panel=_WINDOWS)
    metric_for_best_model: Optional[str] = option("f1", "Metric for early stopping and the best model.", "--metric",
                                                  panel="Training")
    extra_metrics: Optional[list[str]] = option(None, "Text-overlap metrics added to every evaluation (history.jsonl, "
                                                 "metrics.json): a comma list of bleu, rouge, meteor (docs/metrics.md).",
                                                 panel="Training")

    # The 30-minute CPU recipe (recipes/minilm-squad-30min, docs/recipe.md): equal-budget sweeps on the validation
    # carve-out of SQuAD v1.1 dev's train half put MiniLM's best learning rate at 2e-4 (1.2e-4: F1 19.5, 2e-4: 38.4,
    # 3e-4: 27.3, 5e-4: 12.7 after 8 minutes, batch 16); layer-wise decay 0.8 helped only at 5e-4 and stays off;
    # batch 8 beat 16 in the same minutes (F1 52.4 vs 45.7; batch 4: 51.2); averaging the weights of the last half of
    # the steps beat the last weights under both schedules tried (linear: 44.3 vs 40.6, constant: 40.2 vs 37.8).
    MODEL_DEFAULTS: ClassVar[dict[str, dict]] = {
        "builtin:minilm-l6": {"learning_rate": 2e-4, "train_batch_size": 8, "weight_averaging": 0.5,
                              "attention_dropout": 0.0}}

    RANGES: ClassVar[dict[str, tuple]] = {
        "limit": (1, None, True, True), "eval_limit": (1, None, True, True),
        "validation_fraction": (0, 1, False, False), "max_seq_length": (16, None, True, True),
        "doc_stride": (0, None, True, True), "max_query_length": (1, None, True, True),
        "n_best_size": (1, None, True, True), "max_answer_length": (1, None, True, True),
        "null_threshold": (None, None, True, True),
    }

    def overlap_metrics(self) -> tuple[str, ...]:
        """The text-overlap metric names of --extra-metrics, checked (``bleu``, ``rouge``, ``meteor``)."""
        from ..metrics.overlap import parse_metric_names

        return parse_metric_names(self.extra_metrics, f"extra_metrics ({option_flag(type(self), 'extra_metrics')})")

    def metric_requirement(self, name: str) -> str | None:
        """A text-overlap metric is reported only when --extra-metrics computes it: ``--extra-metrics GROUP``."""
        from ..metrics.overlap import METRIC_KEYS, NAMES, NO_SYNONYMS, wordnet_dir

        if name not in METRIC_KEYS:
            return None
        group = next((g for g, keys in NAMES.items() if name in keys), "meteor")    # meteor_no_synonyms: meteor
        if group not in self.overlap_metrics():
            return f"--extra-metrics {group}"
        if group == "meteor":       # one of meteor / meteor_no_synonyms, by whether the WordNet files are here
            produced = "meteor" if wordnet_dir() is not None else NO_SYNONYMS
            if name != produced:
                return f"{'the WordNet files' if name == 'meteor' else 'no WordNet files'} (here: {produced})"
        return None

    def selection_metric(self) -> tuple[str, bool]:
        """As every task, but a text-overlap metric only when --extra-metrics computes it."""
        name = self.metric_for_best_model
        needs = self.metric_requirement(name) if name else None
        if needs:
            raise EncoderlabError(f"metric_for_best_model ({option_flag(type(self), 'metric_for_best_model')}) "
                                  f"'{name}' is computed only with {needs}")
        return best_metric(self, allowed=lambda m: not self.metric_requirement(m))

    def validate(self) -> None:
        super().validate()
        self.overlap_metrics()
        if self.on_bad_answer not in ("repair", "skip", "error"):
            raise EncoderlabError(f"on_bad_answer (--on-bad-answer) must be repair, skip or error, not '{self.on_bad_answer}'")
        for name in ("doc_stride", "max_query_length"):
            if getattr(self, name) >= self.max_seq_length:
                raise EncoderlabError(f"{name} ({option_flag(type(self), name)}) must be less than max_seq_length "
                                      f"({self.max_seq_length}), not {getattr(self, name)}")
