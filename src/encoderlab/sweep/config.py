"""W&B sweep files, read into a typed `SweepSpec` and mapped onto Optuna.

A sweep file is the YAML that people write for ``wandb sweep``::

    method: bayes                     # grid | random | bayes
    metric: {name: eval_loss, goal: minimize}
    parameters:
      train_batch_size: {values: [16, 32]}
      learning_rate: {distribution: log_uniform_values, min: 1.0e-5, max: 1.0e-3}
      warmup_ratio: {min: 0.0, max: 0.2}
      seed: {value: 13}
    early_terminate: {type: hyperband, min_iter: 2, eta: 3}
    run_cap: 20

Mapping: grid -> `optuna.samplers.GridSampler` (every combination), random -> `RandomSampler`,
bayes -> `TPESampler`; ``early_terminate: hyperband`` -> `HyperbandPruner` (min_iter ->
min_resource, eta -> reduction_factor, max_iter or s -> max_resource so that Optuna makes s
brackets). Parameter distributions map onto `FloatDistribution` / `IntDistribution` /
`CategoricalDistribution`. encoderlab additions: ``task:`` a registered task (``qa``, ``classify``,
``mlm``; default qa; ``program:``/``command:`` naming ``encoderlab train TASK`` / ``pretrain`` are
not read). A metric without ``goal`` is optimized in its natural direction (the task registry's),
e.g. ``metric: {name: perplexity}`` minimizes the perplexity of an MLM sweep.

Every problem is reported as one `EncoderlabError` line naming the file and the key.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import EncoderlabError
from ..tasks import DEFAULT_TASK, get_task

METHODS = ("grid", "random", "bayes")
GOALS = ("minimize", "maximize")
TOP_KEYS = ("method", "metric", "parameters", "early_terminate", "run_cap", "task", "name", "description",
            "program", "command", "project", "entity")
PARAM_KEYS = ("value", "values", "min", "max", "distribution", "q", "mu", "sigma", "probabilities")
DISTRIBUTIONS = ("constant", "categorical", "int_uniform", "uniform", "q_uniform", "log_uniform_values",
                 "log_uniform", "q_log_uniform_values", "q_log_uniform", "inv_log_uniform_values",
                 "inv_log_uniform", "normal", "q_normal", "log_normal", "q_log_normal")
UNSUPPORTED = {
    "q_log_uniform_values": "Optuna has no quantized log distribution for floats; use log_uniform_values or values",
    "q_log_uniform": "Optuna has no quantized log distribution for floats; use log_uniform or values",
    "inv_log_uniform_values": "Optuna has no inverse-log distribution; use log_uniform_values",
    "inv_log_uniform": "Optuna has no inverse-log distribution; use log_uniform",
    "normal": "Optuna samplers draw from bounded ranges; use uniform with min/max",
    "q_normal": "Optuna samplers draw from bounded ranges; use q_uniform with min/max/q",
    "log_normal": "Optuna samplers draw from bounded ranges; use log_uniform_values with min/max",
    "q_log_normal": "Optuna samplers draw from bounded ranges; use values",
}
# Options a sweep may not vary: where the trial writes, and the trackers (use --report-to).
NOT_SWEEPABLE = ("output_dir", "report_to")


@dataclass(frozen=True)
class Metric:
    """An objective: its sweep name, the key in RUN/metrics.json and in the Trainer's logs."""
    name: str
    final_key: str        # key of RUN/metrics.json
    log_key: str          # key of the Trainer logs that carries intermediate values
    on_eval: bool         # intermediate values come with evaluations (else with training logs)
    description: str
    goal: str | None = None   # the metric's natural direction (the registry's higher_is_better)


def task_api(task: str) -> tuple[type, Any]:
    """(config class, train function) of a registered task, imported only when asked for."""
    t = get_task(task)
    return t.config_cls(), t.train_fn()


