"""What a model needs at inference, as one typed record: :class:`ModelInfo`.

Every trainer saves it in the model's config (``config.encoderlab``, a plain dict, so the model
still loads anywhere) with :func:`write_model_info`; every consumer (``ask``, ``evaluate --model``,
``compare``, ``robustness``, ``predict classify``, ``serve``, ``export``, the Python API) reads it
through the one reader :func:`model_info`, which:

* accepts a loaded model, a config (object or ``config.json`` dict) or a path (a model directory
  or a run directory; any other spec — ``builtin:``, ``scratch:``, a Hub name — is a bare encoder);
* reads older saved dicts (MLM runs wrote task ``"pretraining"``: it is ``"mlm"``);
* falls back on the architecture name (``...ForQuestionAnswering`` → ``qa``, ...) for checkpoints
  trained elsewhere;
* fills the defaults of the task (``task=`` says which task a bare encoder is used for): QA windows
  384 / 128, query 64 tokens, SQuAD v1.1, null threshold 0, n-best 20, answers up to 30 tokens;
  classification 128 tokens (at most the model's positions), ``head`` truncation, labels from
  ``id2label``.

``info.trained`` tells whether the model carries a trained head for ``info.task`` (False for a bare
encoder given a fresh head). Flags override a field with :meth:`ModelInfo.override`.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import ModelError

from .tasks import TASKS, find_task, head_of_architecture

OBJECTIVE_HEADS = ("mlm", "mlm+nsp")     # the masked-LM task's heads, named like its objectives



@dataclass
class ModelInfo:
    """Inference settings of a model (see the module docstring). None = not recorded / not relevant."""
    task: str | None = None                  # "qa" | "classify" | "mlm" | None (a bare encoder)
    # QA and classification
    max_seq_length: int | None = None
    # QA
    doc_stride: int | None = None
    max_query_length: int | None = None
    squad_version: str | None = None         # "1.1" | "2.0"
    null_threshold: float | None = None
    n_best_size: int | None = None
    max_answer_length: int | None = None
    # classification
    labels: list[str] | None = None          # names in id order
    text_column: str | None = None
    text_pair_column: str | None = None
    label_column: str | None = None
    truncation: str | None = None            # "head" | "tail" | "head+tail"
    head_tokens: int | None = None
    # masked-LM pretraining
    objective: str | None = None             # "mlm" | "mlm+nsp"
    corpus: str | None = None
    # not saved: whether the model has a trained head for `task`
    trained: bool = field(default=True, compare=False)

    # ---- (de)serialization ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The dict saved as ``config.encoderlab``: the recorded fields only."""
        out = {k: v for k, v in asdict(self).items() if v is not None and k != "trained"}
        if self.labels is not None:
            out["labels"] = [str(x) for x in self.labels]
        return out

    @classmethod
    def from_dict(cls, data: dict | None) -> "ModelInfo":
        """Tolerant of older and foreign dicts: unknown keys are ignored, "pretraining" reads as "mlm"."""
        if not isinstance(data, dict):
            return cls(trained=False)
        names = {f.name for f in fields(cls)} - {"trained"}
        kw = {k: v for k, v in data.items() if k in names}
        task = find_task(kw.get("task"))       # the registry's name: "pretraining" (old MLM runs) -> "mlm"
        kw["task"] = task.name if task is not None else None
        if kw.get("labels") is not None:
            kw["labels"] = [str(x) for x in kw["labels"]]
        return cls(**kw, trained=kw["task"] is not None)

    def override(self, **values: Any) -> "ModelInfo":
        """A copy with every given non-None value replacing the recorded one (what flags do)."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})

    # ---- views used by the consumers ------------------------------------------------------------
    @property
    def with_null(self) -> bool:
        """SQuAD v2.0 model: "no answer" competes with the spans."""
        return self.squad_version == "2.0"

    def qa_features(self):
        """The :class:`~encoderlab.qa.features.QAFeatureConfig` of these windows."""
        from .qa.features import QAFeatureConfig

        return QAFeatureConfig(int(self.max_seq_length), int(self.doc_stride), int(self.max_query_length))

    @property
    def head(self) -> str:
        """The head :func:`encoderlab.models.load_model` loads for this task ("base" for a bare encoder)."""
        task = find_task(self.task)
        if task is None:
            return "base"
        heads = [head for head, _ in task.heads]       # several heads (MLM: mlm, mlm+nsp): the objective picks
        return self.objective if self.objective in heads else heads[0]

    def check_positions(self, config: Any) -> None:
        """A window longer than the model's position embeddings is a user error, named."""
        positions = _get(config, "max_position_embeddings")
        if positions and self.max_seq_length and int(self.max_seq_length) > int(positions):
            raise ModelError(f"max_seq_length {self.max_seq_length} exceeds the model's {positions} positions")


