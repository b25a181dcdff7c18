"""`encoderlab pretrain`: masked-LM (+ optional next-sentence prediction) pretraining with perplexity."""
from __future__ import annotations

from typing import Any, Optional

import typer

from ..runs import dumps

from . import app
from .train import D, build_config, split_given, train_options


def _pretrain_config_class():
    from ..mlm.train import PretrainConfig

    return PretrainConfig


@app.command("pretrain")
@train_options(_pretrain_config_class(), eval_metrics="masked-token loss, perplexity",
               metrics="loss, perplexity, nsp_accuracy, nsp_loss")
def pretrain_cmd(
    corpus: Optional[str] = typer.Option(D, "--corpus", help="Text to pretrain on: a text file (WikiText conventions), a directory of them, .jsonl(.gz) with --text-field, or hub:NAME[:CONFIG][:SPLIT]."),
    eval_corpus: Optional[str] = typer.Option(D, "--eval-corpus", help="Held-out text for perplexity (default: hold out --eval-fraction of the corpus' documents)."),
    text_field: Optional[str] = typer.Option(D, "--text-field", help="JSONL field / Hub column holding the text [text]."),
    objective: Optional[str] = typer.Option(D, "--objective", help="mlm, or mlm+nsp (BERT's next-sentence prediction too; BERT-type models) [mlm]."),
    mlm_probability: Optional[float] = typer.Option(D, "--mlm-probability", help="Share of tokens masked (80% [MASK], 10% random, 10% kept) [0.15]."),
    whole_word_mask: Optional[bool] = typer.Option(D, "--whole-word-mask/--no-whole-word-mask", help="Mask all word pieces of a chosen word together [off]."),
    max_seq_length: Optional[int] = typer.Option(D, "--max-seq-length", help="Tokens per packed sequence, special tokens included [128]."),
    limit: Optional[int] = typer.Option(D, "--limit", help="Read the first N documents of --corpus only."),
    eval_fraction: Optional[float] = typer.Option(D, "--eval-fraction", help="Share of documents held out when --eval-corpus is not given [0.05]."),
    eval_before_training: Optional[bool] = typer.Option(D, "--eval-before-training/--no-eval-before-training", help="Measure the perplexity before the first step (epoch 0) [on]."),
    **common: Any,
) -> None:
    """Pretrain an encoder with masked-LM (optionally + next-sentence prediction); perplexity on held-out text.

    Default model: scratch:bert-mini. Continued pretraining (domain adaptation):
    encoderlab pretrain --model builtin:minilm-l6 --corpus ../shared/data/imdb/unsup.jsonl.gz --limit 2000
    --epochs 1 -o runs/minilm-imdb, then: encoderlab train classify --model runs/minilm-imdb/model ...
    """
    given, ctl = split_given({k: v for k, v in locals().items() if k != "common"} | common)
    from ..mlm.train import PretrainConfig, pretrain

    cfg = build_config(PretrainConfig, ctl["config"], given)
    metrics = pretrain(cfg, resume=ctl["resume"], overwrite=ctl["overwrite"], log=lambda m: typer.echo(m, err=True))
    if ctl["json_out"]:
        typer.echo(dumps(metrics))
        return
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
