"""Sweep cost: per-trial overhead (process start, storage, data + model setup) vs training time, and the
speedup of K local workers (`encoderlab sweep run --workers K`) on this machine.

Each trial is its own process (see docs/sweeps.md). For every K in --workers the same random sweep of
--trials trials runs into a fresh SQLite storage; the trials' own timings (stored as user attributes)
give the breakdown, the wall time of the whole sweep gives the throughput.

    python bench/bench_sweep.py [--trials 8] [--workers 1,2] [--model scratch:bert-mini] [--steps 30]
    python bench/bench_sweep.py --quick --no-docs          # smoke test: tiny sizes, nothing appended
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SQUAD_DEV, SQUAD_SPLIT, append_section  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="scratch:bert-mini")
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts to compare")
    ap.add_argument("--questions", type=int, default=200, help="training questions per trial")
    ap.add_argument("--steps", type=int, default=30, help="optimizer steps per trial")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    ap.add_argument("--no-docs", action="store_true", help="do not append to docs/benchmarks.md")
    args = ap.parse_args(argv)
    if args.quick:
        args.model, args.trials, args.questions, args.steps = "scratch:bert-tiny", 2, 16, 2
    workers = [int(w) for w in args.workers.split(",") if w.strip()]

    import optuna
    import yaml

    from encoderlab.sweep.runner import run_sweep

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    base = {"model": args.model, "limit": args.questions, "eval_limit": max(8, args.questions // 4),
            "max_steps": args.steps, "eval_steps": max(1, args.steps // 2), "logging_steps": max(1, args.steps // 4),
            "train_batch_size": 16, "eval_batch_size": 32, "max_seq_length": 256, "doc_stride": 64,
            "save_total_limit": 1}
    if SQUAD_DEV.exists() and not args.quick:
        base.update(train=str(SQUAD_DEV), split_file=str(SQUAD_SPLIT), train_split="train", eval_split="test")
    else:
        base.update(train="builtin:squad-sample", train_split="train", eval_split="test", max_seq_length=128,
                    doc_stride=32)
    (tmp / "base.yaml").write_text(yaml.safe_dump(base), encoding="utf-8")
    (tmp / "sweep.yaml").write_text(yaml.safe_dump({
        "method": "random", "metric": {"name": "eval_loss", "goal": "minimize"},
        "parameters": {"learning_rate": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-3},
                       "warmup_ratio": {"min": 0.0, "max": 0.2}}}), encoding="utf-8")

    rows, walls = [], {}
    for k in workers:
        name = f"bench-k{k}"
        t0 = time.time()
        run_sweep(tmp / "sweep.yaml", tmp / "base.yaml", name=name, count=args.trials, workers=k,
                  sweep_dir=tmp / name, seed=0, log=lambda m: print(m, file=sys.stderr))
        walls[k] = time.time() - t0
        study = optuna.load_study(study_name=name, storage=f"sqlite:///{tmp / name / 'sweep.db'}")
        done = [t for t in study.trials if t.state.is_finished() and "timing" in t.user_attrs]
        timing = {key: statistics.mean(t.user_attrs["timing"].get(key) or 0.0 for t in done)
                  for key in ("process_start", "imports", "storage", "setup_and_eval", "train")}
        total = statistics.mean((t.datetime_complete - t.datetime_start).total_seconds() for t in done)
        rows.append((k, len(done), timing, total, walls[k]))

    lines = [f"Model `{args.model}`, {args.trials} trials of {args.steps} optimizer steps on {args.questions} "
             f"questions (batch 16), random sweep over learning_rate and warmup_ratio; SQLite storage.", "",
             "| workers | trials | process start + imports (s) | storage (s) | data + model + eval + save (s) "
             "| training (s) | trial total (s) | overhead share | sweep wall (s) | trials/min | speedup |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    ref = None
    for k, n, tm, total, wall in rows:
        overhead = tm["process_start"] + tm["imports"] + tm["storage"]
        rate = 60 * n / wall if wall else 0.0
        ref = ref or rate
        lines.append(f"| {k} | {n} | {tm['process_start'] + tm['imports']:.1f} | {tm['storage']:.1f} | "
                     f"{tm['setup_and_eval']:.1f} | {tm['train']:.1f} | {total:.1f} | "
                     f"{overhead / total:.0%} | {wall:.0f} | {rate:.2f} | {rate / ref:.2f}x |")
    lines += ["", "Overhead share = (process start + imports + storage) / trial total. Speedup = trials per minute "
              "relative to the first row; each trial process gets cpu_count / K threads."]
    body = "\n".join(lines)
    print(body)
    if not args.no_docs:
        append_section("Sweeps: per-trial overhead and local workers", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
