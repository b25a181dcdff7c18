"""`encoderlab train classify` and `encoderlab predict classify`."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from ..runs import dumps

from . import app, fail, train_app
from .train import D, build_config, comma_list, split_given, train_options

predict_app = typer.Typer(no_args_is_help=True, help="Predict with a fine-tuned model (classify).")
app.add_typer(predict_app, name="predict")


def _classify_config_class():
    from ..classify.train import ClassifyTrainConfig

    return ClassifyTrainConfig


@train_app.command("classify")
@train_options(_classify_config_class(), eval_metrics="loss, accuracy, F1, MCC",
               metrics="accuracy, f1, f1_macro, mcc, loss, precision, recall")
def train_classify_cmd(
    train: Optional[str] = typer.Option(D, "--train", help="Training data: .tsv/.csv with a header (GLUE SST-2 as is), .jsonl(.gz), .json, or hub:NAME[:SPLIT]."),
    eval: Optional[str] = typer.Option(D, "--eval", help="Evaluation data (default: a stratified share of --train, see --validation-fraction)."),
    text_column: Optional[str] = typer.Option(D, "--text-column", help="Column with the text [found by name: sentence, text, review, content, …]."),
    text_pair_column: Optional[str] = typer.Option(D, "--text-pair-column", help="Column with the second text of pairs [sentence2 / hypothesis when present]."),
    label_column: Optional[str] = typer.Option(D, "--label-column", help="Column with the label [found by name: label, labels, sentiment, …]."),
    labels: Optional[str] = typer.Option(D, "--labels", help="Comma-separated label names fixing the label order (default: sorted; integers numerically)."),
    limit: Optional[int] = typer.Option(D, "--limit", help="Train on N texts (a stratified sample with --stratify, the default)."),
    eval_limit: Optional[int] = typer.Option(D, "--eval-limit", help="Evaluate on N texts."),
    stratify: Optional[bool] = typer.Option(D, "--stratify/--no-stratify", help="--limit/--eval-limit keep the class proportions (random, by --seed) or take the first N rows [stratify]."),
    validation_fraction: Optional[float] = typer.Option(D, "--validation-fraction", help="Share of --train held out (stratified) when --eval is not given [0.1]."),
    max_seq_length: Optional[int] = typer.Option(D, "--max-seq-length", help="Tokens per input, special tokens included [128]."),
    truncation: Optional[str] = typer.Option(D, "--truncation", help="How longer texts are cut: head, tail or head+tail (first and last tokens, Sun et al. 2019) [head]."),
    head_tokens: Optional[int] = typer.Option(D, "--head-tokens", help="head+tail: tokens kept from the start [a quarter of --max-seq-length]."),
    **common: Any,
) -> None:
    """Fine-tune an encoder for text classification and write a run directory.

    Example: encoderlab train classify --train ../shared/data/sst2/train.tsv --eval ../shared/data/sst2/dev.tsv
    --epochs 1 --eval-steps 500
    """
    given, ctl = split_given({k: v for k, v in locals().items() if k != "common"} | common)
    from ..classify.train import ClassifyTrainConfig, train_classify

    given["labels"] = comma_list(given["labels"])
    cfg = build_config(ClassifyTrainConfig, ctl["config"], given)
    metrics = train_classify(cfg, resume=ctl["resume"], overwrite=ctl["overwrite"],
                             log=lambda m: typer.echo(m, err=True))
    if ctl["json_out"]:
        typer.echo(dumps(metrics))
        return
    from ..metrics.classification import format_report

    typer.echo(" · ".join(f"{k} {metrics[k]:.4f}" for k in ("accuracy", "f1", "f1_macro", "mcc", "loss")
                          if isinstance(metrics.get(k), float)))
    typer.echo(format_report(metrics))
    typer.echo(f"run directory: {cfg.output_dir} (model in {cfg.output_dir}/model, "
               f"confusion matrix in {cfg.output_dir}/confusion_matrix.png)")


@predict_app.command("classify")
def predict_classify_cmd(
    model: str = typer.Argument(..., help="A run directory, RUN/model, a model directory or a Hub name."),
    texts: Optional[list[str]] = typer.Argument(None, help="Texts to classify (or use --file)."),
    text_pairs: Optional[list[str]] = typer.Option(None, "--pair", help="Second text of a pair, once per text in "
                                                   "order (models trained on text pairs, e.g. sentence1/sentence2)."),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="A data file (.tsv/.csv/.jsonl(.gz)/.json) or hub:NAME[:SPLIT] of texts; with labels, accuracy is printed too."),
    text_column: Optional[str] = typer.Option(None, "--text-column", help="Column with the text \\[found by name]."),
    text_pair_column: Optional[str] = typer.Option(None, "--text-pair-column", help="Column with the second text of pairs."),
    label_column: Optional[str] = typer.Option(None, "--label-column", help="Column with gold labels, to score the predictions \\[found by name, optional]."),
    top_k: int = typer.Option(1, "--top-k", "-k", min=1, help="Labels shown per text, best first."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Texts per forward pass."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N texts of --file."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object per text."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the predictions to this JSON Lines file."),
) -> None:
    """Classify texts with a fine-tuned model: given on the command line or read from a file.

    Example: encoderlab predict classify runs/classify "a gripping film" "two hours of my life lost" --top-k 2
    """
    from ..classify.predict import TextClassifier, predict_dataset

    if texts and file is not None:
        fail("give texts or --file, not both")
    if not texts and file is None:
        fail("nothing to classify: give texts as arguments or --file FILE")
    if text_pairs and file is not None:
        fail("--pair is for texts given as arguments; with --file name the column with --text-pair-column")
    clf = TextClassifier(model, batch_size=batch_size)
    if file is not None:
        rows, metrics = predict_dataset(clf, str(file), text_column=text_column, text_pair_column=text_pair_column,
                                        label_column=label_column, top_k=top_k, limit=limit)
    else:
        pairs = list(text_pairs) if text_pairs else None
        results = clf(list(texts), pairs, top_k=top_k)
        rows = [{"text": t, **({"text_pair": pairs[i]} if pairs else {}), **r} for i, (t, r) in enumerate(zip(texts, results))]
        metrics = None
    if output is not None:
        from ..runs import atomic_write_text

        atomic_write_text(output, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    for r in rows:
        if json_out:
            typer.echo(json.dumps(r, ensure_ascii=False))
        else:
            shown = r.get("top") or [{"label": r["label"], "score": r["score"]}]
            guesses = ", ".join(f"{g['label']} ({100 * g['score']:.1f}%)" for g in shown)
            gold = f"  [gold {r['gold']}]" if "gold" in r else ""
            text = r["text"] if len(r["text"]) <= 80 else r["text"][:77] + "..."
            typer.echo(f"{guesses}{gold}  {text}")
    if metrics is not None:
        summary = (f"accuracy {metrics['accuracy']:.4f} · f1 {metrics['f1']:.4f} · f1_macro {metrics['f1_macro']:.4f} "
                   f"· mcc {metrics['mcc']:.4f} on {metrics['total']} labelled texts")
        typer.echo(summary, err=json_out)
    if output is not None:
        typer.echo(f"wrote {len(rows)} predictions to {output}", err=True)
