"""`encoderlab models`: what --model accepts offline."""
from __future__ import annotations

from . import app


@app.command("models")
def list_models() -> None:
    """List the offline model specs: builtin models and scratch presets."""
    from rich.console import Console
    from rich.table import Table

    from ..models import SCRATCH_PRESETS, preset_tokenizer

    table = Table(title="Models available offline (any local model directory or, online, any Hub name works too)")
    table.add_column("--model")
    table.add_column("what")
    table.add_column("tokenizer")
    table.add_row("builtin:minilm-l6", "all-MiniLM-L6-v2 weights (6 layers, 384 wide, 22.7 M), the offline default",
                  "its own (offline)")
    for name, preset in SCRATCH_PRESETS.items():
        c = preset["config"]
        layers = c.get("num_hidden_layers", c.get("n_layers"))
        width = c.get("hidden_size", c.get("dim"))
        table.add_row(f"scratch:{name}", f"random init, {c['model_type']} {layers} layers x {width}",
                      preset_tokenizer(name))
    Console(width=max(Console().width, 140)).print(table)
    print("A preset whose tokenizer needs the Hub works offline with --tokenizer DIR|builtin:minilm-l6 (a larger "
          "vocabulary resizes the random embeddings; token types the model lacks are dropped).")
