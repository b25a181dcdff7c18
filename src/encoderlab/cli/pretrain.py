"""`encoderlab train mlm` (alias `encoderlab pretrain`): masked-LM (+ optional next-sentence prediction)
pretraining with perplexity."""
from __future__ import annotations

import typer

from . import app
from .train import register_train_command


def _pretrain(cfg, **kwargs) -> dict:
    from ..mlm.train import pretrain

    return pretrain(cfg, **kwargs)


def _show_mlm(metrics: dict, cfg) -> None:
    print_table(metrics["evaluations"], title=f"held-out perplexity ({cfg.objective}, {metrics['eval_masked_tokens']:,} masked tokens)")
    typer.echo(f"perplexity {metrics['perplexity']:.2f} · eval loss {metrics['loss']:.4f} · "
               f"{metrics['train_tokens_per_second']:.0f} training tokens/s")
    typer.echo(f"run directory: {cfg.output_dir} (model in {cfg.output_dir}/model)")


def print_table(rows: list[dict], title: str = "") -> None:
    """epoch | train loss | eval loss | perplexity (| NSP accuracy), as a Rich table."""
    from rich.console import Console
    from rich.table import Table

    nsp = any("nsp_accuracy" in r for r in rows)
    table = Table(title=title or None)
    for name in ["step", "epoch", "train loss", "eval loss", "perplexity"] + (["NSP accuracy"] if nsp else []):
        table.add_column(name, justify="right")
    for r in rows:
        table.add_row(str(r["step"]), f"{r['epoch']:.2f}", "-" if r["train_loss"] is None else f"{r['train_loss']:.4f}",
                      f"{r['eval_loss']:.4f}", f"{r['perplexity']:.2f}",
                      *([f"{r['nsp_accuracy']:.3f}" if "nsp_accuracy" in r else "-"] if nsp else []))
    Console().print(table)


def _mlm_config():
    from ..mlm.config import PretrainConfig

    return PretrainConfig


_HELP = ("Pretrain an encoder with masked-LM (optionally + next-sentence prediction); perplexity on held-out text.\n\n"
         "Default model: scratch:bert-mini. Continued pretraining (domain adaptation): "
         "encoderlab train mlm --model builtin:minilm-l6 --corpus ../shared/data/imdb/unsup.jsonl.gz --limit 2000 "
         "--epochs 1 -o runs/minilm-imdb, then: encoderlab train classify --model runs/minilm-imdb/model ...")
register_train_command("mlm", _mlm_config(), _pretrain, _show_mlm, help=_HELP)
register_train_command("pretrain", _mlm_config(), _pretrain, _show_mlm, app=app,
                       help=_HELP.replace("Pretrain an encoder", "Alias of `train mlm`: pretrain an encoder", 1))
