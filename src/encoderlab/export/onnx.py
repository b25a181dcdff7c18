"""Export a QA or classification model to ONNX and check ONNX Runtime against PyTorch.

``export_onnx("runs/qa")`` writes ``runs/qa/onnx/`` holding ``model.onnx`` (inputs ``input_ids``,
``attention_mask`` [, ``token_type_ids``], int64, with dynamic ``batch`` and ``sequence`` axes;
outputs ``start_logits``/``end_logits`` for QA or ``logits`` for classification), plus the
model's ``config.json`` and tokenizer files, so the directory is self-contained for serving.

By default (``optimize=True``) the graph is made for ONNX Runtime: the model is traced with eager
attention by the TorchScript exporter (the graph ONNX Runtime's transformer optimizer recognizes;
the ``torch.export``-based exporter is the fallback), then ``onnxruntime.transformers.optimizer``
fuses it into ONNX Runtime's ``Attention``, ``EmbedLayerNormalization``, ``SkipLayerNormalization``
and ``BiasGelu`` kernels (contrib ops: the file then runs in ONNX Runtime only). With
``optimize=False`` the file holds standard ONNX operators only (``torch.export``-based exporter
first). After export the ONNX model is run with ONNX Runtime (CPU) on a padded batch of two inputs
of different lengths and its logits are compared with the PyTorch model's: the largest absolute
difference is reported and must be within tolerance; a fused graph that misses it is dropped for
the unfused one (recorded in ``export.json``).

The optional int8 copy quantizes the weights of the MatMul and fused Attention nodes per output
channel (dynamic quantization: activations are quantized at run time); the embeddings stay fp32,
since quantizing them costs most of int8's accuracy loss on SQuAD (see docs/benchmarks.md).
"""
from __future__ import annotations

import contextlib
import io
import logging
import warnings
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import EncoderlabError, ModelError

ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"      # optional dynamic int8 quantization of ONNX_FILE (weights int8, activations quantized at run time)
INT8_OPS = ("MatMul", "Attention")  # quantized node types; Gather / EmbedLayerNormalization (embeddings) stay fp32
EXPORT_INFO = "export.json"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")

# Sample inputs for the verification (two lengths, so padding and the attention mask are exercised).
_SAMPLE_A = ("Who wrote the report?", "The committee wrote the report in 2019 after two years of hearings.")
_SAMPLE_B = ("When?", "In the spring of 1850, the river flooded the valley; the town was rebuilt on the hill "
                      "above it by the survivors, who named it after the first mayor.")


@dataclass
class OnnxExport:
    path: Path                 # the model.onnx file
    directory: Path            # the directory holding it, the config and the tokenizer
    task: str                  # a registered task that can be exported (Task.onnx_outputs)
    max_abs_diff: float        # ONNX Runtime vs PyTorch on the verification batch (nan when not verified)
    tolerance: float
    seconds: float
    exporter: str              # "dynamo" | "torchscript"
    int8_path: Path | None = None          # model.int8.onnx with quantize=True
    int8_max_abs_diff: float | None = None  # its difference from PyTorch (informative: int8 is approximate)
    fused_operators: dict | None = None     # ONNX Runtime fused operators and counts ({} = standard operators only)
    optimize_note: str | None = None        # why an asked-for fusion was not kept


def resolve_model_dir(source: str | Path) -> tuple[Path, Path | None]:
    """(model directory, run directory or None) for a run directory (uses RUN/model, as
    :func:`encoderlab.models.run_model_dir` resolves it) or a model directory."""
    from ..models import run_model_dir

    path = Path(source).expanduser()
    if not path.exists():
        raise ModelError(f"{path} does not exist (give a run directory or a model directory)")
    model_dir = Path(run_model_dir(str(path)))
    if (model_dir / "config.json").is_file():
        return model_dir, (path if model_dir != path else None)
    raise ModelError(f"{path} is neither a run directory (no model/config.json) nor a model directory (no config.json)")