def task_metrics(task: str) -> dict[str, Metric]:
    """The metrics a sweep of `task` can optimize: train_loss, eval_loss and the task's own (task registry)."""
    t = get_task(task)
    out = {"train_loss": Metric("train_loss", "train_loss", "loss", False, "training loss", "minimize"),
           "eval_loss": Metric("eval_loss", "loss", "eval_loss", True, "validation loss", "minimize")}
    for m in t.optimizable():
        if m.name != "loss":
            out[m.name] = Metric(m.name, m.name, f"eval_{m.name}", True, m.axis_label, m.goal)
    return out


def normalize_metric_name(name: str) -> str:
    """W&B / Transformers spellings: eval/f1, eval_f1 -> f1; train/loss -> train_loss; loss -> eval_loss."""
    n = name.strip().replace("/", "_")
    if n in ("loss", "eval_loss", "validation_loss", "val_loss"):
        return "eval_loss"
    if n in ("train_loss", "training_loss"):
        return "train_loss"
    if n.startswith("eval_"):
        return n[len("eval_"):]
    return n


@dataclass
class Param:
    """One searched parameter: its W&B form and the Optuna distribution it becomes."""
    name: str
    kind: str                       # categorical | int | float
    values: list | None = None      # categorical
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None

    def distribution(self):
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "categorical":
            return CategoricalDistribution(self.values)
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return FloatDistribution(float(self.low), float(self.high), log=self.log,
                                 step=float(self.step) if self.step else None)

    def grid_values(self) -> list | None:
        """The finite set of values grid search walks through (None for a continuous range)."""
        if self.kind == "categorical":
            return list(self.values)
        if self.kind == "int" and not self.log:
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.kind == "float" and self.step:
            n = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
            return [round(self.low + i * self.step, 12) for i in range(n)]
        return None

    def describe(self) -> str:
        if self.kind == "categorical":
            return f"one of {self.values}"
        scale = " (log scale)" if self.log else ""
        step = f" step {self.step}" if self.step else ""
        return f"{self.kind} in [{self.low}, {self.high}]{step}{scale}"


