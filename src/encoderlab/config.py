"""Run configurations: the options every task shares, and building a run's config from
defaults <- a YAML file <- explicit values.

Each option is a dataclass field whose metadata carries its help text and command-line flags
(`option(...)`), as Transformers' HfArgumentParser does: the CLI generates its options from these
fields, so a name, default and help text are written once. The CLI, sweeps (each trial builds its run's
config here) and the Python API share `build_config`, so a value means the same whether it came from a
flag, `--config run.yaml` or a sweep file. This module imports neither torch nor transformers.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Optional

from .errors import EncoderlabError
from .models import DEFAULT_MODEL

# Features per inference forward pass (evaluation, `ask`, `compare`, `predict classify`): on a 2-core EPYC
# (`python bench/bench_inference.py`, docs/benchmarks.md) MiniLM QA windows ran fastest in batches of 16 in
# bf16 (1.17x and 1.36x the features/s of 64 in two runs) and within 5 % of the fastest in fp32: a smaller
# batch's activations and attention scores stay in cache.
INFERENCE_BATCH_SIZE = 16


def option(default: Any, help: str, *flags: str, panel: str | None = None, aliases: tuple[str, ...] = (),
           cli: bool = True, show_default: bool = True) -> Any:
    """A config field with its CLI metadata: `flags` (default ``--field-name``), the `help` text (the
    default is appended as ``[default]`` unless `show_default` is False), a `panel` of ``--help``,
    `aliases` (older names still accepted in config files), `cli=False` to keep it off the command line."""
    return dataclasses.field(default=default, metadata={"help": help, "flags": flags, "panel": panel,
                                                        "aliases": aliases, "cli": cli,
                                                        "show_default": show_default})


_TRAINING = "Training"
COMPILE_CHOICES = ("auto", "on", "off")


@dataclass
class TrainConfig:
    """Options shared by every task. Names follow Transformers' TrainingArguments where they exist."""
    model: str = option(DEFAULT_MODEL, "builtin:minilm-l6, scratch:<preset>, a model or run directory, or a Hub name.",
                        "--model", "-m", panel="Model")
    tokenizer: Optional[str] = option(None, "Tokenizer to use instead of the model's own (a directory, builtin:… or Hub "
                                      "name); token types the model lacks are dropped, a scratch model takes its "
                                      "vocabulary size.", panel="Model")
    output_dir: str = option("runs/run", "Run directory.", "--output-dir", "-o", panel=_TRAINING)
    learning_rate: float = option(5e-5, "Peak AdamW learning rate.", "--learning-rate", "--lr", panel=_TRAINING)
    train_batch_size: int = option(16, "Per-device training batch size.", panel=_TRAINING)
    eval_batch_size: int = option(INFERENCE_BATCH_SIZE, "Per-device evaluation batch size.", panel=_TRAINING)
    num_train_epochs: float = option(2.0, "Training epochs, may be fractional.", "--epochs", "--num-train-epochs",
                                     panel=_TRAINING)
    max_steps: int = option(-1, "Stop after N optimizer steps (overrides --epochs; -1: off).", panel=_TRAINING)
    warmup_ratio: float = option(0.1, "Share of the optimizer steps with linear warm-up.", panel=_TRAINING)
    weight_decay: float = option(0.01, "AdamW weight decay.", panel=_TRAINING)
    gradient_accumulation_steps: int = option(1, "Accumulate gradients over N batches.", panel=_TRAINING)
    lr_scheduler_type: str = option("linear", "Learning-rate schedule after warm-up (a Transformers scheduler name: "
                                    "linear, cosine, constant_with_warmup, …).", panel=_TRAINING)
    max_grad_norm: float = option(1.0, "Gradient clipping norm.", panel=_TRAINING)
    layerwise_lr_decay: float = option(1.0, "Layer-wise learning-rate decay: transformer layer k of L trains at "
                                       "lr × decay^(L+1-k), the embeddings at lr × decay^(L+1), the task head at lr "
                                       "(1: off).", "--layerwise-lr-decay", "--llrd", panel=_TRAINING)
    weight_averaging: float = option(0.0, "Stochastic weight averaging: the uniform average of the weights after "
                                     "each optimizer step over the last FRACTION of the steps becomes the model "
                                     "(its final evaluation, checkpoint and save; 0: off).", "--weight-averaging",
                                     panel=_TRAINING)
    dropout: Optional[float] = option(None, "Dropout probability of every dropout layer of the model while it trains "
                                      "(hidden states, attention probabilities, the task head) [the model's own: 0.1 "
                                      "for the BERT family]; 0 turns dropout off, which also lets attention run "
                                      "PyTorch's fused kernel (docs/performance.md).", panel=_TRAINING,
                                      show_default=False)
    attention_dropout: Optional[float] = option(None, "Dropout probability on the attention probabilities only (the "
                                                "dropout layers of the model's attention modules, and its "
                                                "attention-dropout config setting), over --dropout there [the "
                                                "model's own]. On CPUs their random masks, one per head and token "
                                                "pair, are the costly part of dropout (docs/performance.md).",
                                                panel=_TRAINING, show_default=False)
    precision: str = option("auto", "auto | fp32 | bf16 | fp16 (auto: bf16/fp16 on a GPU, bf16 on CPUs fast at it, "
                            "else fp32).", panel=_TRAINING)
    compile: str = option("auto", "auto | on | off: torch.compile the model (dynamic shapes) for training and "
                          "evaluation; a failed compile warns and runs eager (auto: on only where measured faster - "
                          "nowhere yet, see docs/performance.md).", panel=_TRAINING)
    seed: int = option(42, "Random seed.", panel=_TRAINING)
    eval_steps: Optional[int] = option(None, "Evaluate and checkpoint every N steps [each epoch].", panel=_TRAINING,
                                       show_default=False)
    logging_steps: int = option(25, "Log the training loss every N steps.", panel=_TRAINING)
    save_total_limit: int = option(2, "Checkpoints kept in RUN/checkpoints.", panel=_TRAINING)
    early_stopping_patience: Optional[int] = option(None, "Stop after N evaluations without improvement of --metric.",
                                                    panel=_TRAINING)
    metric_for_best_model: Optional[str] = option(None, "Metric for early stopping and the best model "
                                                  "[the task's headline metric].", "--metric", panel=_TRAINING,
                                                  show_default=False)
    group_by_length: bool = option(True, "Batch inputs of similar length together (less padding).", panel=_TRAINING)
    dataloader_num_workers: int = option(0, "Data-loading worker processes.", panel=_TRAINING)
    time_budget: Optional[str] = option(None, "Wall-time budget of the run, e.g. 30m, 1h30m, 90s or 45 (seconds): the "
                                        "number of steps is set from the throughput of the first steps so the "
                                        "learning-rate schedule, the final evaluation and the save end on time "
                                        "(--epochs / --max-steps stay upper bounds).", panel=_TRAINING,
                                        show_default=False)
    report_to: Optional[list[str]] = option(None, "Comma-separated experiment trackers (tensorboard, wandb, mlflow, …) "
                                            "when installed.", panel=_TRAINING)

    # model spec -> {option: value}: a model's recipe (values measured best for it, e.g. docs/recipe.md). They take
    # the place of the dataclass defaults for that model in `build_config` (the CLI, config files, sweeps); a config
    # file and explicit values still override them. Task configs set their own.
    MODEL_DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = {}

    # (option, option, why) pairs that cannot both be on (`is_on`): `validate` refuses them together, and a
    # model default (MODEL_DEFAULTS) gives way to an option the user turns on that excludes it.
    EXCLUSIVE: ClassVar[tuple[tuple[str, str, str], ...]] = (
        ("weight_averaging", "early_stopping_patience",
         "early stopping keeps the best checkpoint, averaging the mean of the last steps"),
    )

    # name -> (lowest, highest, lowest allowed?, highest allowed?) of the numeric options; None: no bound.
    # Task configs add their own RANGES (merged along the class hierarchy by `validate`).
    RANGES: ClassVar[dict[str, tuple]] = {
        "learning_rate": (0, None, False, True), "train_batch_size": (1, None, True, True),
        "eval_batch_size": (1, None, True, True), "num_train_epochs": (0, None, False, True),
        "max_steps": (-1, None, True, True), "warmup_ratio": (0, 1, True, False),
        "weight_decay": (0, None, True, True), "gradient_accumulation_steps": (1, None, True, True),
        "max_grad_norm": (0, None, True, True), "layerwise_lr_decay": (0, 1, False, True),
        "weight_averaging": (0, 1, True, True), "dropout": (0, 1, True, False),
        "attention_dropout": (0, 1, True, False),
        "eval_steps": (1, None, True, True),
        "logging_steps": (1, None, True, True), "save_total_limit": (1, None, True, True),
        "early_stopping_patience": (1, None, True, True), "dataloader_num_workers": (0, None, True, True),
        "seed": (0, 2**32 - 1, True, True),
    }

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def validate(self) -> None:
        """Refuse option values no run can use, before anything is loaded, written or trained: one
        EncoderlabError naming the option (and its flag) for a wrong type or an out-of-range number.
        Task configs extend it with their own checks."""
        from .models import check_model_spec

        check_model_spec(self.model)       # an unknown preset or a missing directory before any data is read
        ranges: dict[str, tuple] = {}
        for klass in reversed(type(self).__mro__):
            ranges.update(getattr(klass, "RANGES", None) or {})
        kinds = {f.name: field_kind(f) for f in fields(self)}
        for name, (low, high, low_ok, high_ok) in ranges.items():
            value = getattr(self, name, None)
            if value is None:
                continue                     # "not set" (the dataclass types say which options may be None)
            if name == "num_train_epochs" and isinstance(self.max_steps, int) and self.max_steps > 0:
                continue                     # max_steps overrides the epochs
            label = f"{name} ({option_flag(type(self), name)})"
            integral = kinds.get(name) is int
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (integral and not isinstance(value, int)):
                raise EncoderlabError(f"{label} must be {'an integer' if integral else 'a number'}, not {value!r}")
            if not math.isfinite(value):
                raise EncoderlabError(f"{label} must be a finite number, not {value}")
            if low is not None and (value < low or (value == low and not low_ok)):
                raise EncoderlabError(f"{label} must be {'at least' if low_ok else 'greater than'} {low}, not {value}")
            if high is not None and (value > high or (value == high and not high_ok)):
                raise EncoderlabError(f"{label} must be {'at most' if high_ok else 'less than'} {high}, not {value}")
        if self.max_steps == 0:
            raise EncoderlabError(f"max_steps ({option_flag(type(self), 'max_steps')}) must be positive "
                                  f"(or -1: use the epochs), not 0")
        if self.time_budget is not None:
            parse_duration(self.time_budget, f"time_budget ({option_flag(type(self), 'time_budget')})")
        for a, b, why in self.EXCLUSIVE:
            if is_on(getattr(self, a)) and is_on(getattr(self, b)):
                raise EncoderlabError(f"{a} ({option_flag(type(self), a)}) and {b} ({option_flag(type(self), b)}) "
                                      f"exclude each other: {why}; choose one")
        if self.compile not in COMPILE_CHOICES:
            raise EncoderlabError(f"compile ({option_flag(type(self), 'compile')}) must be "
                                  f"{', '.join(COMPILE_CHOICES)}, not {self.compile!r}")
        self.selection_metric()

    def time_budget_seconds(self) -> float | None:
        """The time budget in seconds, or None when there is none."""
        return None if self.time_budget is None else parse_duration(self.time_budget, "time_budget")

    def selection_metric(self) -> tuple[str, bool]:
        """(metric_for_best_model or the task's headline metric, greater_is_better), checked against the
        task registry."""
        return best_metric(self)

    def metric_requirement(self, name: str) -> str | None:
        """None when a run with this configuration reports the registry metric `name`, else the option it
        needs (a task's optional metrics, e.g. QA's text-overlap metrics)."""
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def training_summary(self) -> str:
        """The training settings in one line, for model cards (every task's card shows the same line)."""
        parts = [f"max_steps {self.max_steps}" if self.max_steps > 0 else f"{self.num_train_epochs:g} epochs",
                 f"learning_rate {self.learning_rate:g} ({self.lr_scheduler_type}, warmup_ratio {self.warmup_ratio:g})",
                 f"batch {self.train_batch_size} x {self.gradient_accumulation_steps}",
                 f"weight_decay {self.weight_decay:g}"]
        if self.layerwise_lr_decay < 1:
            parts.append(f"layerwise_lr_decay {self.layerwise_lr_decay:g}")
        if self.dropout is not None:
            parts.append(f"dropout {self.dropout:g}")
        if self.attention_dropout is not None:
            parts.append(f"attention_dropout {self.attention_dropout:g}")
        if self.weight_averaging > 0:
            parts.append(f"weights averaged over the last {self.weight_averaging:g} of the steps")
        if self.time_budget is not None:
            parts.append(f"time_budget {self.time_budget}")
        return ", ".join(parts + [f"seed {self.seed}"])


