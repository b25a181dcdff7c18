"""Model backends for serving: a tokenizer plus a forward pass over padded numpy batches.

A backend knows its task ("qa" or "classify"), its config and tokenizer, and turns a padded
batch ``{input_ids, attention_mask[, token_type_ids]}`` (int64 numpy arrays, shape (B, L)) into
numpy logits: ``{"start_logits", "end_logits"}`` (B, L) for QA, ``{"logits"}`` (B, C) for
classification. Two implementations: :class:`TorchBackend` (PyTorch, ``inference_mode``, bf16
autocast optional) and :class:`OnnxBackend` (ONNX Runtime on CPU, from ``encoderlab export onnx``).
"""
from __future__ import annotations

import threading

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EncoderlabError, ModelError
from ..export.onnx import (INT8_FILE, ONNX_FILE, model_input_names, model_task, onnx_outputs, onnx_session,
                           resolve_model_dir)
from ..modelinfo import model_info
from ..tasks import get_task

BACKENDS = ("torch", "onnx")


class ModelBackend:
    """Tokenizer + config + ``forward(batch) -> logits``. Subclasses implement ``_run``."""

    kind = "abstract"

    def __init__(self, name: str, path: Path, config: Any, tokenizer: Any, input_names: tuple[str, ...]):
        self.name, self.path, self.config, self.tokenizer = name, path, config, tokenizer
        self.task = model_task(config)
        self.input_names = input_names
        self.output_names = onnx_outputs(self.task)
        self.info = model_info(config)        # what the model was trained with, defaults filled
        self.max_positions = int(getattr(config, "max_position_embeddings", 512) or 512)
        # A fast tokenizer is one Rust object whose truncation/padding settings are changed per call:
        # requests tokenized in parallel threads must take turns (else "Already borrowed" or wrong windows).
        self.tokenizer_lock = threading.Lock()

    @property
    def labels(self) -> list[str] | None:
        return self.info.labels if get_task(self.task).labelled else None

    def pad(self, rows: list[dict[str, list[int]]]) -> dict[str, np.ndarray]:
        """Right-pad token rows (dicts of id lists) to the longest one; int64 arrays."""
        length = max(len(r["input_ids"]) for r in rows)
        pad_id = self.tokenizer.pad_token_id or 0
        batch = {}
        for name in self.input_names:
            fill = pad_id if name == "input_ids" else 0
            arr = np.full((len(rows), length), fill, dtype=np.int64)
            for i, r in enumerate(rows):
                values = r.get(name)
                if values is None:  # e.g. a tokenizer without token_type_ids
                    values = [0] * len(r["input_ids"]) if name == "token_type_ids" else [1] * len(r["input_ids"])
                arr[i, : len(values)] = values
            batch[name] = arr
        return batch

    def forward(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Padded int64 inputs -> float32 numpy logits by output name."""
        missing = [n for n in self.input_names if n not in batch]
        if missing:
            raise EncoderlabError(f"batch lacks {', '.join(missing)}")
        return self._run({n: np.ascontiguousarray(batch[n], dtype=np.int64) for n in self.input_names})

    def _run(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> dict:
        out = {"name": self.name, "task": self.task, "backend": self.kind, "path": str(self.path),
               "max_position_embeddings": self.max_positions}
        out.update({key: getattr(self.info, key) for key in get_task(self.task).serve_info})   # the registry's
        return out


class TorchBackend(ModelBackend):
    """PyTorch forward on CPU (or a given device) under ``torch.inference_mode``."""

    kind = "torch"

    def __init__(self, name: str, model_dir: str | Path, *, device: str = "cpu", precision: str = "auto",
                 threads: int | None = None):
        import torch
        from transformers import AutoConfig

        from ..models import load_model

        path = Path(model_dir)
        if precision not in ("auto", "fp32", "bf16"):
            raise EncoderlabError(f"precision must be auto, fp32 or bf16, not '{precision}'")
        from ..training import resolve_precision

        precision = "bf16" if resolve_precision(precision, device) == "bf16" else "fp32"   # auto: bf16 where fast
        config = AutoConfig.from_pretrained(str(path))
        resolved = load_model(str(path), model_task(config))
        self.model = resolved.model.to(device).eval()
        self.device = torch.device(device)
        self.precision = precision
        if threads:
            torch.set_num_threads(threads)
        super().__init__(name, path, self.model.config, resolved.tokenizer,
                         model_input_names(self.model, resolved.tokenizer))

    def _run(self, batch):
        import torch

        from ..training import forward_batches

        # the one evaluation loop (inference mode, autocast at self.precision), over this one batch
        (_, out), = forward_batches(self.model, [{k: torch.from_numpy(v) for k, v in batch.items()}],
                                    device=self.device, precision=self.precision, show_progress=False)
        return {n: out[n].float().cpu().numpy() for n in self.output_names}

    def describe(self) -> dict:
        return {**super().describe(), "precision": self.precision}


class OnnxBackend(ModelBackend):
    """ONNX Runtime (CPUExecutionProvider) over a directory holding model.onnx, config.json and the tokenizer."""

    kind = "onnx"

    def __init__(self, name: str, onnx_dir: str | Path, *, threads: int | None = None, int8: bool = False):
        from transformers import AutoConfig

        from ..models import load_tokenizer

        path = Path(onnx_dir)
        file = INT8_FILE if int8 else ONNX_FILE
        if not (path / file).is_file():
            raise ModelError(f"no {file} in {path}; run `encoderlab export onnx{' --int8' if int8 else ''}` first")
        config = AutoConfig.from_pretrained(str(path))
        self.int8 = int8
        self.session = onnx_session(path / file, threads)
        names = tuple(i.name for i in self.session.get_inputs())
        super().__init__(name, path, config, load_tokenizer(str(path)), names)
        outs = {o.name for o in self.session.get_outputs()}
        if not set(self.output_names) <= outs:
            raise ModelError(f"{path / ONNX_FILE} outputs {sorted(outs)}, expected {list(self.output_names)}")

    def _run(self, batch):
        values = self.session.run(list(self.output_names), batch)
        return {n: np.asarray(v, dtype=np.float32) for n, v in zip(self.output_names, values)}

    def describe(self) -> dict:
        return {**super().describe(), "precision": "int8 (dynamic quantization)" if self.int8 else "fp32"}


@dataclass
class ServedModel:
    """What the CLI asked to serve: an API name and a path (run dir, model dir or ONNX dir)."""
    name: str
    path: Path


def resolve_served_models(specs: list[str]) -> list[ServedModel]:
    """``RUN`` | ``MODEL_DIR`` | ``name=PATH`` -> unique names (the run / directory name by default)."""
    if not specs:
        raise EncoderlabError("give at least one run or model directory to serve")
    out: list[ServedModel] = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            path = spec
            p = Path(path).expanduser().resolve()
            name = p.parent.name if p.name in ("model", "onnx") and (p.parent / "run.json").exists() else p.name
        name = name.strip()
        if not name or any(c in name for c in "/?#& "):
            raise EncoderlabError(f"bad model name '{name}' in '{spec}' (use name=PATH with a name of letters, digits, - _ .)")
        if any(m.name == name for m in out):
            raise EncoderlabError(f"two models are named '{name}'; name them with name=PATH")
        out.append(ServedModel(name, Path(path).expanduser()))
    return out


def load_backend(name: str, source: str | Path, backend: str = "torch", *, precision: str = "auto",
                 threads: int | None = None, int8: bool = False) -> ModelBackend:
    """A backend for a run directory, a model directory or (onnx) an exported ONNX directory.

    For ``onnx`` the ONNX model is looked up in the given directory, then in ``RUN/onnx`` or
    ``MODEL_DIR/onnx``; when there is none the error says to run ``encoderlab export onnx``.
    ``int8`` picks the quantized ``model.int8.onnx`` (``encoderlab export onnx --int8``).
    """
    if int8 and backend != "onnx":
        raise EncoderlabError("int8 quantization is for the onnx backend (--backend onnx)")
    if backend not in BACKENDS:
        raise EncoderlabError(f"unknown backend '{backend}' (choose {' or '.join(BACKENDS)})")
    path = Path(source).expanduser()
    if backend == "onnx":
        file = INT8_FILE if int8 else ONNX_FILE
        if (path / file).is_file():
            return OnnxBackend(name, path, threads=threads, int8=int8)
        model_dir, run_dir = resolve_model_dir(path)
        onnx_dir = (run_dir or model_dir) / "onnx"
        if not (onnx_dir / file).is_file():
            raise ModelError(f"no ONNX model for {path} (looked for {onnx_dir / file}); "
                             f"run `encoderlab export onnx {path}{' --int8' if int8 else ''}` first")
        return OnnxBackend(name, onnx_dir, threads=threads, int8=int8)
    if (path / ONNX_FILE).is_file() and not any(path.glob("*.safetensors")):
        raise ModelError(f"{path} holds only an ONNX model; serve it with --backend onnx")
    model_dir, _ = resolve_model_dir(path)
    return TorchBackend(name, model_dir, precision=precision, threads=threads)
