"""How long the `encoderlab` command takes before doing any work: `--help`, a subcommand's `--help`, and
scoring a prediction file (`evaluate --predictions`), each a fresh process; also which ML libraries each
imports. Target (issue #11): `encoderlab --help` <= 0.5 s, with neither torch nor transformers imported.

    python bench/bench_cli_startup.py [--repeats 7]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import append_section

PROBE = ("import sys, time, contextlib, io\n"
         "t0 = time.perf_counter()\n"
         "from encoderlab.cli import main\n"
         "with contextlib.redirect_stdout(io.StringIO()):\n"
         "    try:\n"
         "        code = main(sys.argv[1:])\n"
         "    except SystemExit as exc:\n"
         "        code = exc.code\n"
         "heavy = [m for m in ('torch', 'transformers', 'datasets', 'optuna', 'sklearn', 'matplotlib') if m in sys.modules]\n"
         "print(code, ','.join(heavy) or '-')\n")


def run(args: list[str], repeats: int) -> tuple[float, float, str]:
    """(median wall seconds of the whole process, best, heavy modules imported)."""
    times, heavy = [], "-"
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - t0)
        heavy = out.stdout.split()[-1]
    return statistics.median(times), min(times), heavy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    opts = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    gold = {"version": "1.1", "data": [{"title": "T", "paragraphs": [{"context": "Paris is in France.", "qas": [
        {"id": "q1", "question": "Where is Paris?", "answers": [{"text": "France", "answer_start": 12}]}]}]}]}
    (tmp / "d.json").write_text(json.dumps(gold))
    (tmp / "p.json").write_text(json.dumps({"q1": "France"}))
    baseline = run([], 1)  # warm the file cache once
    del baseline
    cases = [("encoderlab --help", ["--help"]), ("encoderlab train qa --help", ["train", "qa", "--help"]),
             ("encoderlab evaluate --predictions … --json", ["evaluate", "--data", str(tmp / "d.json"),
                                                            "--predictions", str(tmp / "p.json"), "--json"])]
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    python_alone = time.perf_counter() - t0
    rows = ["| command | median s | best s | ML libraries imported |", "|---|---:|---:|---|"]
    for label, args in cases:
        med, best, heavy = run(args, opts.repeats)
        rows.append(f"| `{label}` | {med:.3f} | {best:.3f} | {heavy} |")
        print(f"{label}: median {med:.3f} s, best {best:.3f} s, imports {heavy}")
    rows.append(f"| (python -c pass, for scale) | {python_alone:.3f} | | |")
    append_section("CLI start-up", f"Whole process, {opts.repeats} runs each (median / best):\n\n" + "\n".join(rows))


if __name__ == "__main__":
    main()
