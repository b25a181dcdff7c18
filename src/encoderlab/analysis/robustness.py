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
* ``versions`` — each version's own figures on all of its selected questions;
* ``wer`` in each ``common`` row — jiwer's word error rate of that version's contexts against the
  reference's, over the distinct context pairs of the common questions (normalised words,
  :func:`encoderlab.data.noise.measure_wer`); 0 for the reference.

Synthetic versions: ``noise=[0.1, 0.22, …]`` adds one version per word error rate, made in memory from
the (selected) reference by :func:`encoderlab.data.noise.noise_qa` (seeded, ``noise_seed``), named
``wer=0.22``; their noise reports are in ``noise``. :func:`wer_figure` draws F1 and EM against WER: the
reference and the synthetic versions as a line, the versions read from files as separate markers.

Selection: ``split_file`` + ``part`` keep the same articles (by title) in every version.
``limit=N`` keeps the first N questions common to all versions (in the reference's order) and cuts
each version after the last of them, so the questions only some versions have stay in view within
that span.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Sequence

from ..config import INFERENCE_BATCH_SIZE
from ..data.noise import check_noise_options, measure_wer, noise_qa
from ..data.squad import QADataset, load_squad, select
from ..errors import EncoderlabError
from ..qa.predict import load_qa_model, predict_dataset, untrained_note
from ..training import resolve_precision
from .compare import fmt_metric, md_table, metric_row, model_label, score, subset_gold

__all__ = ["QUESTION_TYPES", "context_wer", "parse_version", "question_type", "robustness", "robustness_markdown",
           "wer_figure", "write_wer_plot"]

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


def _check_versions(names: list[str]) -> None:
    if len(names) < 2:
        raise EncoderlabError(f"robustness needs at least 2 versions of the data (got {len(names)}): "
                              f"--data NAME=FILE --data NAME=FILE, or --data NAME=FILE --noise 0.1,0.2")
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


def context_wer(reference: QADataset, version: QADataset, ids: list[str]) -> float:
    """jiwer's WER of `version`'s contexts against `reference`'s over the distinct context pairs of questions `ids`."""
    ref = {e.id: e.context for e in reference.examples}
    ver = {e.id: e.context for e in version.examples}
    pairs = list(dict.fromkeys((ref[i], ver[i]) for i in ids))
    return measure_wer([r for r, _ in pairs], [h for _, h in pairs])["wer"]


def noise_name(wer: float) -> str:
    return f"wer={wer:g}"


def robustness(model: str, versions: list[tuple[str, str]], *, split_file: str | Path | None = None,
               part: str | None = None, limit: int | None = None, max_seq_length: int | None = None,
               doc_stride: int | None = None, batch_size: int = INFERENCE_BATCH_SIZE, noise: Sequence[float] = (),
               noise_seed: int = 0, precision: str = "auto") -> dict[str, Any]:
    """Evaluate `model` on each (name, data spec) of `versions` and each synthetic `noise` level; the first is the reference."""
    if not versions:
        raise EncoderlabError("robustness needs a reference data set: --data NAME=FILE")
    resolve_precision(precision)                        # a bad value fails before anything loads
    for w in noise:
        check_noise_options(w, option="--noise")
    names = [n for n, _ in versions] + [noise_name(w) for w in noise]
    _check_versions(names)
    specs = [spec for _, spec in versions] + [f"noise:{w:g} (seed {noise_seed})" for w in noise]
    datasets = [select(load_squad(spec), split_file=split_file, part=part) for _, spec in versions]
    noise_reports = []
    for w in noise:
        noisy, report = noise_qa(datasets[0], w, seed=noise_seed)
        datasets.append(noisy)
        noise_reports.append({"name": noise_name(w), **report.to_dict()})
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
                                   doc_stride=doc_stride, batch_size=batch_size, precision=precision,
                                   show_progress=sys.stderr.isatty()).predictions for ds in datasets]

    common_metrics = [score(subset_gold(g, common), p) for g, p in zip(golds, predictions)]
    common_rows = _rows(names, common_metrics)
    for row, ds, generated in zip(common_rows, datasets, [False] * len(versions) + [True] * len(noise)):
        row["wer"] = context_wer(datasets[0], ds, common) if ds is not datasets[0] else 0.0
        row["generated"] = generated
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
    for name, spec, ds, g, p, ids in zip(names, specs, datasets, golds, predictions, id_sets):
        full = score(g, p)
        version_rows.append({"name": name, "data": spec, "squad_version": ds.version, "questions": len(ds),
                             "common": len(common), "not_in_all": len(ids - common_set),
                             **{k: v for k, v in metric_row(full).items() if k != "total"}})
    return {"model": model_label(model), "model_spec": model, "reference": names[0],
            "split_file": str(split_file) if split_file else None, "part": part, "limit": limit,
            "versions": version_rows,
            "common": {"questions": len(common), "results": common_rows},
            "by_type": by_type, "not_in_all": not_in_all, "noise": noise_reports, "notes": notes}


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
    lines.append(md_table(["version", "WER", "EM", "F1", "EM drop", "F1 drop"],
                          [[r["name"], fmt_wer(r), fmt_metric("exact", r["exact"]), fmt_metric("f1", r["f1"]),
                            _drop(r, "exact_drop", r["name"] == ref), _drop(r, "f1_drop", r["name"] == ref)]
                           for r in result["common"]["results"]], right=range(1, 6)))
    if result.get("noise"):
        lines += ["", "Synthetic versions (from the reference, whole selection): "
                  + "; ".join(noise_sentence(n) for n in result["noise"]) + "."]
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


