"""Model-only throughput by batch size: how much batching can give on this machine, per backend.

    python bench/bench_forward.py [--model builtin:minilm-l6] [--batch-sizes 1,4,8,16,32] [--no-docs]

One SQuAD feature (a ~775-character paragraph + one question, the request of bench/bench_serve.py)
repeated B times, forward passes only (no tokenization, HTTP or post-processing): sequences/s for
torch fp32, torch bf16 autocast, ONNX Runtime fp32 and ONNX Runtime int8 (the graphs `encoderlab
export onnx --int8` writes). The ratio "best batch / batch 1" bounds what the server's dynamic
batcher can add: on a compute-bound CPU it is small, on a GPU it is large.
Appends a section to docs/benchmarks.md unless `--no-docs`.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, append_section  # noqa: E402


def feature(tokenizer) -> dict[str, np.ndarray]:
    data = json.loads((REPO / "src/encoderlab/data/builtin/squad-sample.json").read_text(encoding="utf-8"))
    p = data["data"][0]["paragraphs"][0]
    enc = tokenizer([p["qas"][0]["question"]], [p["context"]], return_tensors="np")
    return {k: np.asarray(v, dtype=np.int64) for k, v in enc.items()}


def rate(run, batch: dict[str, np.ndarray], seconds: float = 3.0) -> float:
    """Sequences per second of `run(batch)`, after a warm-up, over at least `seconds`."""
    run(batch)
    run(batch)
    n, t0 = 0, time.perf_counter()
    while True:
        run(batch)
        n += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and n >= 3:
            return n * len(batch["input_ids"]) / elapsed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="builtin:minilm-l6")
    ap.add_argument("--batch-sizes", default="1,4,8,16,32")
    ap.add_argument("--seconds", type=float, default=3.0, help="Measuring time per cell.")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args(argv)
    sizes = [int(x) for x in args.batch_sizes.split(",")]
    warnings.simplefilter("ignore")
    import torch
    import transformers

    from encoderlab.export import export_onnx
    from encoderlab.models import load_model
    from encoderlab.serve import load_backend

    transformers.logging.set_verbosity_error()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "qa"
        r = load_model(args.model, "qa", seed=0)
        r.model.config.encoderlab = {"task": "qa", "squad_version": "1.1"}
        r.model.save_pretrained(str(out))
        r.tokenizer.save_pretrained(str(out))
        export_onnx(out, quantize=True)
        one = feature(r.tokenizer)
        print(f"one feature: {one['input_ids'].shape[1]} tokens; torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads", flush=True)
        backends = {"torch fp32": load_backend("t", out, "torch"),
                    "torch bf16": load_backend("b", out, "torch", precision="bf16"),
                    "onnx fp32": load_backend("o", out, "onnx"),
                    "onnx int8": load_backend("q", out, "onnx", int8=True)}
        for name, backend in backends.items():
            rows[name] = {}
            for b in sizes:
                batch = {k: np.repeat(v, b, axis=0) for k, v in one.items() if k in backend.input_names}
                rows[name][b] = rate(backend.forward, batch, args.seconds)
                print(f"{name:10s} batch {b:3d}: {rows[name][b]:7.1f} sequences/s", flush=True)
    tokens = one["input_ids"].shape[1]
    header = "| backend | " + " | ".join(f"batch {b}" for b in sizes) + " | best / batch 1 | vs torch fp32 at batch 1 |"
    lines = [header, "|" + "---|" * (len(sizes) + 3)]
    base = rows["torch fp32"][sizes[0]]
    for name, r in rows.items():
        best = max(r.values())
        lines.append(f"| {name} | " + " | ".join(f"{r[b]:.1f}" for b in sizes)
                     + f" | {best / r[sizes[0]]:.2f}x | {r[sizes[0]] / base:.2f}x |")
    table = "\n".join(lines)
    print(table)
    if not args.no_docs:
        append_section("Model forward throughput by batch size (what batching can add)", f"""
- model `{args.model}` QA head; one SQuAD feature of {tokens} tokens repeated B times; forward passes only
  (backends of `encoderlab serve`: torch fp32, torch bf16 autocast, ONNX Runtime fp32 / int8 from
  `encoderlab export onnx --int8`); sequences/s, each cell measured for {args.seconds:g} s after a warm-up

{table}
""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
