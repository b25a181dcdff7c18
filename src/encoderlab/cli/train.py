"""`encoderlab train qa` and the options every `train` command shares (see `train_options`)."""
from __future__ import annotations

import functools
import inspect
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from ..runs import dumps

from ..config import build_config
from ..errors import EncoderlabError
from . import train_app

D = None  # every option defaults to "not given": --config values, then QATrainConfig's defaults, apply


# (name, type, flags, help) of the TrainConfig options shared by every `train` command; "{default}" in a
# help text is filled with the task config's default. Task commands add their own data/feature options.
_HEAD_OPTIONS = [
    ("model", str, ("--model", "-m"), "builtin:minilm-l6, scratch:<preset>, a model directory or a Hub name [{default}]."),
    ("tokenizer", str, ("--tokenizer",), "Tokenizer to use instead of the model's own (a directory, builtin:… or Hub name)."),
]
_TAIL_OPTIONS = [
    ("output_dir", str, ("--output-dir", "-o"), "Run directory [{default}]."),
    ("learning_rate", float, ("--learning-rate", "--lr"), "Peak AdamW learning rate [{default}]."),
    ("train_batch_size", int, ("--train-batch-size",), "Per-device training batch size [{default}]."),
    ("eval_batch_size", int, ("--eval-batch-size",), "Per-device evaluation batch size [{default}]."),
    ("num_train_epochs", float, ("--epochs", "--num-train-epochs"), "Training epochs, may be fractional [{default}]."),
    ("max_steps", int, ("--max-steps",), "Stop after N optimizer steps (overrides --epochs)."),
    ("warmup_ratio", float, ("--warmup-ratio",), "Share of steps with linear warm-up [{default}]."),
    ("weight_decay", float, ("--weight-decay",), "AdamW weight decay [{default}]."),
    ("gradient_accumulation_steps", int, ("--gradient-accumulation-steps",), "Accumulate gradients over N batches [{default}]."),
    ("precision", str, ("--precision",), "auto | fp32 | bf16 | fp16 [auto: bf16/fp16 on a GPU, bf16 on CPUs fast at it, else fp32]."),
    ("seed", int, ("--seed",), "Random seed [{default}]."),
    ("eval_steps", int, ("--eval-steps",), "Evaluate ({eval_metrics}) and checkpoint every N steps [each epoch]."),
    ("logging_steps", int, ("--logging-steps",), "Log the training loss every N steps [{default}]."),
    ("early_stopping_patience", int, ("--early-stopping-patience",), "Stop after N evaluations without improvement of --metric."),
    ("metric_for_best_model", str, ("--metric",), "Metric for early stopping / best model: {metrics} [{default}]."),
]
RUN_CONTROL = ("config", "resume", "resume_or_start", "overwrite", "json_out")


