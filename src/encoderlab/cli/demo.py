"""`encoderlab demo`."""
from __future__ import annotations

from typing import Optional

import typer

from . import app


@app.command("demo")
def demo_cmd(
    output_dir: str = typer.Option("runs/demo", "--output-dir", "-o", help="Run directory (replaced if it exists)."),
    epochs: float = typer.Option(2.0, "--epochs", help="Training epochs over the sample's training articles."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Train on the first N questions only (quicker)."),
) -> None:
    """Fine-tune builtin:minilm-l6 on the bundled SQuAD sample, score held-out articles, compare answers.

    Takes about 5 minutes on a 2-core CPU. The run directory is replaced if it exists.
    """
    from ..demo import run_demo

    run_demo(output_dir, epochs=epochs, limit=limit, log=lambda m: typer.echo(m, err=True))
