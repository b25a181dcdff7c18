"""`encoderlab train qa`: fine-tune an encoder for extractive QA and write a run directory."""
from __future__ import annotations

import time
from typing import Any, Callable

from ..data.squad import QADataset, carve_validation, check_disjoint, load_squad, select
from ..errors import EncoderlabError
from ..modelinfo import ModelInfo, write_model_info
from ..models import load_model
from ..runs import RunDir
from .config import QATrainConfig
from .evaluate import score_predictions
from ..training import (DynamicPadCollator, is_main_process, resolve_precision, save_model, started_run,
                        train_summary, train_task)
from .features import QAFeatureConfig, make_features
from .predict import predict_examples



def load_qa_data(cfg: QATrainConfig, log: Callable[[str], None] = print) -> tuple[QADataset, QADataset]:
    full = load_squad(cfg.train, on_bad_answer=cfg.on_bad_answer)
    if full.report.summary():
        log(f"{cfg.train}: {full.report.summary()}")
    train = select(full, titles=cfg.train_titles, split_file=cfg.split_file, part=cfg.train_split,
                   limit=cfg.limit)
    if cfg.eval:
        evaluation = full if cfg.eval == cfg.train else load_squad(cfg.eval, on_bad_answer=cfg.on_bad_answer)
        evaluation = select(evaluation, titles=cfg.eval_titles, split_file=cfg.split_file, part=cfg.eval_split,
                            limit=cfg.eval_limit)
    elif cfg.eval_split or cfg.eval_titles:
        evaluation = select(full, titles=cfg.eval_titles, split_file=cfg.split_file, part=cfg.eval_split,
                            limit=cfg.eval_limit)
    else:
        # the carve-out splits the selection (--limit included), so validation never outgrows training
        train, evaluation = carve_validation(train, cfg.validation_fraction, cfg.seed, log=log)
        if cfg.eval_limit:
            evaluation = select(evaluation, limit=cfg.eval_limit)
    check_disjoint(train, evaluation)
    return train, evaluation


def model_card(cfg: QATrainConfig, train: QADataset, evaluation: QADataset, metrics: dict, base_source: str) -> str:
    shown = {k: round(v, 2) if isinstance(v, float) else v for k, v in metrics.items()
             if k in ("exact", "f1", "total", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1", "best_f1",
                      "modified_exact")}
    rows = "\n".join(f"| {k} | {v} |" for k, v in shown.items())
    return f"""---
library_name: transformers
pipeline_tag: question-answering
tags: [encoderlab, extractive-qa, squad]
base_model: {cfg.model}
---
# Extractive QA model fine-tuned with encoderlab

- Base model: `{cfg.model}` ({base_source})
- Training data: `{cfg.train}`{f" part `{cfg.train_split}`" if cfg.train_split else ""}: {len(train)} questions from {len(train.titles)} articles (SQuAD v{train.version} format)
- Evaluation data: `{cfg.eval or cfg.train}`{f" part `{cfg.eval_split}`" if cfg.eval_split else ""}: {len(evaluation)} questions from {len(evaluation.titles)} articles
- Windows: max_seq_length {cfg.max_seq_length}, doc_stride {cfg.doc_stride}, max_query_length {cfg.max_query_length}
- Training: {cfg.training_summary()}

## Evaluation (official SQuAD v{evaluation.version} metric)
| metric | value |
|---|---|
{rows}

## Use
```python
from transformers import AutoModelForQuestionAnswering, AutoTokenizer
model = AutoModelForQuestionAnswering.from_pretrained("PATH/model")
tokenizer = AutoTokenizer.from_pretrained("PATH/model")

from encoderlab.qa import QuestionAnswerer   # pipeline-style: top-k answers with confidence
QuestionAnswerer("PATH/model")(question="...", context="...", top_k=3)
```
"""


