"""Serving throughput: requests/s and p50/p99 latency of POST /v1/answer at 1, 8 and 32 concurrent
clients, for the torch backend in fp32 (and in bf16, what `--precision auto` runs, on CPUs fast at it), onnx (fp32)
and onnx int8, with dynamic batching and with max_batch_size=1.

    python bench/bench_serve.py [--model builtin:minilm-l6] [--requests 256] [--quick] [--no-docs]

The model is a QA head on `--model` (untrained: throughput does not depend on the weights' values),
saved to a scratch directory and exported to ONNX. Each configuration starts `encoderlab serve` in its
own process on a free loopback port; the load generator (httpx.AsyncClient clients in this process)
sends a fixed number of requests (a ~775-character SQuAD paragraph, one question, top_k 3) after a
warm-up. `--quick`: scratch:bert-tiny, few requests, concurrency 1 and 8 (a smoke test, not a result).
Appends a section to docs/benchmarks.md unless `--no-docs`.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, append_section  # noqa: E402


# torch: `serve --precision fp32` (the yardstick of the onnx rows); torch-bf16: `--precision bf16`, what `serve`'s
# default `--precision auto` runs on a CPU with fast bf16 (a row only there); onnx-int8: `serve --backend onnx --int8`
# (dynamic int8 quantization)
BACKENDS = ("torch", "torch-bf16", "onnx", "onnx-int8")
SERVE_FLAGS = {"torch": ["--backend", "torch", "--precision", "fp32"],
               "torch-bf16": ["--backend", "torch", "--precision", "bf16"],
               "onnx": ["--backend", "onnx"], "onnx-int8": ["--backend", "onnx", "--int8"]}


def squad_paragraph() -> tuple[str, list[str]]:
    data = json.loads((REPO / "src/encoderlab/data/builtin/squad-sample.json").read_text(encoding="utf-8"))
    p = data["data"][0]["paragraphs"][0]
    return p["context"], [q["question"] for q in p["qas"]][:16]


def make_model(spec: str, root: Path) -> Path:
    """A QA model directory (+ its ONNX export under MODEL/onnx) for `spec`."""
    from encoderlab.export import export_onnx
    from encoderlab.models import load_model

    out = root / "bench-qa"
    r = load_model(spec, "qa", seed=0)
    r.model.config.encoderlab = {"task": "qa", "squad_version": "1.1"}
    r.model.save_pretrained(str(out))
    r.tokenizer.save_pretrained(str(out))
    res = export_onnx(out, quantize=True)
    print(f"exported {res.path} ({res.exporter}; max |ort - torch| {res.max_abs_diff:.1e}; "
          f"int8 max |ort - torch| {res.int8_max_abs_diff:.1e})", flush=True)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, model_dir: Path, backend: str, max_batch_size: int, max_wait_ms: float):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = [sys.executable, "-m", "encoderlab", "serve", f"bench={model_dir}", "--port", str(self.port),
                    *SERVE_FLAGS[backend], "--max-batch-size", str(max_batch_size), "--max-wait-ms", str(max_wait_ms),
                    "--log-level", "warning", "--timeout", "300"]

    def __enter__(self):
        import httpx

        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 180
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read()[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.3)
        raise RuntimeError("server did not start in 180 s")

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def load(url: str, clients: int, total: int, context: str, questions: list[str]) -> dict:
    import httpx

    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))

    async def client(c: httpx.AsyncClient):
        nonlocal errors
        for i in counter:
            body = {"context": context, "question": questions[i % len(questions)], "top_k": 3}
            t0 = time.perf_counter()
            r = await c.post("/v1/answer", json=body)
            latencies.append(time.perf_counter() - t0)
            errors += r.status_code != 200

    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as c:
        for q in questions[:4]:   # warm-up
            await c.post("/v1/answer", json={"context": context, "question": q, "top_k": 3})
        t0 = time.perf_counter()
        await asyncio.gather(*(client(c) for _ in range(clients)))
        wall = time.perf_counter() - t0
        stats = (await c.get("/v1/models")).json()["models"][0]["batching"]
    lat = np.asarray(latencies) * 1000
    return {"rps": total / wall, "p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
            "errors": errors, "mean_batch": stats["mean_batch_size"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="builtin:minilm-l6")
    ap.add_argument("--requests", type=int, default=256, help="Requests per configuration.")
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--max-batch-size", type=int, default=32)
    ap.add_argument("--max-wait-ms", type=float, default=5.0)
    ap.add_argument("--quick", action="store_true", help="scratch:bert-tiny, 24 requests, concurrency 1,8")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.model, args.requests, args.concurrency = "scratch:bert-tiny", 24, "1,8"
    levels = [int(x) for x in args.concurrency.split(",")]
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.logging.set_verbosity_error()
    context, questions = squad_paragraph()
    from encoderlab.training import cpu_has_fast_bf16

    backends = [b for b in BACKENDS if b != "torch-bf16" or cpu_has_fast_bf16()]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = make_model(args.model, Path(tmp))
        configs = [(b, args.max_batch_size, c) for b in backends for c in levels]
        configs += [(b, 1, max(levels)) for b in backends]    # batching off, at the highest concurrency
        for backend, mbs, clients in configs:
            with Server(model_dir, backend, mbs, args.max_wait_ms) as server:
                r = asyncio.run(load(server.url, clients, args.requests, context, questions))
            rows.append({"backend": backend, "max_batch_size": mbs, "clients": clients, **r})
            print(f"{backend:9s} max_batch_size {mbs:3d} clients {clients:3d}: {r['rps']:7.1f} req/s  "
                  f"p50 {r['p50']:7.1f} ms  p99 {r['p99']:7.1f} ms  mean batch {r['mean_batch']:.1f}  "
                  f"errors {r['errors']}", flush=True)

    def rps(backend, mbs, clients):
        return next(r["rps"] for r in rows if (r["backend"], r["max_batch_size"], r["clients"]) == (backend, mbs, clients))

    top = max(levels)
    gains = []
    for b in backends[1:]:
        g = {c: rps(b, args.max_batch_size, c) / rps("torch", args.max_batch_size, c) for c in levels}
        gains.append(f"{b} / torch fp32 throughput: " + ", ".join(f"{c} clients {x:.2f}x" for c, x in g.items()))
    batch_gain = {b: rps(b, args.max_batch_size, top) / rps(b, 1, top) for b in backends}
    summary = ("; ".join(gains) + f" (target >= 1.5x); batching (max_batch_size {args.max_batch_size}) vs 1 at {top} clients: "
               + ", ".join(f"{b} {g:.2f}x" for b, g in batch_gain.items()) + " (target >= 2x)")
    print(summary)
    if not args.no_docs:
        table = "\n".join(f"| {r['backend']} | {r['max_batch_size']} | {r['clients']} | {r['rps']:.1f} | {r['p50']:.1f} | "
                          f"{r['p99']:.1f} | {r['mean_batch']:.1f} | {r['errors']} |" for r in rows)
        append_section("Serving: POST /v1/answer throughput and latency", f"""
- model `{args.model}` QA head, one ~{len(context)}-character SQuAD paragraph + one question per request, top_k 3;
  {args.requests} requests per row after a warm-up; server (`encoderlab serve`, its own process) and clients on loopback;
  max_wait_ms {args.max_wait_ms}

| backend | max_batch_size | clients | requests/s | p50 ms | p99 ms | mean batch | errors |
|---|---|---|---|---|---|---|---|
{table}

{summary}
""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
