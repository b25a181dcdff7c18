"""What the ONNX backends cost in answer quality: EM/F1 of one fine-tuned QA model served by the torch,
ONNX (fp32) and ONNX int8 backends, on the same held-out SQuAD questions, through the serving code path.

    python bench/bench_onnx_accuracy.py [--run runs/bench-e2e] [--questions 1000] [--ablation] [--no-docs]

--run is a fine-tuned QA run (bench/bench_qa_end_to_end.py writes runs/bench-e2e: MiniLM fine-tuned on
the `train` half of SQuAD v1.1 dev). Questions: the first --questions of the `test` half. The model is
exported (with the int8 copy) to a temporary directory; every backend answers through
encoderlab.serve.qa.QAService (features, batcher, post-processing as the server does), scored with the
official SQuAD v1.1 metric. --ablation adds other int8 settings of ONNX Runtime's dynamic quantization
on the same graph (per-tensor vs per-channel weights, embeddings quantized or not), which is how
`encoderlab export onnx --int8` chose its own. Appends a section to docs/benchmarks.md unless --no-docs.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SQUAD_DEV, SQUAD_SPLIT, append_section, require_shared_data  # noqa: E402


# other settings of onnxruntime.quantization.quantize_dynamic on the same fused fp32 graph
ABLATION = (("q-tensor-all", "onnx int8, per-tensor, all ops (embeddings too)", dict(per_channel=False, op_types=None)),
            ("q-channel-all", "onnx int8, per-channel, all ops (embeddings too)", dict(per_channel=True, op_types=None)))


def quantized_variant(onnx_dir: Path, out: Path, *, per_channel: bool, op_types) -> Path:
    """A copy of the exported directory whose model.onnx is quantized with the given settings."""
    import shutil

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    shutil.copytree(onnx_dir, out)
    (out / "model.int8.onnx").unlink(missing_ok=True)
    quantize_dynamic(str(onnx_dir / "model.onnx"), str(out / "model.onnx"), weight_type=QuantType.QInt8,
                     per_channel=per_channel, op_types_to_quantize=op_types,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return out


async def answer_all(service, by_context: dict[str, list]) -> dict[str, str]:
    """Every context's questions in one request each, all requests in flight together (as clients would)."""
    async def one(context, examples):
        out = await service.answer(context, [e.question for e in examples], top_k=1)
        return {e.id: (r["answers"][0]["text"] if r["answers"] else "") for e, r in zip(examples, out)}

    results = await asyncio.gather(*(one(c, ex) for c, ex in by_context.items()))
    return {k: v for part in results for k, v in part.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="runs/bench-e2e")
    ap.add_argument("--questions", type=int, default=1000)
    ap.add_argument("--ablation", action="store_true", help="Also score other int8 quantization settings.")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args(argv)
    require_shared_data()
    run = Path(args.run)
    if not (run / "model" / "config.json").is_file():
        sys.exit(f"{run} is not a finished QA run (run bench/bench_qa_end_to_end.py first, or pass --run)")
    from encoderlab.data.squad import load_squad, select
    from encoderlab.export.onnx import export_onnx
    from encoderlab.metrics.squad import squad_evaluate
    from encoderlab.serve.backends import load_backend
    from encoderlab.serve.qa import QAService

    warnings.simplefilter("ignore")
    ds = select(load_squad(str(SQUAD_DEV)), split_file=SQUAD_SPLIT, part="test", limit=args.questions)
    by_context: dict[str, list] = {}
    for e in ds.examples:
        by_context.setdefault(e.context, []).append(e)
    gold = ds.gold()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        onnx_dir = Path(tmp) / "onnx"
        export = export_onnx(run, onnx_dir, quantize=True)
        print(f"exported {export.path} ({export.exporter}; fused {export.fused_operators})")
        configs = [("torch fp32", "torch", run, False), ("onnx fp32", "onnx", onnx_dir, False),
                   ("onnx int8 (export default: per-channel, MatMul + Attention)", "onnx", onnx_dir, True)]
        if args.ablation:
            configs += [(label, "onnx", quantized_variant(onnx_dir, Path(tmp) / name, **kw), False)
                        for name, label, kw in ABLATION]
        for label, backend, src, int8 in configs:
            service = QAService(load_backend("m", src, backend, int8=int8))
            t = time.perf_counter()
            preds = asyncio.run(answer_all(service, by_context))
            seconds = time.perf_counter() - t
            m = squad_evaluate(gold, preds)
            rows.append((label, m["exact"], m["f1"], seconds))
            print(f"{label:11s} EM {m['exact']:.2f} F1 {m['f1']:.2f} · {seconds:.1f} s for {len(preds)} questions")
    base = rows[0]
    table = "\n".join(f"| {label} | {em:.2f} | {f1:.2f} | {em - base[1]:+.2f} | {f1 - base[2]:+.2f} | {s:.1f} |"
                      for label, em, f1, s in rows)
    if not args.no_docs:
        append_section("ONNX backends: answer quality vs torch (serving path)", f"""
- model: `{run}/model` (fine-tuned QA run); {len(ds)} questions of the SQuAD v1.1 dev `test` half, one request
  per context, all in flight together; official v1.1 metric

| backend | EM | F1 | ΔEM vs torch | ΔF1 vs torch | seconds |
|---|---|---|---|---|---|
{table}
""")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
