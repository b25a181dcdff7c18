"""`compare` for any task: the task comes from the models (task registry), the work from the task's own
comparison (``Task.compare``: QA in analysis/compare.py, classification in analysis/compare_classify.py).

A comparison result is rendered through a :class:`ComparisonView` — title, a metrics table, the agreement
sentence, the examples only one model gets right, and the side-by-side top-k tables — so the CLI draws
every task's comparison with one renderer.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from ..errors import EncoderlabError
from ..tasks import Task, get_task, resolve


@dataclass
class ComparisonView:
    title: str
    columns: list[str]                                   # headers of the metric columns
    rows: list[list[str]]                                # [model label, formatted metrics…]
    legend: list[str]                                    # "label = spec" where a label shortens a spec
    sentence: str                                        # how often the models agree
    examples_title: str = ""
    examples_headers: list[str] = field(default_factory=list)
    examples: list[tuple[list[str], list[tuple[str, bool]]]] = field(default_factory=list)  # (given cells, (answer, correct) per model)
    asked: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)      # (title, headers, ranked rows)


def comparison_task(model_a: str, model_b: str) -> Task:
    """The task both models are compared on: the fine-tuned one's (a base encoder gets its head), QA when
    neither records one. Two models of different tasks are refused."""
    from ..modelinfo import model_info

    tasks = [model_info(m).task for m in (model_a, model_b)]
    if tasks[0] and tasks[1] and tasks[0] != tasks[1]:
        raise EncoderlabError(f"{model_a} is a {tasks[0]} model and {model_b} a {tasks[1]} model; compare needs two "
                              f"models of the same task (or a base encoder and a fine-tuned model)")
    task = get_task(tasks[0] or tasks[1] or "qa")
    if task.compare is None:
        from ..tasks import TASKS

        comparable = ", ".join(t.name for t in TASKS.values() if t.compare is not None)
        raise EncoderlabError(f"{task.title} models cannot be compared with `compare` (comparable: {comparable})")
    return task


def compare(model_a: str, model_b: str, data: str, **options: Any) -> dict[str, Any]:
    """Compare two models on `data` with their task's comparison; options it does not take are dropped
    (None values too: each comparison has its own defaults). The result records the task."""
    task = comparison_task(model_a, model_b)
    fn = resolve(task.compare, task.name)
    accepted = inspect.signature(fn).parameters
    if options.get("metrics") and "metrics" not in accepted:
        raise EncoderlabError(f"--metrics (text-overlap metrics of answers) applies to QA models, not to "
                              f"{task.title} models")
    result = fn(model_a, model_b, data, **{k: v for k, v in options.items() if k in accepted and v is not None})
    return {"task": task.name, **result}


def markdown(result: dict) -> str:
    task = get_task(result.get("task", "qa"))
    return resolve(task.compare_markdown, task.name)(result)


def view(result: dict) -> ComparisonView:
    task = get_task(result.get("task", "qa"))
    return resolve(task.compare_view, task.name)(result)


def _legend(result: dict) -> list[str]:
    return [f"{m['label']} = {m['spec']}" for m in result["models"] if m["label"] != m["spec"]]


def qa_view(result: dict) -> ComparisonView:
    from .compare import agreement_sentence, answer_cell, fmt_metric, ranked_rows, table_columns

    labels = [m["label"] for m in result["models"]]
    columns = table_columns(result["models"])
    where = f", part {result['part']}" if result.get("part") else ""
    return ComparisonView(
        title=f"{result['questions']} questions of {result['data']}{where} (SQuAD v{result['version']})",
        columns=[header for _, header in columns],
        rows=[[m["label"], *(fmt_metric(k, m.get(k, "")) for k, _ in columns)] for m in result["models"]],
        legend=_legend(result), sentence=agreement_sentence(result),
        examples_title="Questions only one model answers correctly", examples_headers=["question", "gold", *labels],
        examples=[([e["question"], " / ".join(dict.fromkeys(e["gold"])) or "(no answer)"],
                   [(t or "(no answer)", ok) for t, ok in zip(e["answers"], e["correct"])])
                  for e in result["agreement"]["examples"]],
        asked=[(f"{n}. {q['question']} (context: {q['context']})", ["rank", *labels],
                ranked_rows(q["answers"], answer_cell)) for n, q in enumerate(result.get("asked", []), 1)])


def classify_view(result: dict) -> ComparisonView:
    from .compare import fmt_metric, ranked_rows
    from .compare_classify import CLASSIFY_COLUMNS, agreement_sentence, label_cell

    labels = [m["label"] for m in result["models"]]
    return ComparisonView(
        title=f"{result['texts']} labelled texts of {result['data']}",
        columns=[header for _, header in CLASSIFY_COLUMNS],
        rows=[[m["label"], *(fmt_metric(k, m.get(k, "")) for k, _ in CLASSIFY_COLUMNS)] for m in result["models"]],
        legend=_legend(result), sentence=agreement_sentence(result),
        examples_title="Texts only one model labels correctly", examples_headers=["text", "gold", *labels],
        examples=[([e["text"], e["gold"]], list(zip(e["predicted"], e["correct"])))
                  for e in result["agreement"]["examples"]],
        asked=[(f"{n}. {item['text']}", ["rank", *labels], ranked_rows(item["labels"], label_cell))
               for n, item in enumerate(result.get("asked", []), 1)])