def best_metric(cfg: TrainConfig, allowed=lambda name: True) -> tuple[str, bool]:
    """(metric_for_best_model, greater_is_better): the option (default: the task's headline metric) checked
    against the task registry's metrics of the config's task; `allowed` refuses metrics a setting rules out."""
    from .tasks import task_of_config_class

    task = task_of_config_class(type(cfg))
    if task is None:                       # a config class outside the registry: loss, lower is better
        return cfg.metric_for_best_model or "loss", False
    candidates = [m for m in task.optimizable() if allowed(m.name)]
    name = cfg.metric_for_best_model or task.headline
    if name not in [m.name for m in candidates]:
        raise EncoderlabError(f"unknown metric '{name}' for {task.title} (known: {', '.join(m.name for m in candidates)})")
    return name, bool(task.metric(name).higher_is_better)


_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_duration(value: Any, name: str = "duration") -> float:
    """Seconds in `value`: a number of seconds (45, 2.5, "45") or hours/minutes/seconds in that order
    ("30m", "1h30m", "90s", "1h2m3s"); a positive, finite result. Anything else is one EncoderlabError
    naming `name`."""
    bad = EncoderlabError(f"{name}: expected a positive duration such as 30m, 1h30m, 90s or 45 (seconds), "
                          f"not {value!r}")
    if isinstance(value, bool):
        raise bad
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if _NUMBER.match(text):
            seconds = float(text)
        else:
            match = _DURATION.match(text)
            if not text or not match or not any(match.groups()):
                raise bad
            hours, minutes, secs = (float(g) if g else 0.0 for g in match.groups())
            seconds = hours * 3600 + minutes * 60 + secs
    else:
        raise bad
    if not math.isfinite(seconds) or seconds <= 0:
        raise bad
    return seconds