def train_options(config_cls, *, eval_metrics: str, metrics: str) -> Callable:
    """Decorator for a `train TASK` command: adds the shared TrainConfig options and --config/--resume/
    --resume-or-start/--overwrite/--json to its signature. The command receives them as keyword arguments (``**common``).

    Every option defaults to None ("not given"): build_config applies --config values, then the
    task config's defaults (shown in the help texts).
    """
    defaults = {f.name: f.default for f in fields(config_cls) if f.default is not MISSING}

    def option(name, typ, flags, help_text):
        text = help_text.format(default=defaults.get(name), eval_metrics=eval_metrics, metrics=metrics)
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=Optional[typ],
                                 default=typer.Option(D, *flags, help=_escape(text)))

    def decorate(func: Callable) -> Callable:
        own = [p for p in inspect.signature(func).parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD]
        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        for p in own:        # "[384]" would be read as Rich markup and vanish from --help
            if getattr(p.default, "help", None):
                p.default.help = _escape(p.default.help)
        run_control = [
            inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[Path],
                              default=typer.Option(None, "--config", "-c", help="YAML file of these options (names as in RUN/config.yaml); flags override it.")),
            inspect.Parameter("resume", inspect.Parameter.KEYWORD_ONLY, annotation=bool,
                              default=typer.Option(False, "--resume", help="Continue the run in --output-dir from its newest complete checkpoint (refused when there is none).")),
            inspect.Parameter("resume_or_start", inspect.Parameter.KEYWORD_ONLY, annotation=bool,
                              default=typer.Option(False, "--resume-or-start", help="Like --resume, but start from the beginning when --output-dir has no complete checkpoint.")),
            inspect.Parameter("overwrite", inspect.Parameter.KEYWORD_ONLY, annotation=bool,
                              default=typer.Option(False, "--overwrite", help="Replace an existing run directory (deleted only after every option and the data are checked).")),
            inspect.Parameter("json_out", inspect.Parameter.KEYWORD_ONLY, annotation=bool,
                              default=typer.Option(False, "--json", help="Print the final metrics as JSON.")),
        ]
        params = ([option(*o) for o in _HEAD_OPTIONS] + own + [option(*o) for o in _TAIL_OPTIONS] + run_control)

        @functools.wraps(func)
        def wrapper(**kwargs):
            return func(**kwargs)

        wrapper.__signature__ = inspect.Signature(params)
        return wrapper

    return decorate


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def split_given(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config values, run-control values) of a decorated command's keyword arguments; paths become str;
    run control "resume" is False, True or "auto" (--resume-or-start)."""
    given = {k: (str(v) if isinstance(v, Path) else v) for k, v in kwargs.items() if k not in RUN_CONTROL}
    ctl = {k: kwargs[k] for k in RUN_CONTROL}
    if ctl.pop("resume_or_start"):      # the library's resume="auto"
        ctl["resume"] = "auto"
    return given, ctl


def comma_list(value: Optional[str]) -> Optional[list[str]]:
    return None if value is None else [t.strip() for t in value.split(",") if t.strip()]


def _qa_config_class():
    from ..qa.train import QATrainConfig

    return QATrainConfig


@train_app.command("qa")
@train_options(_qa_config_class(), eval_metrics="loss, EM, F1",
               metrics="f1, exact, loss, correct, modified_exact, HasAns_f1, NoAns_exact")
def train_qa_cmd(
    train: Optional[str] = typer.Option(D, "--train", help="Training data: builtin:squad-sample (default), SQuAD .json (v1.1/v2.0), .jsonl, or hub:NAME[:SPLIT]."),
    eval: Optional[str] = typer.Option(D, "--eval", help="Evaluation data (default: carve whole articles out of --train, see --validation-fraction)."),
    split_file: Optional[Path] = typer.Option(D, "--split-file", help="JSON {part: [article titles]} used by --train-split/--eval-split (builtin data sets bring their own)."),
    train_split: Optional[str] = typer.Option(D, "--train-split", help="Part of the split file to train on, e.g. train."),
    eval_split: Optional[str] = typer.Option(D, "--eval-split", help="Part of the split file to evaluate on, e.g. test."),
    train_titles: Optional[str] = typer.Option(D, "--train-titles", help="Comma-separated article titles to train on (with or instead of --train-split)."),
    eval_titles: Optional[str] = typer.Option(D, "--eval-titles", help="Comma-separated article titles to evaluate on."),
    limit: Optional[int] = typer.Option(D, "--limit", help="Train on the first N questions only."),
    eval_limit: Optional[int] = typer.Option(D, "--eval-limit", help="Evaluate on the first N questions only."),
    validation_fraction: Optional[float] = typer.Option(D, "--validation-fraction", help="Share of training articles held out when --eval is not given [0.05]."),
    max_seq_length: Optional[int] = typer.Option(D, "--max-seq-length", help="Window length in tokens [384]."),
    doc_stride: Optional[int] = typer.Option(D, "--doc-stride", help="Context tokens shared by consecutive windows [128]."),
    max_query_length: Optional[int] = typer.Option(D, "--max-query-length", help="Questions are cut to N tokens [64]."),
    n_best_size: Optional[int] = typer.Option(D, "--n-best-size", help="Candidates kept per question [20]."),
    max_answer_length: Optional[int] = typer.Option(D, "--max-answer-length", help="Longest answer in tokens [30]."),
    null_threshold: Optional[float] = typer.Option(D, "--null-threshold", help="SQuAD v2.0: answer nothing when null score - best score > this [0]."),
    on_bad_answer: Optional[str] = typer.Option(D, "--on-bad-answer", help="Answer text not at answer_start: repair (nearest occurrence), skip, error [repair]."),
    **common: Any,
) -> None:
    """Fine-tune an encoder for extractive QA (SQuAD v1.1 / v2.0) and write a run directory.

    Example: encoderlab train qa --train ../shared/data/squad-v1.1/dev-v1.1.json
    --split-file ../shared/data/squad-v1.1/split.json --train-split train --eval-split test
    """
    given, ctl = split_given({k: v for k, v in locals().items() if k != "common"} | common)
    from ..qa.train import QATrainConfig, train_qa

    given["train_titles"], given["eval_titles"] = comma_list(given["train_titles"]), comma_list(given["eval_titles"])
    cfg = build_config(QATrainConfig, ctl["config"], given)
    metrics = train_qa(cfg, resume=ctl["resume"], overwrite=ctl["overwrite"], log=lambda m: typer.echo(m, err=True))
    _print_final(metrics, cfg.output_dir, ctl["json_out"])


def _print_final(metrics: dict, output_dir: str, json_out: bool) -> None:
    if json_out:
        typer.echo(dumps(metrics))
        return
    keys = [k for k in ("exact", "f1", "HasAns_f1", "NoAns_exact", "best_f1", "modified_exact", "loss") if k in metrics]
    typer.echo(" · ".join(f"{k} {metrics[k]:.2f}" for k in keys))
    typer.echo(f"run directory: {output_dir} (model in {output_dir}/model)")
