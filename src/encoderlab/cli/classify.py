"""`encoderlab predict classify` (`train classify` is generated from the task registry in cli/train.py)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..config import INFERENCE_BATCH_SIZE
from . import app, fail, precision_option

predict_app = typer.Typer(no_args_is_help=True, help="Predict with a fine-tuned model (classify).")
app.add_typer(predict_app, name="predict")


@predict_app.command("classify")
def predict_classify_cmd(
    model: str = typer.Argument(..., help="A run directory, RUN/model, a model directory or a Hub name."),
    texts: Optional[list[str]] = typer.Argument(None, help="Texts to classify (or use --file)."),
    text_pairs: Optional[list[str]] = typer.Option(None, "--pair", help="Second text of a pair, once per text in "
                                                   "order (models trained on text pairs, e.g. sentence1/sentence2)."),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="A data file (.tsv/.csv/.jsonl(.gz)/.json) or hub:NAME[:CONFIG][:SPLIT] of texts; with labels, accuracy is printed too."),
    text_column: Optional[str] = typer.Option(None, "--text-column", help="Column with the text \\[found by name]."),
    text_pair_column: Optional[str] = typer.Option(None, "--text-pair-column", help="Column with the second text of pairs."),
    label_column: Optional[str] = typer.Option(None, "--label-column", help="Column with gold labels, to score the predictions \\[found by name, optional]."),
    top_k: int = typer.Option(1, "--top-k", "-k", min=1, help="Labels shown per text, best first."),
    batch_size: int = typer.Option(INFERENCE_BATCH_SIZE, "--batch-size", min=1, help="Texts per forward pass."),
    precision: str = precision_option(),
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
    clf = TextClassifier(model, batch_size=batch_size, precision=precision)
    if file is not None:
        rows, metrics = predict_dataset(clf, str(file), text_column=text_column, text_pair_column=text_pair_column,
                                        label_column=label_column, top_k=top_k, limit=limit)
    else:
        pairs = list(text_pairs) if text_pairs else None
        results = clf(list(texts), pairs, top_k=top_k)
        rows = [{"text": t, **({"text_pair": pairs[i]} if pairs else {}), **r} for i, (t, r) in enumerate(zip(texts, results))]
        metrics = None
    if output is not None:
        from ..runs import write_output

        write_output(output, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
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