def option_flag(cls, name: str) -> str:
    """The first long command-line flag of a config option (``train_batch_size`` -> ``--train-batch-size``)."""
    for f in fields(cls):
        if f.name == name:
            flags = [x for x in f.metadata.get("flags", ()) if x.startswith("--")]
            return flags[0] if flags else "--" + name.replace("_", "-")
    return "--" + name.replace("_", "-")


def aliases_of(cls) -> dict[str, str]:
    """{older or alternative name: field name} from the fields' `aliases` metadata."""
    return {alias: f.name for f in fields(cls) for alias in f.metadata.get("aliases", ())}


def load_config_file(path: Path, allowed: list[str], aliases: dict[str, str] | None = None) -> dict[str, Any]:
    """A YAML mapping of option names (as in RUN/config.yaml) to values; unknown names are refused,
    aliases are renamed to their field."""
    from .data.io import read_yaml

    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise EncoderlabError(f"{path}: a config file is a mapping of option names to values")
    aliases = aliases or {}
    data = {aliases.get(k, k): v for k, v in data.items()}
    unknown = sorted(str(k) for k in set(data) - set(allowed))
    if unknown:
        raise EncoderlabError(f"{path}: unknown option(s) {', '.join(unknown)} (valid: {', '.join(allowed)})")
    return data


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def coerce_number(value: Any, kind: type, name: str) -> Any:
    """`value` as `kind` (int or float) when YAML left it a string (YAML 1.1 reads ``4e-5`` as a string) or an
    int for a float; other values unchanged. A string that is not a number is refused with one line."""
    if isinstance(value, bool):
        return value
    if kind is float and isinstance(value, int):
        return float(value)
    if isinstance(value, str) and kind in (int, float):
        text = value.strip()
        if not _NUMBER.match(text):
            raise EncoderlabError(f"option {name}: expected a number, got {value!r}")
        number = float(text)
        if kind is int:
            if not number.is_integer():
                raise EncoderlabError(f"option {name}: expected a whole number, got {value!r}")
            return int(number)
        return number
    return value