def _get(config: Any, key: str, default=None):
    if isinstance(config, dict):
        return config.get(key, default)
    return getattr(config, key, default)


def _config_of(source: Any) -> Any:
    """A config object or dict for a model, a config, a dict or a path (None: no saved config)."""
    if isinstance(source, (str, Path)):
        from .models import run_model_dir

        spec = str(source).strip()
        if spec.startswith(("builtin:", "scratch:")):
            return None
        path = Path(run_model_dir(spec)).expanduser()
        if not (path / "config.json").is_file():
            return None                       # a Hub name: nothing recorded locally
        try:
            return json.loads((path / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path / 'config.json'}: unreadable model config ({exc})") from exc
    return getattr(source, "config", source)


def model_info(source: Any, task: str | None = None) -> ModelInfo:
    """The :class:`ModelInfo` of `source` (a model, a config, a config dict or a path), defaults filled.

    `task`: the task the caller uses the model for. A model trained for another task keeps its own
    ``task`` (the caller decides whether that is an error); a bare encoder takes `task` with
    ``trained=False`` (its head will be new) and that task's defaults.
    """
    config = _config_of(source)
    info = ModelInfo.from_dict(_get(config, "encoderlab") if config is not None else None)
    if info.task is None and config is not None:
        for arch in _get(config, "architectures") or []:
            found = head_of_architecture(str(arch))          # the registry's heads: (task, head)
            if found:
                info.task, info.trained = found[0].name, True
                if found[1] in OBJECTIVE_HEADS and info.objective is None:
                    info.objective = found[1]                # an MLM model's head is its objective
                break
    if info.task is None and task is not None:
        info.task, info.trained = task, False
    return _with_defaults(info, config)


def _with_defaults(info: ModelInfo, config: Any) -> ModelInfo:
    """The task's `inference_defaults` (task registry) for what the model did not record; the length default
    at most the model's positions where the task says so; labels from the config for labelled tasks."""
    task = find_task(info.task)
    if task is None:
        return info
    defaults = dict(task.inference_defaults)
    if task.defaults_fit_positions and "max_seq_length" in defaults:
        positions = _get(config, "max_position_embeddings") if config is not None else None
        defaults["max_seq_length"] = min(defaults["max_seq_length"], int(positions or 512))
    info = replace(info, **{k: v for k, v in defaults.items() if getattr(info, k) is None})
    if task.labelled and info.labels is None and config is not None:
        info.labels = label_names(config)
    return info


def label_names(config: Any) -> list[str] | None:
    """Label names in id order from ``id2label`` (``LABEL_i`` where a name is missing)."""
    id2label = _get(config, "id2label") or {}
    num = _get(config, "num_labels") or len(id2label)
    if not num:
        return None
    return [str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(int(num))]


def write_model_info(model_or_config: Any, info: ModelInfo) -> None:
    """Record `info` in the model's config (``config.encoderlab``), saved with ``save_pretrained``."""
    config = getattr(model_or_config, "config", model_or_config)
    if info.task not in TASKS:
        raise ValueError(f"ModelInfo.task must be one of {list(TASKS)}, not {info.task!r}")   # a programming error
    config.encoderlab = info.to_dict()
