"""`encoderlab evaluate`: official SQuAD metrics for a prediction file or a model."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..config import INFERENCE_BATCH_SIZE
from . import app, fail, precision_option


def warn_no_synonyms(metrics: dict) -> None:
    """One warning line when METEOR had to run without WordNet (its key says so too)."""
    from ..metrics.overlap import NO_SYNONYMS, NO_WORDNET

    if NO_SYNONYMS in metrics:
        typer.echo(f"warning: {NO_WORDNET}", err=True)


@app.command("evaluate")
def evaluate_cmd(
    data: str = typer.Option(..., "--data", "-d", help="Gold data: SQuAD .json (v1.1/v2.0), .jsonl, builtin:squad-sample or hub:NAME[:CONFIG][:SPLIT]."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Predict with this QA model (a run's model directory, builtin:…, Hub name)."),
    predictions: Optional[Path] = typer.Option(None, "--predictions", "-p", help="Official prediction file {id: answer text}."),
    na_probs: Optional[Path] = typer.Option(None, "--na-probs", help="SQuAD v2.0 no-answer scores {id: float} (e.g. RUN/null_odds.json): adds best_exact/best_f1 and thresholds."),
    na_prob_thresh: float = typer.Option(1.0, "--na-prob-thresh", help="Official v2.0 threshold: predict no answer where na_prob > this."),
    split_file: Optional[Path] = typer.Option(None, "--split-file", help="JSON {part: [article titles]} for --part."),
    part: Optional[str] = typer.Option(None, "--part", help="Evaluate only this part of the split file, e.g. test."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N questions (with --model)."),
    output: Optional[Path] = typer.Option(None, "--save-predictions", help="With --model: write the predictions here (official format)."),
    max_seq_length: Optional[int] = typer.Option(None, "--max-seq-length", help="With --model: window length \\[as the model was trained, else 384]."),
    doc_stride: Optional[int] = typer.Option(None, "--doc-stride", help="With --model: context tokens shared by windows \\[as trained, else 128]."),
    max_query_length: Optional[int] = typer.Option(None, "--max-query-length", help="With --model: question tokens kept \\[as trained, else 64]."),
    batch_size: int = typer.Option(INFERENCE_BATCH_SIZE, "--batch-size", help="With --model: evaluation batch size."),
    precision: str = precision_option("With --model: inference precision"),
    metrics_opt: Optional[str] = typer.Option(None, "--metrics", help="Also text-overlap metrics, a comma list of bleu, rouge, meteor (keys bleu, rouge1, rouge2, rougeL, meteor; docs/metrics.md)."),
    json_out: bool = typer.Option(False, "--json", help="Print the metrics as one JSON object (official key names)."),
) -> None:
    """Official SQuAD v1.1 / v2.0 metrics for a prediction file or a model.

    EM, F1, HasAns/NoAns, best no-answer thresholds, plus correct / similar / incorrect counts and
    modified EM; with --metrics also BLEU, ROUGE-1/2/L and METEOR (see docs/metrics.md).

    Example: encoderlab evaluate --data dev-v1.1.json --predictions predictions.json --json
    """
    from ..qa.evaluate import evaluate_model, evaluate_predictions

    if (model is None) == (predictions is None):
        fail("give exactly one of --model or --predictions")
    if model is not None:
        metrics, preds, notes = evaluate_model(model, data, split_file=split_file, part=part, limit=limit,
                                               max_seq_length=max_seq_length, doc_stride=doc_stride,
                                               max_query_length=max_query_length, batch_size=batch_size,
                                               precision=precision, metrics=metrics_opt)
        for note in notes:
            typer.echo(f"note: {note}", err=True)
        if output:
            from ..runs import dumps, write_output

            write_output(output, dumps(preds, 1) + "\n")
    else:
        metrics = evaluate_predictions(data, predictions, na_probs, na_prob_thresh=na_prob_thresh,
                                       split_file=split_file, part=part, metrics=metrics_opt)
    warn_no_synonyms(metrics)
    if metrics.get("missing"):
        typer.echo(f"warning: {metrics['missing']} of {metrics['total']} questions have no prediction; they score 0",
                   err=True)
    if json_out:
        typer.echo(json.dumps(metrics))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"SQuAD v{metrics.pop('version', '?')} evaluation of {predictions or model}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in metrics.items():
        table.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    Console().print(table)
