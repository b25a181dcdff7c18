"""The `encoderlab plot` and `encoderlab report` commands: figures and an HTML report from run directories."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from . import app, fail


@app.command("plot")
def plot_cmd(
    runs: List[Path] = typer.Argument(..., help="Run directories (each with history.jsonl or metrics.json).",
                                      show_default=False),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", "-o",
                                              help="Write the figures here (default: FIRST_RUN/plots)."),
    fmt: str = typer.Option("png", "--format", help="Image format: png or svg."),
    separate: bool = typer.Option(False, "--separate", help="One loss figure per run instead of one with every run."),
    x: str = typer.Option("step", "--x", help="x axis of the loss and metric figures: step or epoch."),
) -> None:
    """Plot training curves of one or more runs.

    Writes loss.png (training and validation loss), metrics.png (the task's metrics per evaluation:
    EM/F1 for QA, accuracy/F1 for classification, perplexity for masked-LM; every run in one figure,
    legend = run directory names) and, for classification runs whose
    metrics.json has confusion_matrix and labels, confusion-RUN.png. A figure without data is skipped
    with a note. Prints the paths written.

    Example: encoderlab plot runs/seed1 runs/seed2 runs/seed3 -o plots/seeds
    """
    from ..reports.plots import FORMATS, plot_runs

    if fmt not in FORMATS:
        fail(f"unknown --format '{fmt}' (choose {' or '.join(FORMATS)})")
    if x not in ("step", "epoch"):
        fail(f"unknown --x '{x}' (choose step or epoch)")
    written, figures = plot_runs(runs, output_dir, fmt=fmt, combined=not separate, x=x)
    for note in figures.skipped:
        typer.echo(f"skipped {note}", err=True)
    for path in written:
        typer.echo(str(path))


@app.command("report")
def report_cmd(
    runs: List[Path] = typer.Argument(..., help="Run directories (each with history.jsonl or metrics.json).",
                                      show_default=False),
    output: Path = typer.Option(..., "--output", "-o", help="The HTML file to write, e.g. report.html."),
    title: Optional[str] = typer.Option(None, "--title", help="Page title (default: the run names)."),
) -> None:
    """Write one self-contained HTML page comparing runs.

    The page has a comparison table of the main metrics (best value per column highlighted), the
    loss and EM/F1 curves, and per run its status, final metrics and configuration. Figures are
    embedded as PNG data URIs and the CSS is inline: the file opens offline, without JavaScript.

    Example: encoderlab report runs/minilm runs/bert-base -o report.html --title "MiniLM vs BERT"
    """
    from ..reports.html import write_report

    typer.echo(str(write_report(runs, output, title)))