def fmt_wer(row: dict) -> str:
    return f"{100 * row['wer']:.2f}%" if row.get("wer") is not None else "—"


def noise_sentence(n: dict) -> str:
    """One synthetic version's noise report in words."""
    return (f"{n['name']}: measured WER {n['measured_wer']:.4f} (seed {n['seed']}), answers {n['answers_kept']} kept, "
            f"{n['answers_relocated']} relocated, {n['answers_lost']} lost ({n['questions_dropped']} questions dropped)")


def wer_figure(result: dict):
    """F1 and EM (common questions) against WER: reference + synthetic versions as lines, file versions as stars."""
    from ..reports.plots import _new_figure

    rows = result["common"]["results"]
    fig = _new_figure(7.0, 4.4)
    ax = fig.add_subplot(1, 1, 1)
    line = sorted([r for r in rows if r["generated"] or r["name"] == result["reference"]], key=lambda r: r["wer"])
    real = [r for r in rows if not r["generated"] and r["name"] != result["reference"]]
    for key, label, color in (("f1", "F1", "#4C72B0"), ("exact", "EM", "#DD8452")):
        ax.plot([100 * r["wer"] for r in line], [r[key] for r in line], marker="o", color=color,
                label=f"{label}, synthetic noise")
        if real:
            ax.scatter([100 * r["wer"] for r in real], [r[key] for r in real], marker="*", s=160, color=color,
                       edgecolors="black", zorder=3, label=f"{label}, {', '.join(r['name'] for r in real)}")
    for r in real:
        ax.annotate(r["name"], (100 * r["wer"], r["f1"]), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_xlabel(f"word error rate against {result['reference']} (%, jiwer)")
    ax.set_ylabel("score (%)")
    ax.set_title(f"{result['model']}: {result['common']['questions']} common questions")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def write_wer_plot(result: dict, path: str | Path) -> Path:
    """Write :func:`wer_figure` as a PNG, atomically (a path that cannot be written is one error line)."""
    from ..reports.plots import figure_bytes
    from ..runs import write_output

    return write_output(path, figure_bytes(wer_figure(result)))


def not_in_all_sentence(result: dict) -> str:
    n = result["not_in_all"]["questions"]
    if not n:
        return f"All questions are in every version ({result['common']['questions']} common questions)."
    return (f"{n} question(s) are in some versions only; they count in each version's own figures below but not in "
            f"the common comparison.")