def onnx_outputs(task: str) -> tuple[str, ...]:
    """The model outputs of a task's ONNX graph (the task registry's ``onnx_outputs``)."""
    from ..tasks import get_task

    outputs = get_task(task).onnx_outputs
    if outputs is None:
        raise ModelError(f"{get_task(task).title} models cannot be exported to ONNX or served")
    return outputs


def model_task(config) -> str:
    """The task of a model that can be exported or served (see encoderlab.models.task_of_config)."""
    from ..models import task_of_config
    from ..tasks import TASKS

    exportable = [t for t in TASKS.values() if t.exportable]
    task = task_of_config(config)
    if task is None:
        raise ModelError(f"cannot tell the model's task: config.encoderlab['task'] is not one of "
                         f"{', '.join(t.name for t in exportable)} and the architecture is none of "
                         f"{', '.join('*' + s for t in exportable for s in t.architecture_suffixes)}")
    onnx_outputs(task)          # refuses a task that cannot be exported
    return task


def _wrapper(model, input_names: tuple[str, ...], outputs: tuple[str, ...]):
    import torch

    class Logits(torch.nn.Module):
        """Positional inputs -> a tuple of logits tensors (what an ONNX graph wants)."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            out = self.inner(**dict(zip(input_names, args)))
            return tuple(out[name] for name in outputs)

    return Logits(model).eval()


def _sample_batch(tokenizer, task: str, input_names) -> dict[str, np.ndarray]:
    from ..tasks import get_task

    if get_task(task).onnx_text_pairs:
        enc = tokenizer([_SAMPLE_A[0], _SAMPLE_B[0]], [_SAMPLE_A[1], _SAMPLE_B[1]], padding=True,
                        return_tensors="np")
    else:
        enc = tokenizer([_SAMPLE_A[1], _SAMPLE_B[1]], padding=True, return_tensors="np")
    return {k: np.asarray(enc[k], dtype=np.int64) for k in input_names}


def model_input_names(model, tokenizer) -> tuple[str, ...]:
    """The inputs the model takes among input_ids / attention_mask / token_type_ids."""
    import inspect

    params = inspect.signature(model.forward).parameters
    names = tuple(n for n in INPUT_NAMES if n in params and (n != "token_type_ids" or n in tokenizer.model_input_names))
    if "input_ids" not in names:
        raise ModelError(f"{type(model).__name__} does not take input_ids; cannot export it")
    return names


def _export_dynamo(wrapper, args, path: Path, input_names, output_names, opset: int) -> None:
    """The torch.export-based exporter (needs onnxscript)."""
    import torch

    batch, seq = torch.export.Dim("batch", min=1), torch.export.Dim("sequence", min=1)
    shapes = (tuple({0: batch, 1: seq} for _ in input_names),)  # one entry: the wrapper's *args
    program = torch.onnx.export(wrapper, args, input_names=list(input_names), output_names=list(output_names),
                                dynamic_shapes=shapes, dynamo=True, opset_version=max(opset, 18), verbose=False)
    program.save(str(path))


def _export_torchscript(wrapper, args, path: Path, input_names, output_names, opset: int) -> None:
    """The TorchScript exporter: its BERT graphs are what ONNX Runtime's transformer fusions match."""
    import torch

    axes = {n: {0: "batch", 1: "sequence"} for n in input_names}
    axes.update({n: {0: "batch", 1: "sequence"} if n != "logits" else {0: "batch"} for n in output_names})
    torch.onnx.export(wrapper, args, str(path), input_names=list(input_names), output_names=list(output_names),
                      dynamic_axes=axes, opset_version=opset, dynamo=False)


_EXPORTERS = {"dynamo": _export_dynamo, "torchscript": _export_torchscript}


