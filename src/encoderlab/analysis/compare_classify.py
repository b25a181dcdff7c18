"""Compare two text-classification models on the same labelled texts (``encoderlab compare``).

The classification counterpart of :mod:`encoderlab.analysis.compare`: both models label every text
of one data set (:class:`encoderlab.classify.predict.TextClassifier`), each is scored with
:func:`encoderlab.metrics.classification.classification_metrics`, and the result is one JSON-ready
dict:

* ``models`` — one row per model: ``accuracy``, ``precision``, ``recall``, ``f1`` (binary for two
  classes, else macro), ``f1_macro``, ``mcc`` and ``correct`` / ``incorrect`` counts;
* ``agreement`` — how many texts the models label differently, both / neither / only one of them
  right, and a few ``examples`` where exactly one model is right;
* ``asked`` (with a texts file: one text a line) — each model's top-k labels with probabilities.

Both models must label the data's classes: a gold label neither model knows is refused with one line.
A base encoder (no recorded task) compared with a classifier gets a fresh, seeded classification head
with the classifier's labels and text settings, and a note in ``notes``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import INFERENCE_BATCH_SIZE
from ..errors import DataError, EncoderlabError

__all__ = ["CLASSIFY_COLUMNS", "compare_classifiers", "classifier_comparison_markdown", "read_texts_file"]

# The comparison table: (result key, column header).
CLASSIFY_COLUMNS = (("correct", "correct"), ("incorrect", "incorrect"), ("accuracy", "accuracy"),
                    ("precision", "precision"), ("recall", "recall"), ("f1", "F1"), ("f1_macro", "macro F1"),
                    ("mcc", "MCC"))


def read_texts_file(path: str | Path) -> list[str]:
    """One text a line (blank lines skipped); one-line errors for a missing, empty or non-UTF-8 file."""
    from ..data.io import read_text

    path = Path(path)
    texts = [line.strip() for line in read_text(path).splitlines() if line.strip()]
    if not texts:
        raise DataError(f"{path}: no texts (expected one text a line)")
    return texts


def _classifiers(specs: list[str], *, batch_size: int, max_seq_length: int | None, precision: str = "auto"):
    """A TextClassifier per spec; a base encoder takes the other (fine-tuned) model's labels on a fresh head."""
    from ..classify.predict import TextClassifier
    from ..modelinfo import model_info
    from ..models import load_model
    from ..tasks import find_task

    infos = [model_info(s) for s in specs]
    ref = next((i for i in infos if (t := find_task(i.task)) is not None and t.labelled), None)   # a model with labels
    out, notes = [], []
    for spec, info in zip(specs, infos):
        if info.task is None and ref is not None:
            labels = ref.labels
            r = load_model(spec, "classify", num_labels=len(labels), id2label=dict(enumerate(labels)),
                           label2id={name: i for i, name in enumerate(labels)})
            out.append(TextClassifier(r.model, r.tokenizer, batch_size=batch_size, precision=precision,
                                      max_seq_length=max_seq_length or ref.max_seq_length, truncation=ref.truncation))
            notes.append(f"{spec} has no trained classification head: it got a fresh, seeded one with the labels "
                         f"{', '.join(labels)}, so its labels are arbitrary")
        else:
            out.append(TextClassifier(spec, batch_size=batch_size, max_seq_length=max_seq_length, precision=precision))
    return out, notes


