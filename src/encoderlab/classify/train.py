"""`encoderlab train classify`: fine-tune an encoder for text classification and write a run directory.

The run directory holds, besides the engine's files (config.yaml, run.json, history.jsonl,
checkpoints/, model/): ``labels.json`` (the label map), ``predictions.jsonl`` (one object per
evaluation text: id, text, label, predicted, score, probabilities), ``confusion_matrix.png`` and
``metrics.json`` (written last).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

from ..data.text import (TextDataset, build_label_map, carve_validation, encode_labels,
                         limit_dataset, load_text_dataset)
from ..errors import DataError, EncoderlabError
from ..metrics.classification import classification_metrics
from ..modelinfo import ModelInfo, write_model_info
from ..models import load_model
from ..runs import RunDir, atomic_write_text
from .config import ClassifyTrainConfig
from ..training import (DynamicPadCollator, is_main_process, resolve_precision, save_model, started_run,
                        train_summary, train_task)
from .features import ClassifyFeatureConfig, make_features
from .predict import predict_features



def load_classify_data(cfg: ClassifyTrainConfig, log: Callable[[str], None] = print
                       ) -> tuple[TextDataset, TextDataset, list[str]]:
    """(train, evaluation, label names) after carve-out and limits; every label checked against the map."""
    if not cfg.train:
        raise DataError("no training data: give --train FILE (TSV/CSV, JSONL, JSON) or hub:NAME[:CONFIG][:SPLIT]")
    cols = dict(text_column=cfg.text_column, text_pair_column=cfg.text_pair_column, label_column=cfg.label_column)
    full = load_text_dataset(cfg.train, **cols)
    names = build_label_map(full.labels, cfg.labels, full.label_names)
    if len(names) < 2:
        raise DataError(f"{cfg.train}: only one class ({names[0]}); classification needs at least two")
    # --limit selects first; the carve-out splits that selection, so validation never outgrows training
    train = limit_dataset(full, cfg.limit, stratify=cfg.stratify, seed=cfg.seed)
    if cfg.eval:
        evaluation = load_text_dataset(cfg.eval, **cols)
    else:
        selected = len(train)
        train, evaluation = carve_validation(train, cfg.validation_fraction, cfg.seed)
        log(f"validation: {len(evaluation)} texts carved out of the {selected} selected texts of {cfg.train} "
            f"(stratified, --validation-fraction {cfg.validation_fraction:g}); training: {len(train)} texts")
    classes = sorted(set(train.labels))
    if len(classes) < 2:
        how = f" after --limit {cfg.limit}{'' if cfg.stratify else ' --no-stratify (the first rows)'}" if cfg.limit else ""
        raise DataError(f"{cfg.train}: the training data has only one class ('{classes[0]}'){how}; "
                        "classification needs at least two")
    evaluation = limit_dataset(evaluation, cfg.eval_limit, stratify=cfg.stratify, seed=cfg.seed)
    encode_labels(train, names)        # raises on a label outside the map, naming its line
    encode_labels(evaluation, names)
    if (evaluation.pairs is None) != (train.pairs is None):
        raise DataError(f"{cfg.eval}: training data has text pairs but evaluation data does not (or the reverse)")
    return train, evaluation, names


def model_card(cfg: ClassifyTrainConfig, train: TextDataset, evaluation: TextDataset, labels: list[str],
               metrics: dict, base_source: str) -> str:
    rows = "\n".join(f"| {k} | {metrics[k]:.4f} |" for k in ("accuracy", "f1", "f1_macro", "precision", "recall", "mcc")
                     if isinstance(metrics.get(k), float))
    counts = ", ".join(f"{k}: {v}" for k, v in train.class_counts().items())
    return f"""---
library_name: transformers
pipeline_tag: text-classification
tags: [encoderlab, text-classification]
base_model: {cfg.model}
---
# Text classifier fine-tuned with encoderlab

- Base model: `{cfg.model}` ({base_source})
- Labels (id order): {", ".join(f"`{x}`" for x in labels)}
- Training data: `{cfg.train}`: {len(train)} texts ({counts}){"; stratified limit" if cfg.limit and cfg.stratify else ""}
- Evaluation data: `{cfg.eval or f"{cfg.validation_fraction:g} of {cfg.train} (stratified carve-out)"}`: {len(evaluation)} texts
- Inputs: text column `{train.text_column}`{f", pair column `{train.text_pair_column}`" if train.pairs is not None else ""}; max_seq_length {cfg.max_seq_length}, truncation {cfg.truncation}
- Training: {cfg.training_summary()}

## Evaluation ({metrics.get("total")} texts)
| metric | value |
|---|---|
{rows}

## Use
```python
from transformers import pipeline
clf = pipeline("text-classification", model="PATH/model")
clf("a gripping, beautifully acted film")

from encoderlab.classify import TextClassifier   # same truncation as in training, top-k, probabilities
TextClassifier("PATH/model")(["first text", "second text"], top_k=2)
```
"""


def write_confusion_png(run: RunDir, metrics: dict[str, Any]) -> Path | None:
    """RUN/confusion_matrix.png drawn by encoderlab.reports.plots, written atomically."""
    from ..reports.plots import NamedFigure, RunData, confusion_figure, save_figures

    fig = confusion_figure(RunData(name=run.path.name, path=run.path, metrics=metrics))
    if fig is None:
        return None
    return save_figures([NamedFigure("confusion_matrix", "Confusion matrix", fig)], run.path)[0]


def correct_predictions(outputs, batch) -> tuple[Any, int]:
    """(predictions equal to the label, texts) in a training batch: the engine's ``train_accuracy`` hook."""
    labels = batch["labels"]
    return (outputs["logits"].argmax(dim=-1) == labels).sum(), labels.numel()


