"""Compare two extractive-QA models on the same questions (``encoderlab compare``).

Both models predict every selected question of one data set (one :func:`predict_answers` call per
model, i.e. one ``predict_examples`` run each) and are scored with the official SQuAD metric
(:func:`encoderlab.metrics.squad.squad_evaluate`). The result is one JSON-ready dict:

* ``models`` — one row per model: ``correct``, ``similar``, ``incorrect``, ``exact`` (EM),
  ``modified_exact`` (modified EM) and ``f1`` (definitions in docs/metrics.md), then the text-overlap
  metrics asked for with ``metrics`` (``bleu``, ``rouge1``, ``rouge2``, ``rougeL``, ``meteor``);
* ``agreement`` — how many questions the two models answer differently (after SQuAD answer
  normalization), both / neither / only one of them correct, and a few ``examples`` where exactly
  one model is correct;
* ``asked`` (with a questions file) — each model's top-k answers and confidences, side by side.

A questions file is a YAML list of ``{context: TEXT, question: TEXT}`` or
``{context_file: PATH, question: TEXT}`` items; relative ``context_file`` paths are read from the
YAML file's folder.

Two classification models are compared by :mod:`encoderlab.analysis.compare_classify` (the CLI picks
the variant from the models' saved task). Models are loaded by :func:`encoderlab.qa.predict.load_qa_model`
and predict through :func:`encoderlab.qa.predict.predict_dataset` (as ``evaluate --model`` and
``robustness`` do), so each uses the windows it was trained with unless they are given. A base encoder
(``builtin:minilm-l6``, ``scratch:…``) gets a fresh, seeded QA head and a note in ``notes``; a model
trained for another task is refused with one line. The helpers :func:`score` and :func:`subset_gold`
are shared with :mod:`encoderlab.analysis.robustness`.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..config import INFERENCE_BATCH_SIZE
from ..data.squad import load_squad, select
from ..errors import DataError, EncoderlabError
from ..metrics.overlap import METRIC_KEYS, NO_SYNONYMS, NO_WORDNET, parse_metric_names
from ..metrics.squad import GoldSet, normalize_answer
from ..qa.evaluate import score_predictions
from ..qa.predict import load_qa_model, predict_dataset, untrained_note
from ..training import resolve_precision

__all__ = ["AskedQuestion", "compare_models", "comparison_markdown", "model_label", "read_questions_file", "score",
           "subset_gold", "TABLE_COLUMNS"]

# The comparison table ("Table 4"): (result key, column header).
TABLE_COLUMNS = (("correct", "correct"), ("similar", "similar"), ("incorrect", "incorrect"),
                 ("exact", "EM"), ("modified_exact", "modified EM"), ("f1", "F1"))


# --------------------------------------------------------------------------------------------
# models, prediction and scoring (shared with robustness.py)

def model_label(spec: str) -> str:
    """A short name for a model spec: the run directory's name for ``RUN/model``, else the spec."""
    path = Path(spec.rstrip("/"))
    if path.name == "model" and path.parent.name not in ("", ".", ".."):
        return path.parent.name
    return spec


def unique_labels(specs: list[str]) -> list[str]:
    """Short labels; the full specs when those collide; lettered short labels when the specs are equal too."""
    labels = [model_label(s) for s in specs]
    if len(set(labels)) == len(labels):
        return labels
    if len(set(specs)) == len(specs):
        return list(specs)
    return [f"{label} [{chr(ord('A') + i)}]" for i, label in enumerate(labels)]


def subset_gold(gold: GoldSet, ids: Iterable[str]) -> GoldSet:
    """The gold set restricted to `ids` (same version and question texts)."""
    ids = list(ids)
    return GoldSet({i: gold.answers[i] for i in ids}, gold.version, {i: gold.questions.get(i, "") for i in ids})


def score(gold: GoldSet, predictions: dict[str, str], metrics=()) -> dict:
    """The official metrics of `predictions` on `gold` (questions without a prediction score 0, silently), plus
    the text-overlap `metrics` asked for (:func:`encoderlab.qa.evaluate.score_predictions`)."""
    return score_predictions(gold, predictions, metrics=metrics)