def field_kind(f: dataclasses.Field) -> type | None:
    """The scalar type of a config field (int, float, bool, str) or list for list-valued ones."""
    t = str(f.type).replace("typing.", "").replace("Optional[", "").replace(" | None", "")
    for name, kind in (("list", list), ("bool", bool), ("float", float), ("int", int), ("str", str)):
        if t.startswith(name):
            return kind
    return None


def build_config(cls, config_file: Optional[Path], given: dict[str, Any]):
    """`cls(**values)`: the dataclass defaults, overridden by the model's recipe (`model_defaults`), by
    `config_file`'s values, then by the non-None entries of `given`. Numbers YAML left as strings, and ints
    for floats, are coerced."""
    names = [f.name for f in fields(cls)]
    aliases = aliases_of(cls)
    values = load_config_file(config_file, names, aliases) if config_file else {}
    values.update({aliases.get(k, k): v for k, v in given.items() if v is not None})
    default_model = next((f.default for f in fields(cls) if f.name == "model"), None)
    recipe = model_defaults(cls, values.get("model", default_model))
    for a, b, _ in getattr(cls, "EXCLUSIVE", ()):        # a recipe value yields to an option it excludes
        for mine, theirs in ((a, b), (b, a)):
            if mine in recipe and mine not in values and is_on(values.get(theirs)):
                del recipe[mine]
    values = {**recipe, **values}
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise EncoderlabError(f"unknown option(s) {', '.join(unknown)} for {cls.__name__}")
    kinds = {f.name: field_kind(f) for f in fields(cls)}
    for k, v in values.items():
        values[k] = coerce_value(v, kinds[k], k)
    return cls(**values)


