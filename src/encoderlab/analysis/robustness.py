"""How one QA model holds up on several versions of the same questions (``encoderlab robustness``).

The versions are QA data sets that share question ids, e.g. SQuAD v1.1 dev and Spoken-SQuAD (the
same questions over speech-recognized contexts). The first version is the reference. The model
predicts each version once (:func:`encoderlab.qa.predict.predict_dataset`, as ``evaluate --model`` and
``compare`` do: the windows the model was trained with unless given), every figure comes
from the official metric (:func:`encoderlab.metrics.squad.squad_evaluate`), and the result (a
JSON-ready dict) holds:

* ``common`` — EM and F1 of every version on the questions present in *all* versions, with the drop
  against the reference (``exact_drop`` / ``f1_drop`` = reference − version, in points: positive
  means worse than the reference);
* ``by_type`` — the same per question type: the first wh-word of the (reference) question among
  what / who / when / where / which / why / how, matched lowercase on word boundaries, else "other";
* ``not_in_all`` — the questions that only some versions have, grouped by which versions have them
  (counts and ids): they are reported, never silently dropped;
* ``versions`` — each version's own figures on all of its selected questions.

Selection: ``split_file`` + ``part`` keep the same articles (by title) in every version.
``limit=N`` keeps the first N questions common to all versions (in the reference's order) and cuts
each version after the last of them, so the questions only some versions have stay in view within
that span.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from ..data.squad import QADataset, load_squad, select
from ..errors import EncoderlabError
from ..qa.predict import load_qa_model, predict_dataset, untrained_note
from .compare import fmt_metric, md_table, metric_row, model_label, score, subset_gold

__all__ = ["QUESTION_TYPES", "parse_version", "question_type", "robustness", "robustness_markdown"]

QUESTION_TYPES = ("what", "who", "when", "where", "which", "why", "how")
_WH = re.compile(r"\b(" + "|".join(QUESTION_TYPES) + r")\b")


def question_type(question: str) -> str:
    """The first of what/who/when/where/which/why/how in the question (lowercase, whole words), else "other"."""
    m = _WH.search(question.lower())
    return m.group(1) if m else "other"


def parse_version(arg: str) -> tuple[str, str]:
    """``NAME=FILE`` -> (NAME, FILE); FILE is any QA data spec (a .json/.jsonl path, builtin:…, hub:…)."""
    name, sep, spec = arg.partition("=")
    name, spec = name.strip(), spec.strip()
    if not sep or not name or not spec:
        raise EncoderlabError(f"--data {arg!r}: give each version as NAME=FILE, e.g. --data spoken=spoken_test-v1.1.json")
    return name, spec


def _check_versions(versions: list[tuple[str, str]]) -> None:
    if len(versions) < 2:
        raise EncoderlabError(f"robustness needs at least 2 versions of the data (got {len(versions)}): "
                              f"--data NAME=FILE --data NAME=FILE")
    names = [n for n, _ in versions]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise EncoderlabError(f"version name(s) {', '.join(dup)} given more than once; each --data NAME must be unique")


def _limit_to_common(datasets: list[QADataset], common: list[str], limit: int) -> tuple[list[QADataset], list[str]]:
    """Keep the first `limit` common questions; cut each version after the last of them (see module doc)."""
    if limit <= 0:
        raise EncoderlabError(f"--limit must be positive, not {limit}")
    kept = common[:limit]
    kept_set, common_set = set(kept), set(common)
    out = []
    for ds in datasets:
        last = max(i for i, e in enumerate(ds.examples) if e.id in kept_set)
        out.append(ds.subset([e for e in ds.examples[: last + 1] if e.id in kept_set or e.id not in common_set]))
    return out, kept


def _rows(names: list[str], metrics: list[dict]) -> list[dict]:
    ref = metrics[0]
    return [{"name": n, "exact": m["exact"], "f1": m["f1"], "exact_drop": ref["exact"] - m["exact"],
             "f1_drop": ref["f1"] - m["f1"]} for n, m in zip(names, metrics)]


def robustness(model: str, versions: list[tuple[str, str]], *, split_file: str | Path | None = None,
               part: str | None = None, limit: int | None = None, max_seq_length: int | None = None,
               doc_stride: int | None = None, batch_size: int = 64) -> dict[str, Any]:
    """Evaluate `model` on each (name, data spec) of `versions`; the first is the reference."""
    _check_versions(versions)
    names = [n for n, _ in versions]
    datasets = [select(load_squad(spec), split_file=split_file, part=part) for _, spec in versions]
    id_sets = [{e.id for e in ds.examples} for ds in datasets]
    in_all = set.intersection(*id_sets)
    common = [e.id for e in datasets[0].examples if e.id in in_all]
    if not common:
        sizes = ", ".join(f"{n}: {len(s)} questions" for n, s in zip(names, id_sets))
        raise EncoderlabError(f"the versions share no question ids ({sizes}); robustness compares versions of the "
                              f"same questions")
    if limit is not None:
        datasets, common = _limit_to_common(datasets, common, limit)
        id_sets = [{e.id for e in ds.examples} for ds in datasets]
    resolved, info = load_qa_model(model)
    notes = [n for n in [untrained_note(model, info)] if n]

    golds = [ds.gold() for ds in datasets]
    predictions = [predict_dataset(resolved.model, resolved.tokenizer, ds, max_seq_length=max_seq_length,
                                   doc_stride=doc_stride, batch_size=batch_size,
                                   show_progress=sys.stderr.isatty()).predictions for ds in datasets]

    common_metrics = [score(subset_gold(g, common), p) for g, p in zip(golds, predictions)]
    reference_questions = {e.id: e.question for e in datasets[0].examples}
    types: dict[str, list[str]] = {}
    for qid in common:
        types.setdefault(question_type(reference_questions[qid]), []).append(qid)
    by_type = []
    for t in (*QUESTION_TYPES, "other"):
        if t in types:
            metrics = [score(subset_gold(g, types[t]), p) for g, p in zip(golds, predictions)]
            by_type.append({"type": t, "questions": len(types[t]), "results": _rows(names, metrics)})

    # Questions that only some versions have, grouped by which versions have them (first-seen order).
    common_set = set(common)
    groups: dict[tuple[bool, ...], list[str]] = {}
    for ds in datasets:
        for e in ds.examples:
            if e.id not in common_set:
                key = tuple(e.id in s for s in id_sets)
                if e.id not in groups.setdefault(key, []):
                    groups[key].append(e.id)
    not_in_all = {"questions": sum(len(v) for v in groups.values()),
                  "groups": [{"in": [n for n, has in zip(names, key) if has],
                              "missing_from": [n for n, has in zip(names, key) if not has],
                              "questions": len(ids), "ids": ids} for key, ids in groups.items()]}

    version_rows = []
    for (name, spec), ds, g, p, ids in zip(versions, datasets, golds, predictions, id_sets):
        full = score(g, p)
        version_rows.append({"name": name, "data": spec, "squad_version": ds.version, "questions": len(ds),
                             "common": len(common), "not_in_all": len(ids - common_set),
                             **{k: v for k, v in metric_row(full).items() if k != "total"}})
    return {"model": model_label(model), "model_spec": model, "reference": names[0],
            "split_file": str(split_file) if split_file else None, "part": part, "limit": limit,
            "versions": version_rows,
            "common": {"questions": len(common), "results": _rows(names, common_metrics)},
            "by_type": by_type, "not_in_all": not_in_all, "notes": notes}


# --------------------------------------------------------------------------------------------
# Markdown

def _drop(row: dict, key: str, reference: bool) -> str:
    return "—" if reference else f"{row[key]:+.2f}"


def robustness_markdown(result: dict, max_ids: int = 5) -> str:
    """The robustness report as a Markdown document (the same content as the terminal tables)."""
    ref = result["reference"]
    where = f", part `{result['part']}`" if result.get("part") else ""
    lines = [f"# Robustness of `{result['model']}`", "",
             f"Model `{result['model_spec']}`; reference version **{ref}**{where}. Drops are reference − version "
             f"(EM/F1 points; positive = worse than the reference).", "",
             f"## Questions common to all versions ({result['common']['questions']})", ""]
    lines.append(md_table(["version", "EM", "F1", "EM drop", "F1 drop"],
                          [[r["name"], fmt_metric("exact", r["exact"]), fmt_metric("f1", r["f1"]),
                            _drop(r, "exact_drop", r["name"] == ref), _drop(r, "f1_drop", r["name"] == ref)]
                           for r in result["common"]["results"]], right=range(1, 5)))
    lines += ["", "## By question type (common questions)", ""]
    lines.append(md_table(["type", "questions", "version", "EM", "F1", "EM drop", "F1 drop"],
                          [[t["type"] if i == 0 else "", t["questions"] if i == 0 else "", r["name"],
                            fmt_metric("exact", r["exact"]), fmt_metric("f1", r["f1"]),
                            _drop(r, "exact_drop", r["name"] == ref), _drop(r, "f1_drop", r["name"] == ref)]
                           for t in result["by_type"] for i, r in enumerate(t["results"])], right=[1, 3, 4, 5, 6]))
    lines += ["", "## Questions not in every version", ""]
    lines.append(not_in_all_sentence(result))
    if result["not_in_all"]["groups"]:
        lines += ["", md_table(["in", "missing from", "questions", "example ids"],
                               [[", ".join(g["in"]), ", ".join(g["missing_from"]), g["questions"],
                                 ", ".join(g["ids"][:max_ids]) + (" …" if len(g["ids"]) > max_ids else "")]
                                for g in result["not_in_all"]["groups"]], right=[2])]
    lines += ["", "## Each version on all its questions", ""]
    lines.append(md_table(["version", "data", "questions", "common", "not in all", "EM", "F1"],
                          [[v["name"], v["data"], v["questions"], v["common"], v["not_in_all"],
                            fmt_metric("exact", v["exact"]), fmt_metric("f1", v["f1"])] for v in result["versions"]],
                          right=range(2, 7)))
    return "\n".join(lines) + "\n"


def not_in_all_sentence(result: dict) -> str:
    n = result["not_in_all"]["questions"]
    if not n:
        return f"All questions are in every version ({result['common']['questions']} common questions)."
    return (f"{n} question(s) are in some versions only; they count in each version's own figures below but not in "
            f"the common comparison.")