def per_question(gold: GoldSet, predictions: dict[str, str]) -> dict[str, tuple[float, float]]:
    """{id: (EM, F1)} in 0..1 for each gold question, each one scored by ``squad_evaluate`` itself."""
    out = {}
    for qid, answers in gold.answers.items():
        m = score(GoldSet({qid: answers}, gold.version), {qid: predictions[qid]} if qid in predictions else {})
        out[qid] = (m["exact"] / 100.0, m["f1"] / 100.0)
    return out


def metric_row(metrics: dict) -> dict:
    """The comparison table's figures (plus ``total`` and any text-overlap metrics) from a :func:`score` result."""
    return {"total": metrics["total"], **{key: metrics[key] for key, _ in TABLE_COLUMNS},
            **{key: metrics[key] for key in METRIC_KEYS if key in metrics}}


def table_columns(rows: list[dict]) -> list[tuple[str, str]]:
    """(key, header) of the comparison table: :data:`TABLE_COLUMNS`, then the text-overlap metrics the rows
    carry, headed by their labels in the task registry."""
    from ..tasks import get_task

    qa = get_task("qa")
    return [*TABLE_COLUMNS, *((key, qa.metric(key).label) for key in METRIC_KEYS if any(key in r for r in rows))]


# --------------------------------------------------------------------------------------------
# questions file

@dataclass
class AskedQuestion:
    question: str
    context: str
    source: str        # "inline" or the context file's path as written