def train_qa(cfg: QATrainConfig, *, resume: bool | str = False, overwrite: bool = False,
             log: Callable[[str], None] = print, callbacks: list | None = None) -> dict[str, Any]:
    """Fine-tune, evaluate, save. Returns the final metrics (also in RUN/metrics.json).

    `resume`: True, False or "auto" (see `encoderlab.training.started_run`); `callbacks`: extra
    transformers.TrainerCallback objects handed to the Trainer.
    """
    t_start = time.time()
    cfg.validate()
    metric, greater_is_better = cfg.selection_metric()       # the task registry's QA metrics
    precision = resolve_precision(cfg.precision)
    from transformers import set_seed

    set_seed(cfg.seed)
    train, evaluation = load_qa_data(cfg, log)
    with_null = train.has_impossible or evaluation.version == "2.0"
    if not with_null and metric.startswith(("HasAns_", "NoAns_")):
        raise EncoderlabError(f"--metric {metric} needs SQuAD v2.0 data (unanswerable questions); {cfg.train} "
                              f"has none: use f1, exact or loss")
    resolved = load_model(cfg.model, "qa", tokenizer=cfg.tokenizer, seed=cfg.seed)
    model, tok = resolved.model, resolved.tokenizer
    write_model_info(model, ModelInfo(task="qa", squad_version="2.0" if with_null else "1.1",
                                      null_threshold=cfg.null_threshold, max_seq_length=cfg.max_seq_length,
                                      doc_stride=cfg.doc_stride, max_query_length=cfg.max_query_length,
                                      n_best_size=cfg.n_best_size, max_answer_length=cfg.max_answer_length))
    fcfg = QAFeatureConfig(cfg.max_seq_length, cfg.doc_stride, cfg.max_query_length)
    limit = getattr(model.config, "max_position_embeddings", 512)
    if cfg.max_seq_length > limit:
        raise EncoderlabError(f"max_seq_length {cfg.max_seq_length} exceeds the model's {limit} positions")

    run = RunDir(cfg.output_dir)
    main_process = is_main_process()
    train_feats = make_features(train.examples, tok, fcfg)     # checked before started_run deletes anything
    eval_feats = make_features(evaluation.examples, tok, fcfg)
    with started_run(run, cfg, resume=resume, overwrite=overwrite, log=log) as checkpoint:
        if main_process:
            log(f"train: {len(train)} questions -> {len(train_feats)} features · eval: {len(evaluation)} questions -> "
                f"{len(eval_feats)} features · model {cfg.model} ({resolved.num_parameters / 1e6:.1f} M parameters)"
                f" · precision {precision}")
        import datasets

        cols = train_feats.model_inputs(with_labels=True)
        cols["length"] = train_feats.lengths.tolist()
        train_ds = datasets.Dataset.from_dict(cols)
        gold = evaluation.gold()
        overlap = cfg.overlap_metrics()

        def evaluate(trainer):
            out = predict_examples(trainer.model, tok, evaluation.examples, features=eval_feats,
                                   n_best_size=cfg.n_best_size, max_answer_length=cfg.max_answer_length,
                                   with_null=with_null, null_threshold=cfg.null_threshold,
                                   batch_size=cfg.eval_batch_size, precision=precision,
                                   device=trainer.args.device, accelerator=trainer.accelerator, with_loss=True)
            # predictions already apply null_threshold; null odds only add best_* (so no extra threshold)
            metrics = score_predictions(gold, out.predictions, out.null_odds if with_null else None, float("inf"),
                                        metrics=overlap)
            return {"loss": out.loss, **metrics, **out.position_accuracy,
                    "features_per_second": len(eval_feats) / max(out.seconds, 1e-9)}, out

        done = train_task(model=model, tokenizer=tok, cfg=cfg, run=run, train_dataset=train_ds,
                          collator=DynamicPadCollator(tok), evaluate=evaluate, metric=metric,
                          greater_is_better=greater_is_better, callbacks=callbacks, checkpoint=checkpoint,
                          started=t_start, eval_input_ids=eval_feats.input_ids, log=log)
        trainer, result, final, out = done.trainer, done.result, done.final, done.output
        save_model(trainer, run, model_card(cfg, train, evaluation, final, resolved.source))  # every rank
        if trainer.is_world_process_zero():
            run.write_json("predictions.json", out.predictions)
            run.write_json("nbest_predictions.json", dict(out.nbest), indent=None)
            if out.null_odds is not None:
                run.write_json("null_odds.json", out.null_odds)
            summary = {**final, "train_features": len(train_feats), "train_questions": len(train),
                       "eval_features": len(eval_feats),
                       **train_summary(trainer, result, checkpoint=checkpoint, items=len(train_feats),
                                       unit="features", t_start=t_start)}
            run.complete(summary)
            return summary
        return final
