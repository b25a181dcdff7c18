"""Time the official-metric evaluation of a 10,570-question SQuAD v1.1 dev prediction file.

    python bench/bench_evaluate.py

Measures reading + scoring (`encoderlab.metrics.squad.evaluate_files`) and scoring alone, best of 5,
for each official prediction file in ../shared/data/squad-predictions-v1.1, and appends the figures
to docs/benchmarks.md. Target: at most 1 s.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, SQUAD_DEV, append_section, require_shared_data  # noqa: E402


def best_of(n, fn):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args(argv)
    require_shared_data()
    from encoderlab.metrics.squad import evaluate_files, gold_from_squad, squad_evaluate

    warnings.simplefilter("ignore")
    gold = gold_from_squad(json.loads(SQUAD_DEV.read_text(encoding="utf-8")))
    rows = []
    for pred_file in sorted((SHARED_DATA / "squad-predictions-v1.1").glob("*.json")):
        if pred_file.name == "EXPECTED.json":
            continue
        preds = json.loads(pred_file.read_text(encoding="utf-8"))
        t_all, m = best_of(5, lambda: evaluate_files(SQUAD_DEV, pred_file))
        t_score, _ = best_of(5, lambda: squad_evaluate(gold, preds))
        rows.append(f"| {pred_file.name} | {m['total']} | {m['exact']:.4f} | {m['f1']:.4f} | {t_all:.3f} | {t_score:.3f} |")
        print(f"{pred_file.name:60s} EM {m['exact']:.4f} F1 {m['f1']:.4f}  read+score {t_all:.3f} s, score {t_score:.3f} s")
    if not args.no_docs:
        append_section("SQuAD v1.1 dev evaluation time (official metric)", """
| prediction file | questions | EM | F1 | read + score (s, best of 5) | score only (s) |
|---|---|---|---|---|---|
""" + "\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
