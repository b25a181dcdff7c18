"""Shared bits of the benchmark scripts: machine description, commit, appending to docs/benchmarks.md."""
from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SQUAD_DEV = SHARED_DATA / "squad-v1.1" / "dev-v1.1.json"
SQUAD_SPLIT = SHARED_DATA / "squad-v1.1" / "split.json"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    import numpy as np

    parts = [f"`{platform.machine()}` ({cpu_name()}), {os.cpu_count()} CPUs, Python {platform.python_version()}",
             f"numpy {np.__version__}"]
    try:
        import torch
        import transformers

        parts.append(f"torch {torch.__version__} ({torch.get_num_threads()} threads), transformers {transformers.__version__}")
        if torch.cuda.is_available():
            parts.append(f"GPU {torch.cuda.get_device_name(0)}")
    except ImportError:
        pass
    return ", ".join(parts)


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return (out + ("+uncommitted changes" if dirty else "")) or "uncommitted"
    except (OSError, subprocess.CalledProcessError):
        return "uncommitted"


def command_line() -> str:
    return "python " + " ".join([os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:])


def append_section(title: str, body: str, doc: str = "benchmarks.md") -> Path:
    """Append a dated section (machine, commit, command, then `body`) to docs/`doc`."""
    path = REPO / "docs" / doc
    path.parent.mkdir(parents=True, exist_ok=True)
    head = "" if path.exists() else "# Benchmarks\n\nEvery section is appended by a script under `bench/`; figures move between sessions, so compare ratios measured in one run.\n"
    section = (f"\n## {title} ({dt.datetime.now().strftime('%Y-%m-%d %H:%M')})\n\n"
               f"- machine: {machine()}\n- git commit: `{git_commit()}`\n- command: `{command_line()}`\n\n"
               f"{body.strip()}\n")
    with path.open("a", encoding="utf-8") as fh:
        fh.write(head + section)
    print(f"appended to {path.relative_to(REPO)}")
    return path


def matmul_gflops(dtype: str = "float32", n: int = 2048, seconds: float = 1.0) -> float:
    """Measured GFLOP/s of an n x n by n x n matrix product in `dtype` (float32, bfloat16) on the CPU."""
    import time

    import torch

    kind = getattr(torch, dtype)
    a, b = torch.randn(n, n).to(kind), torch.randn(n, n).to(kind)
    a @ b                                    # warm-up
    count, t0 = 0, time.perf_counter()
    while True:
        a @ b
        count += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return 2 * n**3 * count / elapsed / 1e9


def require_shared_data() -> None:
    if not SQUAD_DEV.exists():
        sys.exit(f"needs {SQUAD_DEV} (the shared SQuAD data); not found")