def train_classify(cfg: ClassifyTrainConfig, *, resume: bool | str = False, overwrite: bool = False,
                   log: Callable[[str], None] = print, callbacks: list | None = None) -> dict[str, Any]:
    """Fine-tune, evaluate, save. Returns the final metrics (also in RUN/metrics.json).

    `callbacks`: extra transformers.TrainerCallback objects handed to the Trainer.
    """
    t_start = time.time()
    cfg.validate()
    metric, greater_is_better = cfg.selection_metric()       # the task registry's classification metrics
    precision = resolve_precision(cfg.precision)
    from transformers import set_seed

    set_seed(cfg.seed)
    train, evaluation, labels = load_classify_data(cfg, log)
    resolved = load_model(cfg.model, "classify", tokenizer=cfg.tokenizer, seed=cfg.seed, num_labels=len(labels),
                          id2label=dict(enumerate(labels)), label2id={name: i for i, name in enumerate(labels)})
    model, tok = resolved.model, resolved.tokenizer
    model.config.problem_type = "single_label_classification"
    fcfg = ClassifyFeatureConfig(cfg.max_seq_length, cfg.truncation, cfg.head_tokens)
    fcfg.check(tok)
    limit = getattr(model.config, "max_position_embeddings", 512)
    if cfg.max_seq_length > limit:
        raise EncoderlabError(f"max_seq_length {cfg.max_seq_length} exceeds the model's {limit} positions")
    write_model_info(model, ModelInfo(task="classify", labels=list(labels), max_seq_length=cfg.max_seq_length,
                                      truncation=cfg.truncation, head_tokens=cfg.head_tokens,
                                      text_column=train.text_column, text_pair_column=train.text_pair_column,
                                      label_column=train.label_column))

    run = RunDir(cfg.output_dir)
    main_process = is_main_process()
    y_train = encode_labels(train, labels)        # checked before started_run deletes anything
    y_eval = encode_labels(evaluation, labels)
    train_feats = make_features(train.texts, tok, fcfg, pairs=train.pairs)
    eval_feats = make_features(evaluation.texts, tok, fcfg, pairs=evaluation.pairs)
    with started_run(run, cfg, resume=resume, overwrite=overwrite, log=log) as checkpoint:
        if main_process:
            run.write_json("labels.json", {"labels": labels, "label2id": {n: i for i, n in enumerate(labels)},
                                           "train_counts": train.class_counts()})
        if main_process:
            log(f"train: {len(train)} texts ({', '.join(f'{k} {v}' for k, v in train.class_counts().items())}) · "
                f"eval: {len(evaluation)} texts · labels {', '.join(labels)} · truncated to {cfg.max_seq_length} "
                f"tokens ({cfg.truncation}): {train_feats.truncated + eval_feats.truncated} texts · model {cfg.model} "
                f"({resolved.num_parameters / 1e6:.1f} M parameters) · precision {precision}")
        import datasets

        cols = train_feats.model_inputs(y_train)
        cols["length"] = train_feats.lengths.tolist()
        train_ds = datasets.Dataset.from_dict(cols)
        def evaluate(trainer):
            start = time.time()
            out = predict_features(trainer.model, tok, eval_feats, labels=y_eval, batch_size=cfg.eval_batch_size,
                                   precision=precision, device=trainer.args.device, accelerator=trainer.accelerator)
            return {"loss": out.loss, **classification_metrics(y_eval, out.predicted, labels),
                    "examples_per_second": len(eval_feats) / max(time.time() - start, 1e-9)}, out

        done = train_task(model=model, tokenizer=tok, cfg=cfg, run=run, train_dataset=train_ds,
                          collator=DynamicPadCollator(tok), evaluate=evaluate, metric=metric,
                          greater_is_better=greater_is_better, callbacks=callbacks, checkpoint=checkpoint,
                          started=t_start, eval_input_ids=eval_feats.input_ids, log=log,
                          train_accuracy=correct_predictions)
        trainer, result, final, out = done.trainer, done.result, done.final, done.output
        save_model(trainer, run, model_card(cfg, train, evaluation, labels, final, resolved.source))
        if trainer.is_world_process_zero():
            lines = []
            for i in range(len(evaluation)):
                row = {"id": evaluation.ids[i], "text": evaluation.texts[i]}
                if evaluation.pairs is not None:
                    row["text_pair"] = evaluation.pairs[i]
                row.update(label=evaluation.labels[i], predicted=labels[int(out.predicted[i])],
                           score=round(float(out.probabilities[i].max()), 6),
                           probabilities={n: round(float(p), 6) for n, p in zip(labels, out.probabilities[i])})
                lines.append(json.dumps(row, ensure_ascii=False))
            atomic_write_text(run.path / "predictions.jsonl", "\n".join(lines) + "\n")
            write_confusion_png(run, final)
            summary = {**final, "train_examples": len(train), "eval_examples": len(evaluation),
                       **train_summary(trainer, result, checkpoint=checkpoint, items=len(train_feats),
                                       unit="examples", t_start=t_start)}
            run.complete(summary)
            return summary
        return final
