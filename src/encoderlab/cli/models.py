"""`encoderlab models`: what --model accepts offline."""
from __future__ import annotations

from . import app


@app.command("models")
def list_models() -> None:
    """List the offline model specs: builtin models and scratch presets."""
    from rich.console import Console
    from rich.table import Table

    from ..models import SCRATCH_PRESETS

    table = Table(title="Models available offline (any local model directory or, online, any Hub name works too)")
    table.add_column("--model")
    table.add_column("what")
    table.add_row("builtin:minilm-l6", "all-MiniLM-L6-v2 weights (6 layers, 384 wide, 22.7 M), the offline default")
    for name, preset in SCRATCH_PRESETS.items():
        c = preset["config"]
        layers = c.get("num_hidden_layers", c.get("n_layers"))
        width = c.get("hidden_size", c.get("dim"))
        table.add_row(f"scratch:{name}", f"random init, {c['model_type']} {layers} layers x {width}, "
                                         f"tokenizer {preset['tokenizer']}")
    Console().print(table)
