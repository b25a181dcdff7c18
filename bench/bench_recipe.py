"""F1 against wall-clock minutes: encoderlab's 30-minute CPU recipe and the standard recipe, same machine, one run.

    python bench/bench_recipe.py [--recipe recipes/minilm-squad-30min/recipe.yaml] [--budget 30m]
                                 [--snapshots 2] [--reference-epochs 0.4] [--plot docs/f1_vs_minutes.png]

1. encoderlab: `train qa --config RECIPE --eval-split test --time-budget BUDGET`: fine-tunes on the
   whole `train` article half of SQuAD v1.1 dev and scores the `test` half once, at the end, inside
   the budget (nothing is selected on it: no early stopping, the last weights are the model). During the
   run the model is also saved at evenly spaced moments (`--snapshots`); after the run each snapshot is
   scored on the test half, and its point on the curve is (minutes when it was saved + minutes its
   scoring took, EM/F1): what a user stopping there would have had.
2. The standard recipe (`../shared/reference/hf_reference_qa.py`, static padding to 256, 1e-4, batch 16)
   on the same data, once per `--reference-epochs` value; its point is its whole wall time and its EM/F1.
3. Prints the points, writes the figure (F1 against minutes, both systems) and appends the table to
   docs/benchmarks.md, with the 2048² matmul peak measured in the same run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, SQUAD_DEV, SQUAD_SPLIT, append_section, matmul_gflops, require_shared_data  # noqa: E402

REFERENCE = REPO.parent / "shared" / "reference" / "hf_reference_qa.py"
TARGET_EM, TARGET_F1 = 65.0, 75.0


def snapshot_callback(out_dir: Path, moments: list[float], t_start: float, marks: list[dict]):
    """A TrainerCallback saving the model (safetensors + tokenizer) once the run's wall time passes each of
    `moments` (seconds since `t_start`); appends {"dir", "seconds", "step", "max_steps"} to `marks`."""
    from transformers import TrainerCallback

    class Snapshots(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, processing_class=None, **kwargs):
            elapsed = time.time() - t_start
            if len(marks) < len(moments) and elapsed >= moments[len(marks)]:
                target = out_dir / f"snapshot-{len(marks) + 1}"
                model.save_pretrained(target, safe_serialization=True)
                if processing_class is not None:
                    processing_class.save_pretrained(target)
                marks.append({"dir": str(target), "seconds": elapsed, "step": state.global_step,
                              "max_steps": state.max_steps})

    return Snapshots()


def run_encoderlab(recipe: Path, budget: str, snapshots: int, out_dir: Path) -> tuple[list[dict], Any, dict]:
    """Train the recipe within `budget`, score its snapshots: (curve points, the run's config, its final metrics)."""
    import transformers

    transformers.logging.set_verbosity_error()
    from encoderlab.config import build_config, parse_duration
    from encoderlab.qa.evaluate import evaluate_model
    from encoderlab.qa.train import QATrainConfig, train_qa

    cfg = build_config(QATrainConfig, recipe, {
        "train": str(SQUAD_DEV), "split_file": str(SQUAD_SPLIT), "train_split": "train", "eval_split": "test",
        "time_budget": budget, "output_dir": str(out_dir / "run")})
    seconds = parse_duration(budget, "--budget")
    moments = [seconds * (i + 1) / (snapshots + 1) for i in range(snapshots)]
    marks: list[dict] = []
    t0 = time.time()
    final = train_qa(cfg, overwrite=True, callbacks=[snapshot_callback(out_dir, moments, t0, marks)])
    wall = time.time() - t0
    points = []
    for mark in marks:
        t1 = time.time()
        metrics = evaluate_model(mark["dir"], str(SQUAD_DEV), split_file=SQUAD_SPLIT, part="test")[0]
        scoring = time.time() - t1
        points.append({"system": "encoderlab", "minutes": (mark["seconds"] + scoring) / 60, "exact": metrics["exact"],
                       "f1": metrics["f1"], "what": f"snapshot at step {mark['step']} of {mark['max_steps']} "
                                                   f"(saved at {mark['seconds'] / 60:.1f} min, scored in "
                                                   f"{scoring / 60:.1f} min)"})
        print(f"encoderlab {points[-1]['what']}: EM {metrics['exact']:.2f} F1 {metrics['f1']:.2f}", flush=True)
    points.append({"system": "encoderlab", "minutes": wall / 60, "exact": final["exact"], "f1": final["f1"],
                   "what": f"final: {final['global_step']} steps = "
                           f"{final['global_step'] * cfg.train_batch_size / final['train_features']:.2f} epochs, "
                           f"{final['train_features_per_second']:.2f} train features/s, test half scored inside "
                           f"the budget"})
    print(f"encoderlab final: EM {final['exact']:.2f} F1 {final['f1']:.2f} in {wall / 60:.1f} min", flush=True)
    return points, cfg, final


def run_reference(epochs: float, model_dir: str, out_dir: Path) -> dict:
    out = out_dir / f"reference-{epochs}.jsonl"
    env = dict(os.environ, EPOCHS=str(epochs), TMPDIR=str(out_dir))
    t0 = time.time()
    subprocess.run([sys.executable, str(REFERENCE), model_dir, str(SQUAD_DEV), str(SQUAD_SPLIT), str(out)],
                   env=env, check=True)
    wall = time.time() - t0
    row = json.loads(out.read_text().splitlines()[-1])
    em, f1 = row["exact"], row["f1"]
    print(f"standard recipe, {epochs} epoch(s): EM {em:.2f} F1 {f1:.2f} in {wall / 60:.1f} min", flush=True)
    return {"system": "standard recipe", "minutes": wall / 60, "exact": em, "f1": f1,
            "what": f"{epochs} epoch(s) at 256/64, lr 1e-4, batch 16: {row['train_feat_per_s']:.2f} train "
                    f"features/s, {row['infer_feat_per_s']:.1f} inference features/s"}


def plot(points: list[dict], budget_minutes: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from encoderlab.reports.plots import figure_bytes
    from encoderlab.runs import write_output

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for system, style in (("encoderlab", "o-"), ("standard recipe", "s--")):
        pts = sorted((p for p in points if p["system"] == system), key=lambda p: p["minutes"])
        if pts:
            ax.plot([p["minutes"] for p in pts], [p["f1"] for p in pts], style, label=f"{system} (F1)")
            for p in pts:
                ax.annotate(f"{p['f1']:.1f}", (p["minutes"], p["f1"]), textcoords="offset points", xytext=(4, 4),
                            fontsize=8)
    ax.axhline(TARGET_F1, color="grey", linestyle=":", label=f"target F1 {TARGET_F1:g}")
    ax.axvline(budget_minutes, color="grey", linestyle="-.", linewidth=0.8, label=f"{budget_minutes:g}-minute budget")
    ax.set_xlabel("wall-clock minutes (fine-tune + score the test half)")
    ax.set_ylabel("F1, test half of SQuAD v1.1 dev")
    ax.set_ylim(0, 100)
    ax.set_xlim(0, max(p["minutes"] for p in points) * 1.1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("MiniLM-L6 on SQuAD v1.1 (train half -> test half), 2-core CPU")
    fig.tight_layout()
    data = figure_bytes(fig)
    plt.close(fig)
    write_output(path, data)
    print(f"wrote {path}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default=str(REPO / "recipes" / "minilm-squad-30min" / "recipe.yaml"))
    ap.add_argument("--budget", default="30m", help="encoderlab's time budget (fine-tune + test-half scoring)")
    ap.add_argument("--snapshots", type=int, default=2, help="intermediate models scored for the curve")
    ap.add_argument("--reference-epochs", default="0.4", help="comma list of EPOCHS for the standard recipe")
    ap.add_argument("--plot", default=str(REPO / "docs" / "f1_vs_minutes.png"))
    ap.add_argument("--out-dir", default=None, help="scratch directory (default: a temporary one)")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args(argv)
    require_shared_data()
    if not REFERENCE.exists():
        sys.exit(f"needs {REFERENCE} (the standard recipe); not found")
    from encoderlab.config import parse_duration
    from encoderlab.models import builtin_model_dir
    from encoderlab.training import cpu_has_fast_bf16

    out_dir = Path(args.out_dir or tempfile.mkdtemp(prefix="bench-recipe-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    peak32 = matmul_gflops("float32")
    peak16 = matmul_gflops("bfloat16") if cpu_has_fast_bf16() else None
    points, cfg, final = run_encoderlab(Path(args.recipe), args.budget, args.snapshots, out_dir)
    model_dir = str(builtin_model_dir("minilm-l6"))
    for epochs in [float(x) for x in args.reference_epochs.split(",") if x.strip()]:
        points.append(run_reference(epochs, model_dir, out_dir))
    budget_minutes = parse_duration(args.budget, "--budget") / 60
    plot(points, budget_minutes, Path(args.plot))

    rows = "\n".join(f"| {p['system']} | {p['minutes']:.1f} | {p['exact']:.2f} | {p['f1']:.2f} | {p['what']} |"
                     for p in sorted(points, key=lambda p: (p["system"], p["minutes"])))
    settings = ", ".join(f"{k} {getattr(cfg, k)}" for k in (
        "learning_rate", "layerwise_lr_decay", "lr_scheduler_type", "warmup_ratio", "weight_averaging", "dropout",
        "attention_dropout",
        "train_batch_size", "max_seq_length", "doc_stride", "precision", "seed"))
    body = f"""
- encoderlab recipe `{os.path.relpath(args.recipe, REPO)}` ({settings}), `--time-budget {args.budget}` for
  fine-tuning on the whole train half ({final['train_questions']} questions -> {final['train_features']} features)
  and scoring the test half ({final['total']} questions) once at the end; intermediate snapshots scored after the run
- standard recipe: `../shared/reference/hf_reference_qa.py` with EPOCHS = {args.reference_epochs}
- 2048 x 2048 matmul measured in the same run: fp32 {peak32:.1f} GFLOP/s{f', bf16 {peak16:.1f} GFLOP/s' if peak16 else ' (no fast bf16 on this CPU)'}
- figure: `{os.path.relpath(args.plot, REPO)}`; target EM {TARGET_EM:g} / F1 {TARGET_F1:g}

| system | wall minutes | EM | F1 | point |
|---|---:|---:|---:|---|
{rows}
"""
    print(body)
    if not args.no_docs:
        append_section("F1 against wall-clock minutes: the 30-minute recipe vs the standard recipe", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
