"""`encoderlab pretrain`: masked-LM (optionally + next-sentence prediction) pretraining with perplexity.

From scratch (``scratch:<preset>``) or continued pretraining of a pretrained encoder (domain
adaptation). The run directory is the engine's (see encoderlab.runs); ``RUN/model`` is a normal
model directory that ``train qa`` / ``train classify`` accept as ``--model``.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from ..errors import EncoderlabError, ModelError
from ..modelinfo import ModelInfo, write_model_info
from ..models import load_model
from ..runs import RunDir
from .config import PretrainConfig
from ..training import (is_main_process, resolve_precision, save_model, started_run, train_summary,
                        train_task)
from .corpus import Corpus, hold_out, load_corpus
from .evaluate import MaskedLMEvaluator, perplexity
from .features import MaskingCollator, build_features



def load_pretrain_data(cfg: PretrainConfig) -> tuple[Corpus, Corpus]:
    """(training corpus, held-out corpus) of documents."""
    if not cfg.corpus:
        raise EncoderlabError("no corpus: pass --corpus (a text file, a directory, a .jsonl(.gz) file or hub:NAME)")
    corpus = load_corpus(cfg.corpus, text_field=cfg.text_field, limit=cfg.limit)
    if cfg.eval_corpus:
        return corpus, load_corpus(cfg.eval_corpus, text_field=cfg.text_field)
    return hold_out(corpus, cfg.validation_fraction, cfg.seed)


def load_pretraining_model(cfg: PretrainConfig):
    """The model with the objective's heads: MaskedLM for mlm, ForPreTraining (MLM + NSP heads) for mlm+nsp."""
    import inspect

    resolved = load_model(cfg.model, cfg.objective, tokenizer=cfg.tokenizer, seed=cfg.seed)   # head mlm / mlm+nsp
    if cfg.objective == "mlm+nsp" and "next_sentence_label" not in inspect.signature(resolved.model.forward).parameters:
        raise ModelError(f"{cfg.model} ({resolved.model.config.model_type}) has no next-sentence-prediction head; "
                         f"use --objective mlm")
    return resolved


def epoch_table(history: list[dict]) -> list[dict[str, Any]]:
    """One row per evaluation: step, epoch, mean logged training loss since the previous evaluation,
    eval loss, perplexity (and NSP accuracy). The last record of a step wins (e.g. after --resume)."""
    evals: dict[int, dict] = {}
    for rec in history:
        if "eval_loss" in rec:
            if rec.get("final") and rec["step"] in evals:
                continue
            evals[rec["step"]] = rec
    logged, last_step = [], 0
    for rec in history:
        if "loss" in rec and "step" in rec and rec["step"] > last_step:
            logged.append((rec, last_step))
            last_step = rec["step"]
    rows, previous = [], -1
    for step in sorted(evals):
        rec = evals[step]
        # each logged loss is the mean over the steps since the log before it: weigh it by those steps
        weighted = [(r["loss"], r["step"] - p) for r, p in logged if previous < r["step"] <= step]
        steps = sum(w for _, w in weighted)
        row = {"step": step, "epoch": round(float(rec.get("epoch") or 0.0), 2),
               "train_loss": sum(l * w for l, w in weighted) / steps if steps else None,
               "eval_loss": rec["eval_loss"], "perplexity": rec.get("eval_perplexity", perplexity(rec["eval_loss"]))}
        if "eval_nsp_accuracy" in rec:
            row["nsp_accuracy"] = rec["eval_nsp_accuracy"]
        rows.append(row)
        previous = step
    return rows


def summary(metrics: dict[str, Any]) -> str:
    """What `train mlm` prints after the final metrics: the held-out perplexity per evaluation."""
    return (f"held-out perplexity ({metrics.get('eval_masked_tokens', 0):,} masked tokens):\n"
            + format_table(metrics["evaluations"]))


def format_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table of `epoch_table` rows (the CLI prints a Rich one)."""
    nsp = any("nsp_accuracy" in r for r in rows)
    head = ["step", "epoch", "train loss", "eval loss", "perplexity"] + (["NSP acc"] if nsp else [])
    body = [[str(r["step"]), f"{r['epoch']:.2f}", "-" if r["train_loss"] is None else f"{r['train_loss']:.4f}",
             f"{r['eval_loss']:.4f}", f"{r['perplexity']:.2f}"]
            + ([f"{r['nsp_accuracy']:.3f}" if "nsp_accuracy" in r else "-"] if nsp else []) for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    lines = [" | ".join(h.rjust(w) for h, w in zip(head, widths)), "-+-".join("-" * w for w in widths)]
    lines += [" | ".join(c.rjust(w) for c, w in zip(b, widths)) for b in body]
    return "\n".join(lines)


def model_card(cfg: PretrainConfig, train: Corpus, evaluation: Corpus, rows: list[dict], summary: dict,
               base_source: str) -> str:
    table = format_table(rows)
    return f"""---
library_name: transformers
pipeline_tag: fill-mask
tags: [encoderlab, masked-lm{", next-sentence-prediction" if cfg.objective == "mlm+nsp" else ""}]
base_model: {cfg.model}
---
# Encoder pretrained with encoderlab (`{cfg.objective}`)

- Start: `{cfg.model}` ({base_source})
- Corpus: `{cfg.corpus}`: {len(train)} training documents, {summary['train_chunks']} sequences, {summary['train_tokens']:,} tokens
- Held out: `{evaluation.spec}`: {len(evaluation)} documents, {summary['eval_masked_tokens']:,} masked tokens (fixed masks, seed {cfg.seed})
- Masking: {cfg.mlm_probability:.0%} of tokens (80% [MASK], 10% random, 10% unchanged){", whole words" if cfg.whole_word_mask else ""}; max_seq_length {cfg.max_seq_length}
- Training: {cfg.training_summary()}