def _export(wrapper, args, path: Path, input_names, output_names, opset: int,
            order: tuple[str, ...] = ("dynamo", "torchscript")) -> str:
    """Export with the first exporter of `order` that works; its name."""
    quiet = io.StringIO()
    errors = []
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)   # e.g. "torchvision is not installed" notes
    for name in order:
        try:
            with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet), warnings.catch_warnings():
                warnings.simplefilter("ignore")   # the TorchScript exporter is flagged deprecated
                _EXPORTERS[name](wrapper, args, path, input_names, output_names, opset)
            return name
        except Exception as exc:  # noqa: BLE001 - try the next exporter
            errors.append(f"{name} exporter: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    raise ModelError("ONNX export failed; " + "; ".join(errors))


@contextlib.contextmanager
def _quiet_root_logger():
    """ONNX Runtime's optimizer and quantizer log notes on the root logger; keep them off the user's terminal."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def fuse_for_onnxruntime(src: Path, dst: Path, config) -> dict[str, int]:
    """ONNX Runtime's transformer optimizer on `src` -> `dst`; the fused operators and their counts."""
    from onnxruntime.transformers import optimizer

    heads = int(getattr(config, "num_attention_heads", 0) or getattr(config, "n_heads", 0) or 0)
    hidden = int(getattr(config, "hidden_size", 0) or getattr(config, "dim", 0) or 0)
    with _quiet_root_logger():
        for name in ("onnxruntime.transformers", "fusion", "onnx_model", "optimizer"):
            logging.getLogger(name).setLevel(logging.ERROR)
        fused = optimizer.optimize_model(str(src), model_type="bert", num_heads=heads, hidden_size=hidden,
                                         opt_level=0)
        stats = {k: int(v) for k, v in fused.get_fused_operator_statistics().items() if v}
        fused.save_model_to_file(str(dst))
    return stats


def onnx_session(path: str | Path, threads: int | None = None):
    """An ONNX Runtime CPU InferenceSession for `path`."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 quantization (ONNX Runtime): MatMul / Attention weights int8 per output channel,
    activations quantized per batch at run time; embeddings left in fp32."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_root_logger():
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=list(INT8_OPS),
                         # fused contrib-op outputs carry no inferred type: they are float tensors
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


def verify_onnx(path: str | Path, model, tokenizer, task: str) -> float:
    """Max |ORT - torch| over all outputs on a padded two-example batch (fp32, CPU)."""
    import torch

    session = onnx_session(path)
    names = tuple(i.name for i in session.get_inputs())
    batch = _sample_batch(tokenizer, task, names)
    ort_out = session.run(list(onnx_outputs(task)), batch)
    model = model.to("cpu").eval()
    with torch.inference_mode():
        ref = model(**{k: torch.from_numpy(v) for k, v in batch.items()})
    diffs = [float(np.abs(np.asarray(o, dtype=np.float64) - ref[n].float().numpy().astype(np.float64)).max())
             for o, n in zip(ort_out, onnx_outputs(task))]
    return max(diffs)


def _use_eager_attention(model) -> None:
    """Trace the explicit softmax(QK^T)V attention (what ONNX Runtime's Attention fusion matches), not SDPA."""
    try:
        model.set_attn_implementation("eager")
    except (AttributeError, ValueError, NotImplementedError):
        pass


def export_onnx(source: str | Path, out_dir: str | Path | None = None, *, opset: int = 18, verify: bool = True,
                tolerance: float = 1e-4, overwrite: bool = True, quantize: bool = False,
                optimize: bool = True) -> OnnxExport:
    """Export the model of a run directory (RUN/model) or a model directory to ONNX.

    Writes ``out_dir`` (default ``RUN/onnx`` or ``MODEL_DIR/onnx``): ``model.onnx``, ``config.json``,
    the tokenizer files and ``export.json`` (exporter, fused operators, tolerance, max abs diff).
    With ``optimize`` (default) the graph is fused for ONNX Runtime (see the module docstring);
    ``optimize=False`` keeps standard ONNX operators only. With ``verify`` the ONNX Runtime logits
    must match PyTorch's within ``tolerance`` (absolute, scaled by the largest logit magnitude when
    that exceeds 1) or a ModelError is raised. With ``quantize`` an int8-quantized copy
    ``model.int8.onnx`` is written too (faster on CPU, approximate: its difference from PyTorch is
    reported, not enforced).
    """
    import shutil

    import torch
    from transformers import AutoConfig

    from ..models import load_model
    from ..runs import atomic_replace_dir, atomic_write_json

    start = time.time()
    model_dir, run_dir = resolve_model_dir(source)
    out = Path(out_dir) if out_dir is not None else (run_dir or model_dir) / "onnx"
    if out.resolve() == model_dir.resolve():
        raise EncoderlabError(f"the ONNX output directory must differ from the model directory {model_dir}")
    if (out / ONNX_FILE).exists() and not overwrite:
        raise EncoderlabError(f"{out / ONNX_FILE} exists; pass overwrite=True to replace it")
    task = model_task(AutoConfig.from_pretrained(str(model_dir)))
    resolved = load_model(str(model_dir), task)
    model, tokenizer = resolved.model.to("cpu").eval(), resolved.tokenizer
    model.config.use_cache = False
    if optimize:
        _use_eager_attention(model)
    names = model_input_names(model, tokenizer)
    outputs = onnx_outputs(task)
    # written to a temporary sibling, moved into place only once verified: a failed or interrupted export
    # never leaves a model.onnx that `serve --backend onnx` would pick up
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        sample = _sample_batch(tokenizer, task, names)
        with torch.inference_mode():
            reference = model(**{k: torch.from_numpy(v) for k, v in sample.items()})
        limit = tolerance * max(1.0, max(float(reference[o].abs().max()) for o in outputs))
        args = tuple(torch.from_numpy(sample[n]) for n in names)
        plain = tmp / (".unfused.onnx" if optimize else ONNX_FILE)
        exporter = _export(_wrapper(model, names, outputs), args, plain, names, outputs, opset,
                           order=("torchscript", "dynamo") if optimize else ("dynamo", "torchscript"))
        fused, note = {}, None
        if optimize:
            try:
                fused = fuse_for_onnxruntime(plain, tmp / ONNX_FILE, model.config)
                fused_diff = verify_onnx(tmp / ONNX_FILE, model, tokenizer, task) if verify else 0.0
                if not fused_diff <= limit:
                    note = f"the fused graph differs from PyTorch by {fused_diff:.3g}"
            except Exception as exc:  # noqa: BLE001 - the unfused graph is still a valid export
                note = f"ONNX Runtime's transformer optimizer failed ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
            if note:
                fused = {}
                (tmp / ONNX_FILE).unlink(missing_ok=True)
                plain.rename(tmp / ONNX_FILE)
            else:
                plain.unlink()
        model.config.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        diff = float("nan")
        if verify:
            diff = verify_onnx(tmp / ONNX_FILE, model, tokenizer, task)
            if not diff <= limit:
                raise ModelError(f"ONNX Runtime logits differ from PyTorch by {diff:.3g} (tolerance {limit:.3g}); "
                                 f"the export is not trustworthy (nothing was written)")
        int8_diff = None
        if quantize:
            quantize_int8(tmp / ONNX_FILE, tmp / INT8_FILE)
            int8_diff = verify_onnx(tmp / INT8_FILE, model, tokenizer, task)
        atomic_write_json(tmp / EXPORT_INFO, {"task": task, "source": str(model_dir), "exporter": exporter,
                                              "opset": opset, "inputs": list(names), "outputs": list(outputs),
                                              "optimized": bool(fused), "fused_operators": fused,
                                              "optimize_note": note,
                                              "max_abs_diff": diff if verify else None, "tolerance": tolerance,
                                              "int8": INT8_FILE if quantize else None, "int8_max_abs_diff": int8_diff,
                                              "int8_quantized_ops": list(INT8_OPS) if quantize else None,
                                              "torch": torch.__version__})
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_replace_dir(tmp, out)
    int8_path = out / INT8_FILE if quantize else None
    return OnnxExport(out / ONNX_FILE, out, task, diff, tolerance, time.time() - start, exporter, int8_path, int8_diff,
                      fused, note)


def read_export_info(directory: str | Path) -> dict:
    path = Path(directory) / EXPORT_INFO
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