def is_on(value: Any) -> bool:
    """Whether an option's value turns its feature on (not None, False, 0 or empty)."""
    return value is not None and value is not False and value != 0 and value != "" and value != []


def model_defaults(cls, model: Any) -> dict[str, Any]:
    """The option values `cls` takes by default for `model` (its recipe; empty for most models)."""
    return dict(getattr(cls, "MODEL_DEFAULTS", {}).get(model, {})) if isinstance(model, str) else {}


def comma_list(value: Optional[str]) -> Optional[list[str]]:
    """``"a, b,c"`` -> ``["a", "b", "c"]`` (how list options are written on the command line and in YAML)."""
    return None if value is None else [t.strip() for t in value.split(",") if t.strip()]


def coerce_value(value: Any, kind: type | None, name: str) -> Any:
    """`value` (from YAML, a flag or a sweep) as the option's kind: numbers as `coerce_number`; a list option
    from a list or a comma-separated string; a text option from a number (``eval_split: 2019``); a switch only
    from true/false. Anything else is one EncoderlabError naming the option."""
    if value is None or kind is None:
        return value
    if kind is list:
        if isinstance(value, str):
            return comma_list(value)
        if isinstance(value, (list, tuple)) and all(isinstance(x, (str, int, float)) and not isinstance(x, bool)
                                                    for x in value):
            return [str(x) for x in value]
        raise EncoderlabError(f"option {name}: expected a list of names (or a comma-separated string), got {value!r}")
    if kind is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, bool):      # YAML 1.1 reads unquoted on / off / yes / no as true / false
            raise EncoderlabError(f"option {name}: expected a text value, got {value!r} (quote on/off/yes/no "
                                  f"in YAML: {name}: \"off\")")
        if not isinstance(value, str):
            raise EncoderlabError(f"option {name}: expected a text value, got {value!r}")
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise EncoderlabError(f"option {name}: expected true or false, got {value!r}")
        return value
    if isinstance(value, (list, dict)):
        raise EncoderlabError(f"option {name}: expected a number, got {value!r}")
    return coerce_number(value, kind, name)
