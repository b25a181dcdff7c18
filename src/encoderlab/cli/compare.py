"""The `encoderlab compare` and `encoderlab robustness` commands (the work is in encoderlab.analysis)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..config import INFERENCE_BATCH_SIZE
from . import app, fail, precision_option


def _emit(result: dict, markdown: Optional[Path], json_out: bool, to_markdown, show) -> None:
    """Print the notes (stderr), write the Markdown file (atomically) if asked, then print JSON or the Rich tables."""
    for note in result.get("notes", []):
        typer.echo(f"note: {note}", err=True)
    if markdown is not None:
        from ..runs import write_output

        write_output(markdown, to_markdown(result))
    if json_out:
        typer.echo(json.dumps(result, ensure_ascii=False))
        return
    from rich.console import Console

    console = Console()
    show(result, console)
    if markdown is not None:
        console.print(f"Markdown written to {markdown}", markup=False, highlight=False, soft_wrap=True)


@app.command("compare")
def compare_cmd(
    model_a: str = typer.Argument(..., metavar="MODEL_A", help="First model (QA or classification): RUN/model, a directory or a Hub name."),
    model_b: str = typer.Argument(..., metavar="MODEL_B", help="Second model, of the same task (or a base encoder, which gets a fresh head)."),
    data: str = typer.Option(..., "--data", "-d", help="Data both models answer: for QA SQuAD .json, .jsonl, builtin:squad-sample or hub:NAME[:CONFIG][:SPLIT]; for classification labelled .tsv/.csv/.jsonl(.gz) or hub:NAME[:CONFIG][:SPLIT]."),
    split_file: Optional[Path] = typer.Option(None, "--split-file", help="JSON file mapping part names to article titles, for --part."),
    part: Optional[str] = typer.Option(None, "--part", help="Only the articles of this part of the split file, e.g. test."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N questions."),
    questions: Optional[Path] = typer.Option(None, "--questions", "-q", help="YAML list of {context, question} or {context_file, question} items: show both models' top-k answers side by side."),
    top_k: int = typer.Option(3, "--top-k", "-k", min=1, max=50, help="Answers per question of --questions."),
    examples: int = typer.Option(3, "--examples", min=0, help="Questions shown where only one model is correct (per model)."),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="Also write the comparison as Markdown to this file."),
    json_out: bool = typer.Option(False, "--json", help="Print the comparison as one JSON object."),
    max_seq_length: Optional[int] = typer.Option(None, "--max-seq-length", help="Window length \\[as each model was trained, else 384]."),
    doc_stride: Optional[int] = typer.Option(None, "--doc-stride", help="Context tokens shared by consecutive windows \\[as trained, else 128]."),
    batch_size: int = typer.Option(INFERENCE_BATCH_SIZE, "--batch-size", help="Prediction batch size."),
    precision: str = precision_option(),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="QA: also text-overlap metrics side by side, a comma list of bleu, rouge, meteor (docs/metrics.md)."),
    texts: Optional[Path] = typer.Option(None, "--texts", help="Classification: a file of texts, one a line: show both models' top-k labels side by side."),
    text_column: Optional[str] = typer.Option(None, "--text-column", help="Classification: the text column of --data [auto: sentence, text, ...]."),
    text_pair_column: Optional[str] = typer.Option(None, "--text-pair-column", help="Classification: the second text column for sentence pairs."),
    label_column: Optional[str] = typer.Option(None, "--label-column", help="Classification: the label column of --data [auto: label]."),
) -> None:
    """Compare two models on the same data, side by side.

    QA models: correct / similar / incorrect, EM, modified EM, F1 (with --metrics also BLEU, ROUGE-1/2/L,
    METEOR); the questions they answer differently,
    a few where only one is correct and, with --questions, both models' top-k answers with confidence.
    Classification models (fine-tuned with `train classify`): accuracy, precision, recall, F1, macro F1,
    MCC; the texts they label differently and, with --texts, both models' top-k labels.

    Example: encoderlab compare runs/minilm/model runs/bert/model --data dev-v1.1.json --split-file split.json --part test --questions questions.yaml --markdown compare.md
    """
    from ..analysis import comparison

    result = comparison.compare(model_a, model_b, data, split_file=split_file, part=part, limit=limit,
                                questions=questions, texts=texts, top_k=top_k, examples=examples,
                                max_seq_length=max_seq_length, doc_stride=doc_stride, batch_size=batch_size,
                                precision=precision, metrics=metrics, text_column=text_column,
                                text_pair_column=text_pair_column, label_column=label_column)
    _emit(result, markdown, json_out, comparison.markdown, lambda r, console: _show_view(comparison.view(r), console))


def _show_view(view, console) -> None:
    """A ComparisonView (any task) as Rich tables."""
    from rich.markup import escape as esc
    from rich.table import Table

    table = Table(title=esc(view.title))
    table.add_column("model")
    for header in view.columns:
        table.add_column(header, justify="right")
    for row in view.rows:
        table.add_row(*map(esc, row))
    console.print(table)
    for line in view.legend:
        console.print(f"  {line}", markup=False, highlight=False)
    console.print(view.sentence, markup=False, highlight=False)
    if view.examples:
        ex = Table(title=view.examples_title, show_lines=True)
        for col in view.examples_headers:
            ex.add_column(esc(col), overflow="fold")
        for given, answers in view.examples:
            ex.add_row(*map(esc, given), *(f"{esc(a)} {'[green]✓[/]' if ok else '[red]✗[/]'}" for a, ok in answers))
        console.print(ex)
    for title, headers, rows in view.asked:
        t = Table(title=esc(title))
        for i, col in enumerate(headers):
            t.add_column(esc(col), justify="right" if i == 0 else "left", overflow="fold")
        for row in rows:
            t.add_row(*map(esc, row))
        console.print(t)


@app.command("robustness")
def robustness_cmd(
    model: str = typer.Argument(..., metavar="MODEL", help="A QA model: RUN/model, a directory or a Hub name."),
    data: list[str] = typer.Option(..., "--data", "-d", help="A version of the questions as NAME=FILE (repeat; at least 2; the first is the reference)."),
    split_file: Optional[Path] = typer.Option(None, "--split-file", help="JSON file mapping part names to article titles, for --part."),
    part: Optional[str] = typer.Option(None, "--part", help="Only these articles (by title) in every version, e.g. test."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N questions common to all versions (each version is cut after the last of them)."),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="Also write the report as Markdown to this file."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
    max_seq_length: Optional[int] = typer.Option(None, "--max-seq-length", help="Window length \\[as each model was trained, else 384]."),
    doc_stride: Optional[int] = typer.Option(None, "--doc-stride", help="Context tokens shared by consecutive windows \\[as trained, else 128]."),
    batch_size: int = typer.Option(INFERENCE_BATCH_SIZE, "--batch-size", help="Prediction batch size."),
    precision: str = precision_option(),
    noise: Optional[str] = typer.Option(None, "--noise", help="Also synthetic versions of the reference at these word error rates, e.g. 0.1,0.22,0.44 (encoderlab data noise, in memory)."),
    noise_seed: int = typer.Option(0, "--noise-seed", help="Seed of the synthetic versions."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write a PNG of F1 and EM against WER (synthetic versions as a line, --data versions as stars)."),
) -> None:
    """Evaluate one QA model on several versions of the same questions (e.g. text vs speech-recognized).

    Reports EM/F1 per version on the questions common to all versions and the drop against the first
    (reference) version, the same per question type (what/who/when/where/which/why/how/other), the
    questions only some versions have, and each version's own full-set EM/F1. Each version's WER
    against the reference (jiwer, contexts of the common questions) is shown; --noise adds synthetic
    versions at chosen WERs and --plot draws F1/EM against WER.

    Example: encoderlab robustness runs/minilm/model --data squad=dev-v1.1.json --data spoken=spoken_test-v1.1.json --split-file split.json --part test
    """
    from ..analysis.robustness import parse_version, robustness, robustness_markdown

    from ..analysis.stats import check_histogram_path

    versions = [parse_version(d) for d in data]
    levels = _parse_levels(noise) if noise is not None else []
    if plot is not None:
        check_histogram_path(plot, "--plot")
    result = robustness(model, versions, split_file=split_file, part=part, limit=limit,
                        max_seq_length=max_seq_length, doc_stride=doc_stride, batch_size=batch_size,
                        noise=levels, noise_seed=noise_seed, precision=precision)
    if plot is not None:
        from ..analysis.robustness import write_wer_plot

        write_wer_plot(result, plot)
        result["plot"] = str(plot)
    _emit(result, markdown, json_out, robustness_markdown, _show_robustness)


def _parse_levels(text: str) -> list[float]:
    """`--noise 0.1,0.22` -> [0.1, 0.22], each checked as a word error rate."""
    from ..data.noise import check_noise_options

    levels = []
    for part in text.replace(" ", "").split(","):
        try:
            levels.append(float(part))
        except ValueError:
            fail(f"--noise takes word error rates between 0 and 1, comma-separated, not '{part}'")
        check_noise_options(levels[-1], option="--noise")
    return levels


def _show_robustness(result: dict, console, max_ids: int = 5) -> None:
    from rich.markup import escape as esc
    from rich.table import Table

    from ..analysis.compare import fmt_metric
    from ..analysis.robustness import fmt_wer, noise_sentence, not_in_all_sentence

    ref = result["reference"]

    def drops(r: dict) -> tuple[str, str]:
        return ("—", "—") if r["name"] == ref else (f"{r['exact_drop']:+.2f}", f"{r['f1_drop']:+.2f}")

    where = f", part {result['part']}" if result.get("part") else ""
    console.print(f"Robustness of {result['model']} ({result['model_spec']}); reference: {ref}{where}. "
                  f"Drop = reference − version, in points (positive = worse).", markup=False, highlight=False)
    t = Table(title=f"Questions common to all versions ({result['common']['questions']})")
    for col in ("version", "WER", "EM", "F1", "EM drop", "F1 drop"):
        t.add_column(col, justify="left" if col == "version" else "right")
    for r in result["common"]["results"]:
        t.add_row(esc(r["name"]), fmt_wer(r), fmt_metric("exact", r["exact"]), fmt_metric("f1", r["f1"]), *drops(r))
    console.print(t)
    for n in result.get("noise", []):
        console.print(f"synthetic {noise_sentence(n)}", markup=False, highlight=False)

    t = Table(title="By question type (common questions)")
    for col in ("type", "questions", "version", "EM", "F1", "EM drop", "F1 drop"):
        t.add_column(col, justify="left" if col in ("type", "version") else "right")
    for group in result["by_type"]:
        for i, r in enumerate(group["results"]):
            t.add_row(group["type"] if i == 0 else "", str(group["questions"]) if i == 0 else "", esc(r["name"]),
                      fmt_metric("exact", r["exact"]), fmt_metric("f1", r["f1"]), *drops(r))
        t.add_section()
    console.print(t)

    console.print(not_in_all_sentence(result), markup=False, highlight=False)
    if result["not_in_all"]["groups"]:
        t = Table(title="Questions not in every version")
        for col in ("in", "missing from", "questions", "example ids"):
            t.add_column(col, justify="right" if col == "questions" else "left", overflow="fold")
        for g in result["not_in_all"]["groups"]:
            t.add_row(esc(", ".join(g["in"])), esc(", ".join(g["missing_from"])), str(g["questions"]),
                      esc(", ".join(g["ids"][:max_ids]) + (" …" if len(g["ids"]) > max_ids else "")))
        console.print(t)

    t = Table(title="Each version on all its questions")
    for col in ("version", "data", "questions", "common", "not in all", "EM", "F1"):
        t.add_column(col, justify="left" if col in ("version", "data") else "right", overflow="fold")
    for v in result["versions"]:
        t.add_row(esc(v["name"]), esc(v["data"]), str(v["questions"]), str(v["common"]), str(v["not_in_all"]),
                  fmt_metric("exact", v["exact"]), fmt_metric("f1", v["f1"]))
    console.print(t)
    if result.get("plot"):
        console.print(f"F1/EM against WER plotted to {result['plot']}", markup=False, highlight=False)
