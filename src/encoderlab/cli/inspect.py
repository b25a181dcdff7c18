"""The `encoderlab inspect` command: per-module parameter inventory and diffs."""
from __future__ import annotations

import json
from typing import Optional

import typer

from . import app


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


@app.command("inspect")
def inspect_cmd(
    model: str = typer.Argument(..., help="Model: builtin:minilm-l6, scratch:<preset>, a run's model directory (or the run directory), a Hub name."),
    task: str = typer.Option("auto", "--task", "-t", help="Head to load: base, qa, classify or mlm. auto: a saved model's own task, else base."),
    num_labels: Optional[int] = typer.Option(None, "--num-labels", help="Labels of the classify head (default 2 for scratch models, else the saved config's)."),
    depth: int = typer.Option(1, "--depth", help="1: embeddings / encoder.layer.i / pooler / head; 2 and more open each module."),
    diff: Optional[str] = typer.Option(None, "--diff", help="Compare with this model (a model spec, loaded with its own head): modules added, removed, resized."),
    diff_task: Optional[str] = typer.Option(None, "--diff-task", help="Compare with this task head (on --diff's model, else on MODEL)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object: modules, total, trainable, frozen, bytes_fp32, bytes_bf16 (and diff)."),
) -> None:
    """Where the parameters are: per-module shapes and counts, totals and weight memory.

    Shared (tied) weights count once. Names drop the base-model prefix (bert., roberta.…), so --diff / --diff-task can match a bare encoder against a task model.

    Example: encoderlab inspect scratch:bert-base-uncased --task base --diff-task qa
    """
    from ..analysis.inspect import format_shapes, inspect_model

    inv = inspect_model(model, task, depth=depth, num_labels=num_labels, diff=diff, diff_task=diff_task)
    if json_out:
        typer.echo(json.dumps(inv.to_dict()))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"{model} ({inv.task}): {inv.model_class}, depth {inv.depth}")
    show_type = console.width >= 110          # module classes only where there is room for them
    table.add_column("module", overflow="fold")
    if show_type:
        table.add_column("type", overflow="ellipsis", no_wrap=True, max_width=28)
    table.add_column("shape(s)", overflow="fold")
    for name in ("parameters", "%", "trainable"):
        table.add_column(name, justify="right", no_wrap=True)
    tied = []
    for r in inv.modules:
        tied += [f"{r.name}.{s}" if not s.startswith("=") else f"{r.name} {s}" for s in r.shared]
        trainable = "all" if r.trainable == r.parameters else ("none" if r.trainable == 0 else f"{r.trainable:,}")
        cells = [r.name] + ([r.type] if show_type else [])
        table.add_row(*cells, format_shapes(r.shapes) + (" (tied*)" if r.shared else ""), f"{r.parameters:,}",
                      f"{100 * r.parameters / max(inv.total, 1):.2f}", trainable)
    table.add_section()
    table.add_row("total", *([""] if show_type else []), "", f"{inv.total:,}", "100.00", f"{inv.trainable:,}")
    console.print(table)
    if tied:
        console.print("* tied weights, counted once where first held: " + "; ".join(tied))
    console.print(f"trainable {inv.trainable:,} · frozen {inv.frozen:,} · "
                  f"weights {inv.bytes_fp32:,} bytes in fp32 ({_mib(inv.bytes_fp32)}), "
                  f"{inv.bytes_bf16:,} in bf16 ({_mib(inv.bytes_bf16)})")
    if inv.diff is None:
        return
    d = inv.diff
    dt = Table(title=f"{d.a} → {d.b}")
    dt.add_column("module", overflow="fold")
    dt.add_column("change")
    dt.add_column("shape(s)", overflow="fold")
    for name in ("before", "after", "delta"):
        dt.add_column(name, justify="right", no_wrap=True)
    for c in d.changes:
        dt.add_row(c.name, c.change, format_shapes(c.shapes, pairs=True), f"{c.parameters_a:,}",
                   f"{c.parameters_b:,}", f"{c.delta:+,}")
    dt.add_section()
    dt.add_row("total", "" if d.changes else "identical", "", f"{d.total_a:,}", f"{d.total_b:,}", f"{d.delta:+,}")
    console.print(dt)
