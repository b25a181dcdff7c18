"""`encoderlab serve` (HTTP API + web page) and `encoderlab export onnx`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import app, fail, precision_option

export_app = typer.Typer(no_args_is_help=True, help="Export a fine-tuned model (onnx).")
app.add_typer(export_app, name="export")


@app.command("serve")
def serve_cmd(
    runs: list[str] = typer.Argument(..., help="Run directories (RUN/model is served), model directories or name=PATH; "
                                                "the API names models after their directory."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind; the default is loopback only "
                                                         "(use 0.0.0.0 to accept other machines)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535),
    backend: str = typer.Option("torch", "--backend", help="torch (PyTorch) or onnx (ONNX Runtime on CPU; "
                                                           "needs `encoderlab export onnx RUN` first)."),
    precision: str = precision_option("torch backend precision"),
    int8: bool = typer.Option(False, "--int8", help="onnx backend: serve the int8-quantized model.int8.onnx "
                                                    "(`encoderlab export onnx RUN --int8`); faster, approximate."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Intra-op threads for inference (default: all cores)."),
    max_batch_size: int = typer.Option(32, "--max-batch-size", min=1, help="Features / texts per forward pass."),
    max_wait_ms: float = typer.Option(5.0, "--max-wait-ms", min=0.0, help="How long a batch waits to fill up."),
    timeout: float = typer.Option(30.0, "--timeout", min=0.001, help="Per-request time limit in seconds (504 past it)."),
    max_body_bytes: int = typer.Option(1_000_000, "--max-body-bytes", min=1, help="Larger request bodies get 413."),
    max_context_chars: int = typer.Option(20_000, "--max-context-chars", min=1),
    max_questions: int = typer.Option(16, "--max-questions", min=1, help="Questions per request."),
    max_top_k: int = typer.Option(20, "--max-top-k", min=1),
    max_texts: int = typer.Option(64, "--max-texts", min=1, help="Texts per /v1/classify request."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
) -> None:
    """Serve QA and classification models over HTTP: /v1/answer, /v1/classify, /v1/models, /healthz, a web page at /
    and the API docs at /docs.

    Example: encoderlab serve runs/qa runs/sst2 --port 8000 --backend onnx
    """
    import uvicorn

    from ..serve import ServeSettings, create_app, load_backend, resolve_served_models

    if backend not in ("torch", "onnx"):
        fail(f"--backend must be torch or onnx, not '{backend}'")
    if backend == "onnx" and precision != "auto":
        fail("--precision is for the torch backend; the onnx backend runs fp32, or int8 with --int8")
    settings = ServeSettings(max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, request_timeout_s=timeout,
                             max_body_bytes=max_body_bytes, max_context_chars=max_context_chars,
                             max_questions=max_questions, max_top_k=max_top_k, max_texts=max_texts)
    backends = []
    for m in resolve_served_models(runs):
        b = load_backend(m.name, m.path, backend, precision=precision, threads=threads, int8=int8)
        typer.echo(f"{m.name}: {b.task} model from {b.path} ({b.kind})", err=True)
        backends.append(b)
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"note: listening on {host}: the API is reachable from other machines and has no authentication",
                   err=True)
    typer.echo(f"serving on http://{host}:{port}/  (API docs: http://{host}:{port}/docs)", err=True)
    uvicorn.run(create_app(backends, settings), host=host, port=port, log_level=log_level)


@export_app.command("onnx")
def export_onnx_cmd(
    run: Path = typer.Argument(..., help="A run directory (exports RUN/model) or a model directory."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output directory (default: RUN/onnx)."),
    opset: int = typer.Option(18, "--opset", min=13, help="ONNX opset."),
    tolerance: float = typer.Option(1e-4, "--tolerance", min=0.0, help="Max |ONNX Runtime - PyTorch| logit difference."),
    no_verify: bool = typer.Option(False, "--no-verify", help="Skip the ONNX Runtime vs PyTorch comparison."),
    int8: bool = typer.Option(False, "--int8", help="Also write model.int8.onnx (dynamic int8 quantization: "
                                                    "smaller and faster on CPU, approximate logits)."),
    no_optimize: bool = typer.Option(False, "--no-optimize", help="Standard ONNX operators only (portable to other "
                                     "runtimes) instead of ONNX Runtime's fused transformer kernels."),
) -> None:
    """Export a QA or classification model to ONNX (dynamic batch and sequence axes) and check it against PyTorch.

    Example: encoderlab export onnx runs/qa   (writes runs/qa/onnx/model.onnx; serve with --backend onnx)
    """
    from ..export import export_onnx, resolve_model_dir

    model_dir, _ = resolve_model_dir(run)       # a bad path fails here, before any progress line
    typer.echo(f"exporting {model_dir} to ONNX…", err=True)
    res = export_onnx(run, output, opset=opset, verify=not no_verify, tolerance=tolerance, quantize=int8,
                      optimize=not no_optimize)
    check = "not verified" if no_verify else f"max |onnxruntime - torch| = {res.max_abs_diff:.2e} (tolerance {res.tolerance:g})"
    if res.fused_operators:
        graph = "fused for ONNX Runtime: " + ", ".join(f"{n} {k}" for k, n in res.fused_operators.items())
    else:
        graph = "standard ONNX operators" + (f"; not fused: {res.optimize_note}" if res.optimize_note else "")
    typer.echo(f"wrote {res.path} ({res.task}, {res.exporter} exporter, {graph}, {res.seconds:.1f} s); {check}")
    if res.int8_path is not None:
        typer.echo(f"wrote {res.int8_path} (int8 dynamic quantization); max |int8 - torch| = {res.int8_max_abs_diff:.2e} "
                   f"(approximate; serve it with --backend onnx --int8)")