@dataclass
class SweepSpec:
    """A validated sweep: what to search, how, and what to optimize."""
    method: str
    metric: str
    goal: str
    params: dict[str, Param]
    constants: dict[str, Any] = field(default_factory=dict)
    task: str = DEFAULT_TASK
    early_terminate: dict | None = None
    run_cap: int | None = None
    target: float | None = None
    name: str | None = None
    source: str = "<sweep>"

    @property
    def direction(self) -> str:
        return self.goal

    @property
    def metric_info(self) -> Metric:
        return task_metrics(self.task)[self.metric]

    def distributions(self) -> dict:
        return {name: p.distribution() for name, p in self.params.items()}

    def grid(self) -> dict[str, list]:
        return {name: p.grid_values() for name, p in self.params.items()}

    def grid_size(self) -> int:
        return math.prod(len(v) for v in self.grid().values()) if self.params else 1

    def sampler(self, seed: int | None = None):
        import optuna

        if self.method == "grid":
            return optuna.samplers.GridSampler(self.grid(), seed=seed)
        if self.method == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        return optuna.samplers.TPESampler(seed=seed)

    def pruner(self):
        import optuna

        et = self.early_terminate
        if not et:
            return optuna.pruners.NopPruner()
        eta = int(et.get("eta", 3))
        min_iter = int(et.get("min_iter", 1))
        if et.get("max_iter") is not None:
            max_resource: int | str = int(et["max_iter"])
        elif et.get("s") is not None:
            max_resource = min_iter * eta ** (int(et["s"]) - 1)   # Optuna then makes s brackets
        else:
            max_resource = "auto"
        return optuna.pruners.HyperbandPruner(min_resource=min_iter, max_resource=max_resource,
                                              reduction_factor=eta)

    def to_dict(self) -> dict:
        """A plain, JSON-able form (stored with the study so every worker and trial sees the same sweep)."""
        return {"method": self.method, "metric": {"name": self.metric, "goal": self.goal,
                                                  **({"target": self.target} if self.target is not None else {})},
                "task": self.task, "run_cap": self.run_cap, "early_terminate": self.early_terminate,
                "constants": self.constants,
                "params": {n: {k: v for k, v in p.__dict__.items() if v is not None and v is not False}
                           for n, p in self.params.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> "SweepSpec":
        params = {n: Param(**{k: v for k, v in p.items()}) for n, p in d["params"].items()}
        return cls(method=d["method"], metric=d["metric"]["name"], goal=d["metric"]["goal"],
                   target=d["metric"].get("target"), params=params, constants=d.get("constants") or {},
                   task=get_task(d.get("task", DEFAULT_TASK)).name, early_terminate=d.get("early_terminate"), run_cap=d.get("run_cap"))


def load_sweep(path: str | Path, *, task: str | None = None) -> SweepSpec:
    """Read and validate a W&B sweep YAML file (see the module docstring)."""
    from ..data.io import read_yaml

    path = Path(path)
    data = read_yaml(path)    # 4e-5 is a number, as W&B reads it (YAML 1.1 would make it a string)
    return parse_sweep(data, source=str(path), task=task)


def parse_sweep(data: Any, *, source: str = "<sweep>", task: str | None = None) -> SweepSpec:
    """Validate a sweep mapping. `task` (e.g. from --task) overrides the file's ``task:`` key."""
    def err(msg: str) -> EncoderlabError:
        return EncoderlabError(f"{source}: {msg}")

    if not isinstance(data, dict) or not data:
        raise err("a sweep file is a mapping with method, metric and parameters")
    unknown = sorted(set(map(str, data)) - set(TOP_KEYS))
    if unknown:
        raise err(f"unknown key(s) {', '.join(unknown)} (valid: {', '.join(TOP_KEYS)})")
    method = data.get("method")
    if not isinstance(method, str) or method not in METHODS:
        raise err(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    task = task or data.get("task") or DEFAULT_TASK
    if not isinstance(task, str):
        raise err(f"task must be a task name, not {task!r}")
    try:
        task = get_task(task).name                          # "pretraining" -> mlm
    except EncoderlabError as exc:
        raise err(str(exc)) from None
    metrics = task_metrics(task)

    metric = data.get("metric")
    if metric is None:
        raise err("metric is missing (e.g. metric: {name: eval_loss, goal: minimize})")
    if isinstance(metric, str):
        metric = {"name": metric}
    if not isinstance(metric, dict) or "name" not in metric:
        raise err("metric must be a mapping with name and goal, e.g. {name: f1, goal: maximize}")
    bad = sorted(set(metric) - {"name", "goal", "target"})
    if bad:
        raise err(f"metric: unknown key(s) {', '.join(bad)} (valid: name, goal, target)")
    mname = normalize_metric_name(str(metric["name"]))
    if mname not in metrics:
        raise err(f"unknown metric '{metric['name']}' for task {task} (valid: {', '.join(metrics)})")
    goal = metric.get("goal", metrics[mname].goal or "minimize")
    if not isinstance(goal, str) or goal not in GOALS:
        raise err(f"metric.goal must be minimize or maximize, not {goal!r}")
    target = metric.get("target")
    if target is not None and not _is_num(target):
        raise err(f"metric.target must be a number, not {target!r}")

    raw_params = data.get("parameters")
    if not isinstance(raw_params, dict) or not raw_params:
        raise err("parameters is missing or empty (e.g. parameters: {learning_rate: {min: 1.0e-5, max: 1.0e-3}})")
    valid = sweepable_options(task)
    unknown = sorted(set(map(str, raw_params)) - set(valid))
    if unknown:
        raise err(f"unknown parameter(s) {', '.join(unknown)} for task {task} (valid: {', '.join(valid)})")
    types = option_types(task)
    params: dict[str, Param] = {}
    constants: dict[str, Any] = {}
    for name, body in raw_params.items():
        p = _parse_param(str(name), body, types[str(name)], err)
        if isinstance(p, Param):
            params[p.name] = p
        else:
            constants[str(name)] = p[0]
    if method == "grid":
        continuous = [n for n, p in params.items() if p.grid_values() is None]
        if continuous:
            raise err(f"grid search needs discrete parameters (values, int min/max or q_uniform); "
                      f"continuous: {', '.join(continuous)}")
    if not params and method != "grid":
        raise err("parameters: nothing to search (every parameter has a single value)")

    et = data.get("early_terminate")
    if et is not None:
        if not isinstance(et, dict) or et.get("type") != "hyperband":
            raise err("early_terminate must be {type: hyperband, min_iter: N, eta: 3} (hyperband is the only type)")
        bad = sorted(set(et) - {"type", "min_iter", "max_iter", "s", "eta", "strict"})
        if bad:
            raise err(f"early_terminate: unknown key(s) {', '.join(bad)} (valid: type, min_iter, max_iter, s, eta, strict)")
        for k in ("min_iter", "max_iter", "s", "eta"):
            v = et.get(k)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise err(f"early_terminate.{k} must be a positive integer, not {v!r}")
        if et.get("eta", 3) < 2:
            raise err("early_terminate.eta must be at least 2")
    run_cap = data.get("run_cap")
    if run_cap is not None and (not isinstance(run_cap, int) or isinstance(run_cap, bool) or run_cap < 1):
        raise err(f"run_cap must be a positive integer, not {run_cap!r}")
    name = data.get("name")
    return SweepSpec(method=method, metric=mname, goal=goal, params=params, constants=constants, task=task,
                     early_terminate=dict(et) if et else None, run_cap=run_cap,
                     target=float(target) if target is not None else None,
                     name=str(name) if name is not None else None, source=source)


def sweepable_options(task: str) -> list[str]:
    return [n for n in option_types(task) if n not in NOT_SWEEPABLE]


def option_types(task: str) -> dict[str, str]:
    """{option name: its annotation as a string} for the task's training config."""
    cls, _ = task_api(task)
    return {f.name: str(f.type) for f in fields(cls)}


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _parse_param(name: str, body: Any, type_str: str, err) -> Param | tuple:
    """One entry of `parameters:`; returns a Param, or (value,) for a constant."""
    if not isinstance(body, dict):
        raise err(f"parameters.{name}: expected a mapping such as {{values: [...]}} or {{min: .., max: ..}}, got {body!r}")
    bad = sorted(set(map(str, body)) - set(PARAM_KEYS))
    if bad:
        raise err(f"parameters.{name}: unknown key(s) {', '.join(bad)} (valid: {', '.join(PARAM_KEYS)})")
    if "parameters" in body:
        raise err(f"parameters.{name}: nested parameters are not supported")
    if "probabilities" in body:
        raise err(f"parameters.{name}: probabilities is not supported (Optuna samplers draw categories uniformly)")
    dist = body.get("distribution")
    if dist is not None and (not isinstance(dist, str) or dist not in DISTRIBUTIONS):
        raise err(f"parameters.{name}: unknown distribution '{dist}' (valid: {', '.join(DISTRIBUTIONS)})")
    if dist in UNSUPPORTED:
        raise err(f"parameters.{name}: distribution {dist} is not supported ({UNSUPPORTED[dist]})")
    is_int = "int" in type_str and "float" not in type_str
    is_float = "float" in type_str
    is_numeric = is_int or is_float

    def check_value(v, where: str):
        if v is None and "None" in type_str:
            return v
        if is_int and not (isinstance(v, int) and not isinstance(v, bool)):
            raise err(f"parameters.{name}: {where} must be integers ({name} is an integer option), got {v!r}")
        if is_float and not _is_num(v):
            raise err(f"parameters.{name}: {where} must be numbers, got {v!r}")
        if "bool" in type_str and not isinstance(v, bool):
            raise err(f"parameters.{name}: {where} must be true/false, got {v!r}")
        if type_str.startswith("str") and not isinstance(v, str):
            raise err(f"parameters.{name}: {where} must be strings, got {v!r}")
        return float(v) if is_float and not is_int else v

    if "value" in body or dist == "constant":
        if "value" not in body:
            raise err(f"parameters.{name}: distribution constant needs value")
        return (check_value(body["value"], "value"),)
    if "values" in body or dist == "categorical":
        values = body.get("values")
        if not isinstance(values, list) or not values:
            raise err(f"parameters.{name}: values must be a non-empty list")
        values = [check_value(v, "values") for v in values]
        if len(set(map(repr, values))) != len(values):
            raise err(f"parameters.{name}: values has duplicates {values}")
        for v in values:
            if not (v is None or isinstance(v, (bool, int, float, str))):
                raise err(f"parameters.{name}: values must be numbers, strings, booleans or null, got {v!r}")
        return Param(name, "categorical", values=values)
    if "min" not in body or "max" not in body:
        raise err(f"parameters.{name}: give value, values, or min and max")
    lo, hi = body["min"], body["max"]
    if not (_is_num(lo) and _is_num(hi)):
        raise err(f"parameters.{name}: min and max must be numbers, got {lo!r} and {hi!r}")
    if not is_numeric:
        raise err(f"parameters.{name}: {name} is not a numeric option; use values: [...]")
    if lo > hi:
        raise err(f"parameters.{name}: min {lo} is greater than max {hi}")
    if dist is None:   # W&B infers int_uniform for two integers, uniform otherwise
        dist = "int_uniform" if isinstance(lo, int) and isinstance(hi, int) else "uniform"
    if is_int and dist not in ("int_uniform",) and not (isinstance(lo, int) and isinstance(hi, int)):
        raise err(f"parameters.{name}: min and max must be integers ({name} is an integer option)")
    if dist == "int_uniform":
        if not (isinstance(lo, int) and isinstance(hi, int)):
            raise err(f"parameters.{name}: int_uniform needs integer min and max, got {lo!r} and {hi!r}")
        return Param(name, "int", low=lo, high=hi)
    if is_int and dist != "int_uniform":
        if dist == "q_uniform":
            q = body.get("q", 1)
            if not isinstance(q, int) or q < 1:
                raise err(f"parameters.{name}: q must be a positive integer for an integer option, got {q!r}")
            return Param(name, "int", low=lo, high=hi, step=q)
        if dist == "log_uniform_values":
            if lo <= 0:
                raise err(f"parameters.{name}: log_uniform_values needs min > 0, got {lo}")
            return Param(name, "int", low=lo, high=hi, log=True)
        raise err(f"parameters.{name}: {name} is an integer option; use int_uniform, q_uniform, "
                  f"log_uniform_values or values")
    if dist == "uniform":
        return Param(name, "float", low=float(lo), high=float(hi))
    if dist == "q_uniform":
        q = body.get("q", 1.0)
        if not _is_num(q) or q <= 0:
            raise err(f"parameters.{name}: q must be a positive number, got {q!r}")
        return Param(name, "float", low=float(lo), high=float(hi), step=float(q))
    if dist == "log_uniform_values":
        if lo <= 0:
            raise err(f"parameters.{name}: log_uniform_values needs min > 0, got {lo}")
        return Param(name, "float", low=float(lo), high=float(hi), log=True)
    if dist == "log_uniform":    # W&B: min and max are natural-log exponents
        return Param(name, "float", low=math.exp(lo), high=math.exp(hi), log=True)
    raise err(f"parameters.{name}: distribution {dist} needs values, not min/max")