def read_questions_file(path: str | Path) -> list[AskedQuestion]:
    """Read and validate a YAML list of {context | context_file, question} items (one-line errors)."""
    import yaml

    from ..data.io import read_text

    path = Path(path)
    try:
        items = yaml.safe_load(read_text(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise DataError(f"{path}: malformed YAML{where}: {problem}") from exc
    shape = "a list of {context: TEXT, question: TEXT} or {context_file: PATH, question: TEXT} items"
    if not isinstance(items, list):
        raise DataError(f"{path}: expected {shape}, found {type(items).__name__ if items is not None else 'nothing'}")
    if not items:
        raise DataError(f"{path}: no questions (expected {shape})")
    out = []
    for n, item in enumerate(items, 1):
        where = f"{path}: item {n} of {len(items)}"
        if not isinstance(item, dict):
            raise DataError(f"{where}: expected a mapping with context (or context_file) and question, "
                            f"found {type(item).__name__}")
        unknown = sorted(str(k) for k in item if k not in ("context", "context_file", "question"))
        if unknown:
            raise DataError(f"{where}: unknown key(s) {', '.join(unknown)} (expected context or context_file, "
                            f"and question)")
        question = item.get("question")
        if not isinstance(question, str) or not question.strip():
            raise DataError(f"{where}: missing or empty 'question'")
        if ("context" in item) == ("context_file" in item):
            raise DataError(f"{where}: give exactly one of 'context' or 'context_file'")
        if "context" in item:
            context, source = item["context"], "inline"
            if not isinstance(context, str):
                raise DataError(f"{where}: 'context' should be text, found {type(context).__name__}")
        else:
            name = item["context_file"]
            if not isinstance(name, str) or not name.strip():
                raise DataError(f"{where}: 'context_file' should be a file path")
            file = Path(name).expanduser()
            file = file if file.is_absolute() else path.parent / file
            try:
                context = read_text(file)
            except DataError as exc:
                raise DataError(f"{where}: context_file {exc}") from exc
            source = name
        if not context.strip():
            raise DataError(f"{where}: empty context")
        out.append(AskedQuestion(question.strip(), context, source))
    return out


# --------------------------------------------------------------------------------------------
# the comparison

def check_counts(top_k: int, examples: int) -> None:
    """The --top-k / --examples checks both comparisons share."""
    if top_k < 1:
        raise EncoderlabError(f"--top-k must be at least 1, not {top_k}")
    if examples < 0:
        raise EncoderlabError(f"--examples must be 0 or more, not {examples}")


def compare_models(model_a: str, model_b: str, data: str, *, split_file: str | Path | None = None,
                   part: str | None = None, limit: int | None = None, questions: str | Path | None = None,
                   top_k: int = 3, examples: int = 3, max_seq_length: int | None = None,
                   doc_stride: int | None = None, batch_size: int = INFERENCE_BATCH_SIZE,
                   precision: str = "auto", metrics=None) -> dict[str, Any]:
    """Predict the same questions with two QA models and compare them (see the module docstring).

    Windows: each model's own recorded ones unless `max_seq_length` / `doc_stride` are given. `metrics`:
    text-overlap metrics to add to each model's row (``"bleu,rouge,meteor"`` or a list).
    """
    check_counts(top_k, examples)
    metrics = parse_metric_names(metrics)
    resolve_precision(precision)                        # a bad value fails before anything loads
    ds = select(load_squad(data), split_file=split_file, part=part, limit=limit)
    asked = read_questions_file(questions) if questions is not None else []
    specs = [model_a, model_b]
    loaded = [load_qa_model(s) for s in specs]          # refuse a non-QA model before predicting anything
    models = [m for m, _ in loaded]
    notes = [n for s, (_, info) in zip(specs, loaded) if (n := untrained_note(s, info))]
    labels = unique_labels(specs)
    gold = ds.gold()

    predictions = [predict_dataset(m.model, m.tokenizer, ds, max_seq_length=max_seq_length, doc_stride=doc_stride,
                                   batch_size=batch_size, precision=precision,
                                   show_progress=sys.stderr.isatty()).predictions
                   for m in models]
    rows = [{"label": label, "spec": spec, **metric_row(score(gold, p, metrics))}
            for label, spec, p in zip(labels, specs, predictions)]
    if any(NO_SYNONYMS in row for row in rows):
        notes.append(NO_WORDNET)

    scores = [per_question(gold, p) for p in predictions]
    correct = [{qid for qid, (em, _) in s.items() if em == 1.0} for s in scores]
    ids = list(gold.answers)
    differ = sum(1 for q in ids if normalize_answer(predictions[0].get(q, "")) != normalize_answer(predictions[1].get(q, "")))
    by_id = {e.id: e for e in ds.examples}
    shown = []
    for winner in (0, 1):
        picked = [q for q in ids if q in correct[winner] and q not in correct[1 - winner]][:examples]
        for q in picked:
            shown.append({"id": q, "question": by_id[q].question, "gold": gold.answers[q],
                          "answers": [predictions[0].get(q, ""), predictions[1].get(q, "")],
                          "correct": [q in correct[0], q in correct[1]],
                          "f1": [round(scores[0][q][1], 4), round(scores[1][q][1], 4)]})
    agreement = {"questions": len(ids), "answered_differently": differ,
                 "both_correct": len(correct[0] & correct[1]),
                 "neither_correct": sum(1 for q in ids if q not in correct[0] and q not in correct[1]),
                 "only_correct": [len(correct[0] - correct[1]), len(correct[1] - correct[0])],
                 "examples": shown}

    result: dict[str, Any] = {"data": str(data), "version": ds.version, "split_file": str(split_file) if split_file else None,
                              "part": part, "limit": limit, "questions": len(ds), "models": rows,
                              "agreement": agreement, "notes": notes}
    if asked:
        from ..qa.predict import QuestionAnswerer

        answers = []
        for m in models:
            qa = QuestionAnswerer(m.model, m.tokenizer, max_seq_length=max_seq_length, doc_stride=doc_stride,
                                  precision=precision)
            answers.append(qa.answer_many([a.question for a in asked], [a.context for a in asked], top_k))
        result["top_k"] = top_k
        result["asked"] = [{"question": a.question, "context": a.source, "answers": [answers[0][i], answers[1][i]]}
                           for i, a in enumerate(asked)]
    return result


# --------------------------------------------------------------------------------------------
# Markdown

def md_cell(text: Any) -> str:
    """Text made safe for one Markdown table cell (pipes escaped, line breaks flattened)."""
    s = str(text).replace("\\", "\\\\").replace("|", "\\|")
    return " ".join(s.split()) or " "


def md_table(headers: list[str], rows: list[list[Any]], right: Iterable[int] = ()) -> str:
    right = set(right)
    lines = ["| " + " | ".join(md_cell(h) for h in headers) + " |",
             "|" + "|".join("---:" if i in right else "---" for i in range(len(headers))) + "|"]
    lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_metric(key: str, value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def ranked_rows(columns: list[list], cell) -> list[list[str]]:
    """Rows `rank, cell(col_1[r]), cell(col_2[r]), ...` for ranked lists of unequal lengths (cell(None) = blank)."""
    depth = max((len(x) for x in columns), default=0)
    return [[str(r + 1)] + [cell(x[r] if r < len(x) else None) for x in columns] for r in range(depth)]


def ranked_md_table(names: list[str], columns: list[list], cell) -> str:
    """Each model's ranked answers (or labels) side by side, one Markdown table."""
    return md_table(["rank"] + names, ranked_rows(columns, cell), right=[0])


def answer_cell(answer: dict | None) -> str:
    if answer is None:
        return ""
    text = answer["answer"] if answer["answer"] else "(no answer)"
    return f"{text} ({100 * answer['score']:.1f}%)"


def markdown_document(result: dict, *, heading: str, intro: str, columns, sentence: str,
                      example_header: list[str], example_row, asked_title: str, asked_heading, asked_key: str,
                      cell) -> str:
    """The Markdown comparison of two models (QA or classification): title, metric table, where they differ,
    the user's own inputs ranked side by side. `example_row(e)` / `asked_heading(n, item)` format one item."""
    labels = [m["label"] for m in result["models"]]
    lines = [heading, "", intro + " Models: "
             + ", ".join(f"**{m['label']}** = `{m['spec']}`" for m in result["models"]) + ".", ""]
    lines.append(md_table(["model"] + [h for _, h in columns],
                          [[m["label"]] + [fmt_metric(k, m.get(k, "")) for k, _ in columns] for m in result["models"]],
                          right=range(1, len(columns) + 1)))
    lines += ["", "## Where the models differ", "", sentence, ""]
    if result["agreement"]["examples"]:
        lines.append(md_table(example_header + labels, [example_row(e) for e in result["agreement"]["examples"]]))
    if result.get("asked"):
        lines += ["", f"## {asked_title} (top {result['top_k']})"]
        for n, item in enumerate(result["asked"], 1):
            lines += ["", asked_heading(n, item), ""]
            lines.append(ranked_md_table(labels, item[asked_key], cell))
    return "\n".join(lines) + "\n"


def comparison_markdown(result: dict) -> str:
    """The comparison as a Markdown document (the same content as the terminal tables)."""
    where = f" (part `{result['part']}`)" if result.get("part") else ""
    return markdown_document(
        result, heading=f"# Model comparison on `{result['data']}`{where}",
        intro=f"{result['questions']} questions, SQuAD v{result['version']} metric.",
        columns=table_columns(result["models"]),
        sentence=agreement_sentence(result), example_header=["question", "gold"],
        example_row=lambda e: [e["question"], " / ".join(dict.fromkeys(e["gold"])) or "(no answer)"]
        + [f"{t or '(no answer)'} {'✓' if ok else '✗'}" for t, ok in zip(e["answers"], e["correct"])],
        asked_title="Your questions", asked_key="answers", cell=answer_cell,
        asked_heading=lambda n, q: f"**{n}. {md_cell(q['question'])}** (context: {md_cell(q['context'])})")


def agreement_sentence(result: dict) -> str:
    a = result["agreement"]
    return agreement_counts(result, f"The models answer {a['answered_differently']} of {a['questions']} questions "
                                    f"differently (after SQuAD answer normalization).")


def agreement_counts(result: dict, first: str) -> str:
    """`first` (how many items the two models treat differently), then who is right where (QA and classification)."""
    a = result["agreement"]
    labels = [m["label"] for m in result["models"]]
    return (f"{first} Both correct: {a['both_correct']}; neither: {a['neither_correct']}; only "
            f"{labels[0]}: {a['only_correct'][0]}; only {labels[1]}: {a['only_correct'][1]}.")