## Held-out perplexity (exp of the mean masked-token loss)
```
{table}
```

## Use
```python
from transformers import pipeline
pipeline("fill-mask", model="PATH/model")("The movie was [MASK].")
```
Fine-tune it like any encoder: `encoderlab train qa --model PATH/model` (or `train classify`).
"""


def pretrain(cfg: PretrainConfig, *, resume: bool | str = False, overwrite: bool = False,
             log: Callable[[str], None] = print, callbacks: list | None = None) -> dict[str, Any]:
    """Pretrain, evaluate perplexity after each epoch (or every eval_steps), save. Returns the final
    metrics (also in RUN/metrics.json); the per-evaluation table is ``metrics["evaluations"]``.

    `callbacks`: extra transformers.TrainerCallback objects handed to the Trainer.
    """
    t_start = time.time()
    cfg.validate()
    metric, greater_is_better = cfg.selection_metric()
    precision = resolve_precision(cfg.precision)
    from transformers import set_seed

    set_seed(cfg.seed)
    train, evaluation = load_pretrain_data(cfg)
    resolved = load_pretraining_model(cfg)
    model, tok = resolved.model, resolved.tokenizer
    positions = getattr(model.config, "max_position_embeddings", 512)
    if cfg.max_seq_length > positions:
        raise EncoderlabError(f"max_seq_length {cfg.max_seq_length} exceeds the model's {positions} positions")
    write_model_info(model, ModelInfo(task="mlm", objective=cfg.objective, corpus=cfg.corpus))

    main_process = is_main_process()
    run = RunDir(cfg.output_dir)
    if main_process and not (resume or overwrite) and run.path.is_dir() and any(run.path.iterdir()):
        run.start(cfg.to_dict())        # refuses with the engine's message, before the tokenizing work
    kw = dict(objective=cfg.objective, max_seq_length=cfg.max_seq_length, whole_word_mask=cfg.whole_word_mask,
              show_progress=main_process)
    train_feats = build_features(train.documents, tok, seed=cfg.seed, **kw)
    eval_feats = build_features(evaluation.documents, tok, seed=cfg.seed + 1, **kw)
    if len(train_feats) == 0 or len(eval_feats) == 0:
        which = cfg.corpus if len(train_feats) == 0 else evaluation.spec
        raise EncoderlabError(f"{which}: no {'sentence pairs' if cfg.objective == 'mlm+nsp' else 'text'} "
                              f"to train or evaluate on")
    perplexity_evaluator = MaskedLMEvaluator(eval_feats, tok, mlm_probability=cfg.mlm_probability,
                                             whole_word_mask=cfg.whole_word_mask, seed=cfg.seed,
                                             batch_size=cfg.eval_batch_size)
    with started_run(run, cfg, resume=resume, overwrite=overwrite, log=log) as checkpoint:
        if main_process:
            log(f"train: {len(train)} documents -> {len(train_feats)} sequences ({train_feats.tokens:,} tokens) · "
                f"held out: {len(evaluation)} documents -> {len(eval_feats)} sequences, {perplexity_evaluator.masked_tokens:,} "
                f"masked tokens · {cfg.objective} · model {cfg.model} ({resolved.num_parameters / 1e6:.1f} M "
                f"parameters) · precision {precision}")
        def evaluate(trainer):
            return perplexity_evaluator(trainer.model, precision=precision, accelerator=trainer.accelerator,
                                        show_progress=trainer.is_world_process_zero()), None

        def evaluate_first(trainer, evaluator):
            if not cfg.eval_before_training or checkpoint is not None:
                return None
            initial = evaluator(trainer)
            if main_process:
                run.append_history({"step": 0, "epoch": 0.0, "time": 0.0,
                                    **{f"eval_{k}": v for k, v in initial.items()}})
                log(f"before training: eval loss {initial['loss']:.4f} · perplexity {initial['perplexity']:.2f}")
            return initial

        collator = MaskingCollator(tok, mlm_probability=cfg.mlm_probability, whole_word_mask=cfg.whole_word_mask)
        done = train_task(model=model, tokenizer=tok, cfg=cfg, run=run, train_dataset=train_feats.dataset(),
                          collator=collator, evaluate=evaluate, metric=metric, greater_is_better=greater_is_better,
                          callbacks=callbacks, checkpoint=checkpoint, before_training=evaluate_first,
                          started=t_start, eval_input_ids=eval_feats.columns["input_ids"], log=log)
        trainer, result, final, initial = done.trainer, done.result, done.final, done.initial
        rows = epoch_table(run.history()) if trainer.is_world_process_zero() else []
        summary = {**final, "train_documents": len(train), "train_chunks": len(train_feats),
                   "train_tokens": train_feats.tokens,
                   **train_summary(trainer, result, checkpoint=checkpoint, items=train_feats.tokens, unit="tokens",
                                   t_start=t_start),
                   "eval_documents": len(evaluation), "eval_chunks": len(eval_feats),
                   "eval_masked_tokens": perplexity_evaluator.masked_tokens,
                   "initial_perplexity": initial["perplexity"] if initial else None,
                   "objective": cfg.objective, "evaluations": rows}
        save_model(trainer, run, model_card(cfg, train, evaluation, rows, summary, resolved.source))  # every rank
        if trainer.is_world_process_zero():
            run.complete(summary)
            return summary
        return final

