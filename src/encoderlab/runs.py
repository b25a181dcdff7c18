"""The run directory: every run is self-describing and every file in it is written atomically.

    RUN/
      run.json                status (running | completed | failed), timings, versions
      config.yaml             the full resolved configuration (accepted back by `train --config`)
      history.jsonl           one JSON object per logged training step and per evaluation
      metrics.json            final metrics (written last: its presence means the run finished)
      predictions.json        official SQuAD format {id: answer}
      nbest_predictions.json  {id: [{text, probability, start_logit, end_logit, ...}]}
      null_odds.json          SQuAD v2.0: {id: null score - best non-null score}
      model/                  safetensors weights, config, tokenizer, model card (README.md)
      checkpoints/            Trainer checkpoints for --resume
"""
from __future__ import annotations

import json
import math
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

_UMASK = os.umask(0)
os.umask(_UMASK)

from .errors import EncoderlabError


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over it: `path` is either the old file
    or the whole new one, never a half-written one (the temporary file is removed on failure)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)   # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """`atomic_write_bytes` of UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_output(path: str | Path, content: str | bytes) -> Path:
    """An output file the user named (predictions, a Markdown report, a figure; text is written as UTF-8):
    written atomically; a path that cannot be written (a directory, a missing permission, a full disk) is one
    EncoderlabError line."""
    try:
        atomic_write_bytes(path, content.encode("utf-8") if isinstance(content, str) else content)
    except OSError as exc:
        raise EncoderlabError(f"cannot write {path}: {exc.strerror or exc}") from None
    return Path(path)


def json_safe(obj: Any) -> Any:
    """`obj` with non-finite floats (a diverged loss, an overflowing perplexity) as None: standard JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def dumps(obj: Any, indent: int | None = None) -> str:
    """json.dumps that never writes the non-standard NaN / Infinity tokens (they become null)."""
    try:
        return json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=False)
    except ValueError:
        return json.dumps(json_safe(obj), indent=indent, ensure_ascii=False, allow_nan=False)


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = 1) -> None:
    atomic_write_text(path, dumps(obj, indent) + "\n")


def atomic_replace_dir(tmp_dir: Path, final_dir: Path) -> None:
    """Move a fully written directory into place (replacing an older one)."""
    if final_dir.exists():
        old = final_dir.with_name(f".{final_dir.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final_dir, old)
        os.replace(tmp_dir, final_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp_dir, final_dir)


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    # -- files ------------------------------------------------------------------------------
    @property
    def model_dir(self) -> Path:
        return self.path / "model"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    def write_json(self, name: str, obj: Any, indent: int | None = 1) -> Path:
        atomic_write_json(self.path / name, obj, indent)
        return self.path / name

    def read_json(self, name: str) -> Any:
        """A JSON file of the run; a malformed one raises a DataError naming the file and the place."""
        from .data.io import read_json

        return read_json(self.path / name)

    def read_json_object(self, name: str) -> dict[str, Any]:
        obj = self.read_json(name)
        if not isinstance(obj, dict):
            raise EncoderlabError(f"{self.path / name}: expected a JSON object, got {type(obj).__name__}")
        return obj

    def write_config(self, config: dict) -> None:
        atomic_write_text(self.path / "config.yaml", yaml.safe_dump(config, sort_keys=False, allow_unicode=True))

    def read_config(self) -> dict:
        """config.yaml as a mapping ({} when empty); malformed YAML raises an error naming ``file:line``."""
        path = self.path / "config.yaml"
        try:
            obj = yaml.safe_load(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise EncoderlabError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or "not valid YAML"
            raise EncoderlabError(f"{path}{where}: malformed YAML ({problem})") from None
        if obj is None:
            return {}
        if not isinstance(obj, dict):
            raise EncoderlabError(f"{path}: expected a mapping of option names to values")
        return obj

    def append_history(self, record: dict) -> None:
        """One JSON line per record; each line is written whole with a single write call."""
        line = dumps(record) + "\n"
        with open(self.path / "history.jsonl", "a", encoding="utf-8") as fh:
            fh.write(line)

    def history(self) -> list[dict]:
        """history.jsonl as a list of objects ([] when absent); a malformed line raises an error naming ``file:line``."""
        path = self.path / "history.jsonl"
        if not path.exists():
            return []
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise EncoderlabError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        records = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EncoderlabError(f"{path}:{lineno}: malformed JSON ({exc.msg}, column {exc.colno})") from None
            if not isinstance(record, dict):
                raise EncoderlabError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
            records.append(record)
        return records

    @property
    def task(self) -> str | None:
        """The run's task: run.json's ``task``, else its model's config (older runs); None when unknown."""
        try:
            info = self.read_json("run.json") if (self.path / "run.json").is_file() else {}
        except EncoderlabError:
            info = {}
        if isinstance(info, dict) and info.get("task"):
            return str(info["task"])
        from .models import saved_model_task

        return saved_model_task(str(self.path)) if self.model_dir.is_dir() else None

    def keep_history(self, keep) -> int:
        """Rewrite history.jsonl atomically with the records for which `keep(record)` is true (a line torn
        by a killed process is dropped too); returns how many records were dropped."""
        p = self.path / "history.jsonl"
        if not p.exists():
            return 0
        kept, dropped = [], 0
        for line in p.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                dropped += 1
                continue
            if keep(record):
                kept.append(line + "\n")
            else:
                dropped += 1
        if dropped:
            atomic_write_text(p, "".join(kept))
        return dropped

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self, config: dict, *, resume: bool = False, overwrite: bool = False, task: str | None = None) -> None:
        """Create the directory; refuse to clobber a finished or foreign run unless asked. `task` (a name of the
        task registry) is recorded in run.json, so that reports know which metrics the run has."""
        if self.path.exists() and any(self.path.iterdir()) and not resume:
            if not overwrite:
                raise EncoderlabError(f"{self.path} already exists and is not empty: pass --overwrite, "
                                      f"--resume, or choose another --output-dir")
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        if resume and (self.path / "metrics.json").exists():
            (self.path / "metrics.json").unlink()  # the run is unfinished again until it completes
        self.write_config(config)
        self.write_json("run.json", {"status": "running", "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                     "resumed": resume, **({"task": task} if task else {}), **environment()})

    def finish(self, status: str = "completed", **extra) -> None:
        info = self.read_json("run.json") if (self.path / "run.json").exists() else {}
        info.update(status=status, finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"), **extra)
        self.write_json("run.json", info)

    def complete(self, metrics: dict) -> None:
        """Write metrics.json — last of a run's files: its presence marks a finished run — and the status."""
        self.write_json("metrics.json", metrics)
        self.finish("completed")

    def fail(self, exc: BaseException) -> None:
        """Record why the run stopped: `interrupted` (Ctrl-C) or `failed` with the error's text."""
        self.finish("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed", error=str(exc)[:500])

    @property
    def status(self) -> str:
        try:
            return self.read_json("run.json")["status"]
        except (OSError, KeyError, TypeError, EncoderlabError):
            return "unknown"


def environment() -> dict:
    import torch
    import transformers

    from . import __version__

    return {"encoderlab": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version(), "machine": platform.machine(),
            "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"}
