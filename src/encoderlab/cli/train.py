"""`encoderlab train qa`."""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any, Optional

import typer

from ..errors import EncoderlabError
from . import train_app

D = None  # every option defaults to "not given": --config values, then QATrainConfig's defaults, apply


def load_config_file(path: Path, allowed: list[str]) -> dict[str, Any]:
    import yaml

    from ..data.io import read_text

    try:
        data = yaml.safe_load(read_text(path)) or {}
    except yaml.YAMLError as exc:
        raise EncoderlabError(f"{path}: malformed YAML ({str(exc).splitlines()[0]})") from exc
    if not isinstance(data, dict):
        raise EncoderlabError(f"{path}: a config file is a mapping of option names to values")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise EncoderlabError(f"{path}: unknown option(s) {', '.join(unknown)} (valid: {', '.join(allowed)})")
    return data


def build_config(cls, config_file: Optional[Path], given: dict[str, Any]):
    names = [f.name for f in fields(cls)]
    values = load_config_file(config_file, names) if config_file else {}
    values.update({k: v for k, v in given.items() if v is not None})
    types = {f.name: f.type for f in fields(cls)}
    for k, v in values.items():   # YAML gives ints for floats and strings for numbers; coerce simple types
        t = str(types[k])
        try:
            if "float" in t and isinstance(v, (int, str)) and not isinstance(v, bool):
                values[k] = float(v)
            elif t.startswith("int") and isinstance(v, str):
                values[k] = int(v)
        except ValueError as exc:
            raise EncoderlabError(f"option {k}: expected a number, got {v!r}") from exc
    return cls(**values)


@train_app.command("qa")
def train_qa_cmd(
    model: Optional[str] = typer.Option(D, "--model", "-m", help="builtin:minilm-l6 (default), scratch:<preset>, a model directory or a Hub name."),
    tokenizer: Optional[str] = typer.Option(D, "--tokenizer", help="Tokenizer to use instead of the model's own (a directory, builtin:… or Hub name)."),
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
    output_dir: Optional[str] = typer.Option(D, "--output-dir", "-o", help="Run directory [runs/qa]."),
    learning_rate: Optional[float] = typer.Option(D, "--learning-rate", "--lr", help="Peak AdamW learning rate [5e-5]."),
    train_batch_size: Optional[int] = typer.Option(D, "--train-batch-size", help="Per-device training batch size [16]."),
    eval_batch_size: Optional[int] = typer.Option(D, "--eval-batch-size", help="Per-device evaluation batch size [64]."),
    num_train_epochs: Optional[float] = typer.Option(D, "--epochs", "--num-train-epochs", help="Training epochs, may be fractional [2]."),
    max_steps: Optional[int] = typer.Option(D, "--max-steps", help="Stop after N optimizer steps (overrides --epochs)."),
    warmup_ratio: Optional[float] = typer.Option(D, "--warmup-ratio", help="Share of steps with linear warm-up [0.1]."),
    weight_decay: Optional[float] = typer.Option(D, "--weight-decay", help="AdamW weight decay [0.01]."),
    gradient_accumulation_steps: Optional[int] = typer.Option(D, "--gradient-accumulation-steps", help="Accumulate gradients over N batches [1]."),
    precision: Optional[str] = typer.Option(D, "--precision", help="auto | fp32 | bf16 | fp16 [auto: bf16/fp16 on a GPU, fp32 on CPU]."),
    seed: Optional[int] = typer.Option(D, "--seed", help="Random seed [42]."),
    eval_steps: Optional[int] = typer.Option(D, "--eval-steps", help="Evaluate (loss, EM, F1) and checkpoint every N steps [each epoch]."),
    logging_steps: Optional[int] = typer.Option(D, "--logging-steps", help="Log the training loss every N steps [25]."),
    early_stopping_patience: Optional[int] = typer.Option(D, "--early-stopping-patience", help="Stop after N evaluations without improvement of --metric."),
    metric_for_best_model: Optional[str] = typer.Option(D, "--metric", help="Metric for early stopping / best model: f1, exact, loss, correct, modified_exact [f1]."),
    max_seq_length: Optional[int] = typer.Option(D, "--max-seq-length", help="Window length in tokens [384]."),
    doc_stride: Optional[int] = typer.Option(D, "--doc-stride", help="Context tokens shared by consecutive windows [128]."),
    max_query_length: Optional[int] = typer.Option(D, "--max-query-length", help="Questions are cut to N tokens [64]."),
    n_best_size: Optional[int] = typer.Option(D, "--n-best-size", help="Candidates kept per question [20]."),
    max_answer_length: Optional[int] = typer.Option(D, "--max-answer-length", help="Longest answer in tokens [30]."),
    null_threshold: Optional[float] = typer.Option(D, "--null-threshold", help="SQuAD v2.0: answer nothing when null score - best score > this [0]."),
    on_bad_answer: Optional[str] = typer.Option(D, "--on-bad-answer", help="Answer text not at answer_start: repair (nearest occurrence), skip, error [repair]."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML file of these options (names as in RUN/config.yaml); flags override it."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --output-dir from its last checkpoint."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run directory."),
    json_out: bool = typer.Option(False, "--json", help="Print the final metrics as JSON."),
) -> None:
    """Fine-tune an encoder for extractive QA (SQuAD v1.1 / v2.0) and write a run directory.

    Example: encoderlab train qa --train ../shared/data/squad-v1.1/dev-v1.1.json
    --split-file ../shared/data/squad-v1.1/split.json --train-split train --eval-split test
    """
    given = {k: v for k, v in locals().items() if k not in ("config", "resume", "overwrite", "json_out")}
    from ..qa.train import QATrainConfig, train_qa

    given = {k: (str(v) if isinstance(v, Path) else v) for k, v in given.items()}
    for key in ("train_titles", "eval_titles"):
        if given[key] is not None:
            given[key] = [t.strip() for t in given[key].split(",") if t.strip()]
    cfg = build_config(QATrainConfig, config, given)
    metrics = train_qa(cfg, resume=resume, overwrite=overwrite, log=lambda m: typer.echo(m, err=True))
    _print_final(metrics, cfg.output_dir, json_out)


def _print_final(metrics: dict, output_dir: str, json_out: bool) -> None:
    import json

    if json_out:
        typer.echo(json.dumps(metrics))
        return
    keys = [k for k in ("exact", "f1", "HasAns_f1", "NoAns_exact", "best_f1", "modified_exact", "loss") if k in metrics]
    typer.echo(" · ".join(f"{k} {metrics[k]:.2f}" for k in keys))
    typer.echo(f"run directory: {output_dir} (model in {output_dir}/model)")