def compare_classifiers(model_a: str, model_b: str, data: str, *, text_column: str | None = None,
                        text_pair_column: str | None = None, label_column: str | None = None,
                        limit: int | None = None, texts: str | Path | None = None, top_k: int = 2,
                        examples: int = 3, batch_size: int = INFERENCE_BATCH_SIZE,
                        max_seq_length: int | None = None, precision: str = "auto") -> dict[str, Any]:
    """Label the same texts with two classifiers and compare them (see the module docstring)."""
    from ..data.text import encode_labels, limit_dataset, load_text_dataset
    from ..metrics.classification import classification_metrics
    from .compare import check_counts, unique_labels

    check_counts(top_k, examples)
    if limit is not None and limit < 1:
        raise EncoderlabError(f"--limit must be positive, not {limit}")
    ds = load_text_dataset(data, text_column=text_column, text_pair_column=text_pair_column,
                           label_column=label_column)
    ds = limit_dataset(ds, limit, stratify=False)          # the first N rows, as for QA
    asked = read_texts_file(texts) if texts is not None else []
    specs = [model_a, model_b]
    classifiers, notes = _classifiers(specs, batch_size=batch_size, max_seq_length=max_seq_length, precision=precision)
    names = unique_labels(specs)
    n = len(ds)

    rows, predicted, golds = [], [], []
    for name, spec, clf in zip(names, specs, classifiers):
        try:
            gold_idx = encode_labels(ds, clf.labels)      # a gold label the model cannot predict: one line
        except DataError as exc:
            raise DataError(f"{spec} cannot be scored on {data}: {exc}") from exc
        out = clf.predict(ds.texts, ds.pairs)
        m = classification_metrics(gold_idx.tolist(), out.predicted.tolist(), clf.labels)
        gold = [clf.labels[i] for i in gold_idx]
        pred = [clf.labels[i] for i in out.predicted]
        right = sum(g == p for g, p in zip(gold, pred))
        rows.append({"label": name, "spec": spec, "labels": list(clf.labels), "total": n, "correct": right,
                     "incorrect": n - right, **{k: m[k] for k, _ in CLASSIFY_COLUMNS if k in m},
                     "confusion_matrix": m["confusion_matrix"]})
        predicted.append(pred)
        golds.append(gold)

    ok = [[g == p for g, p in zip(golds[i], predicted[i])] for i in (0, 1)]
    differ = sum(a != b for a, b in zip(predicted[0], predicted[1]))
    shown = []
    for winner in (0, 1):
        picked = [i for i in range(n) if ok[winner][i] and not ok[1 - winner][i]][:examples]
        shown += [{"index": i, "id": ds.ids[i], "where": ds.where[i], "text": ds.texts[i], "gold": golds[0][i],
                   "predicted": [predicted[0][i], predicted[1][i]], "correct": [ok[0][i], ok[1][i]]}
                  for i in picked]
    agreement = {"texts": n, "labelled_differently": differ,
                 "both_correct": sum(a and b for a, b in zip(*ok)),
                 "neither_correct": sum(not a and not b for a, b in zip(*ok)),
                 "only_correct": [sum(a and not b for a, b in zip(*ok)), sum(b and not a for a, b in zip(*ok))],
                 "examples": shown}
    result: dict[str, Any] = {"task": "classify", "data": str(data), "limit": limit, "texts": n, "models": rows,
                              "agreement": agreement, "notes": notes}
    if asked:
        answers = [clf(asked, top_k=len(clf.labels)) for clf in classifiers]
        result["top_k"] = top_k
        result["asked"] = [{"text": t, "labels": [answers[0][i]["top"][:top_k], answers[1][i]["top"][:top_k]]}
                           for i, t in enumerate(asked)]
    return result


def label_cell(item: dict | None) -> str:
    return "" if item is None else f"{item['label']} ({100 * item['score']:.1f}%)"


def agreement_sentence(result: dict) -> str:
    from .compare import agreement_counts

    a = result["agreement"]
    return agreement_counts(result, f"The models label {a['labelled_differently']} of {a['texts']} texts differently.")

def classifier_comparison_markdown(result: dict) -> str:
    """The comparison as a Markdown document (the same content as the terminal tables)."""
    from .compare import markdown_document, md_cell

    return markdown_document(
        result, heading=f"# Classifier comparison on `{result['data']}`", intro=f"{result['texts']} labelled texts.",
        columns=CLASSIFY_COLUMNS, sentence=agreement_sentence(result), example_header=["text", "gold"],
        example_row=lambda e: [e["text"], e["gold"]]
        + [f"{p} {'✓' if c else '✗'}" for p, c in zip(e["predicted"], e["correct"])],
        asked_title="Your texts", asked_key="labels", cell=label_cell,
        asked_heading=lambda n, item: f"**{n}. {md_cell(item['text'])}**")
