"""Parameter inventory of a model: per-module rows, totals and memory, and diffs between two models.

The inventory answers "where are the parameters?" for any model ``load_model`` resolves
(``builtin:minilm-l6``, ``scratch:<preset>``, a run's model directory, a Hub name):

* **rows** — one per module at the chosen depth, with its parameter shapes, its parameter count and
  how many of those are trainable. Names drop the base-model prefix (``bert.``, ``roberta.``,
  ``distilbert.``…), so a bare encoder and a task model name their modules alike. Depth is counted
  in dotted-name components after that prefix, a numbered layer counting as one component: depth 1
  is ``embeddings``, ``encoder.layer.0`` … ``encoder.layer.11``, ``pooler`` and the task head
  (``qa_outputs``, ``classifier``, ``cls``); depth 2 opens each of these (``encoder.layer.0.attention``,
  ``embeddings.word_embeddings``…), and so on. A module with no submodules is shown at its own depth
  whatever depth is asked; parameters held directly by a module that is opened get a row of their own.
* **totals** — ``total``, ``trainable``, ``frozen`` and the bytes of the weights in fp32 (4 bytes a
  parameter) and bf16 (2 bytes). Shared (tied) weights count once, exactly as
  ``sum(p.numel() for p in model.parameters())``: a tied weight is counted in the row of the first
  module that holds it (e.g. the MLM decoder's weight is counted in ``embeddings.word_embeddings``),
  and the rows that share it name it under ``shared``. Buffers (position ids…) are not parameters.

Rows partition the parameters: their counts add up to ``total``.

A **diff** matches parameters by name (after the base-model prefix) and reports what was added,
removed and resized, collapsed to the largest module whose parameters all changed the same way
(``pooler`` removed, ``qa_outputs`` added, ``encoder.layer.6`` removed…), with the parameter delta.
For ``scratch:bert-base-uncased``, the bare encoder (``base``) has 109,482,240 parameters and its QA
model 108,893,186: the pooler is dropped (-590,592) and ``qa_outputs`` added (+1,538).

Example::

    from encoderlab.analysis.inspect import inspect_model
    inv = inspect_model("scratch:bert-base-uncased", task="base", diff_task="qa")
    inv.total, inv.diff.delta      # (109482240, -589054)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import EncoderlabError, ModelError
from ..models import BASE, auto_classes, load_model, run_model_dir
from ..tasks import find_task, head_of_task_name

TASKS = tuple(auto_classes())          # base and the registry's heads: qa, classify, mlm, mlm+nsp


@dataclass
class ModuleRow:
    """One line of the inventory: a module (or a parameter held directly by an opened module)."""
    name: str                          # dotted name after the base-model prefix ("encoder.layer.0")
    type: str                          # module class ("BertLayer", "Linear"), or "Parameter"
    depth: int
    shapes: dict[str, list[int]]       # every parameter under the row, by name relative to it
    parameters: int                    # counted once: shared weights belong to their first holder
    trainable: int
    shared: list[str] = field(default_factory=list)   # "weight = embeddings.word_embeddings.weight"

    @property
    def frozen(self) -> int:
        return self.parameters - self.trainable


@dataclass
class DiffRow:
    """A module added, removed or resized between model A and model B."""
    name: str
    change: str                        # "added", "removed" or "resized"
    parameters_a: int
    parameters_b: int
    shapes: dict[str, list[Any]]       # relative parameter name -> [shape in A or None, shape in B or None]

    @property
    def delta(self) -> int:
        return self.parameters_b - self.parameters_a


@dataclass
class ModelDiff:
    a: str                             # description of model A ("scratch:bert-base-uncased (base)")
    b: str
    total_a: int
    total_b: int
    changes: list[DiffRow]
    unchanged: int                     # parameters present with the same shape in both

    @property
    def delta(self) -> int:
        return self.total_b - self.total_a

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "total_a": self.total_a, "total_b": self.total_b, "delta": self.delta,
                "unchanged": self.unchanged,
                "changes": [{**asdict(c), "delta": c.delta} for c in self.changes]}


@dataclass
class Inventory:
    spec: str
    task: str
    model_class: str
    depth: int
    modules: list[ModuleRow]
    total: int
    trainable: int
    diff: ModelDiff | None = None

    @property
    def frozen(self) -> int:
        return self.total - self.trainable

    @property
    def bytes_fp32(self) -> int:
        return self.total * 4

    @property
    def bytes_bf16(self) -> int:
        return self.total * 2

    def to_dict(self) -> dict[str, Any]:
        out = {"spec": self.spec, "task": self.task, "model_class": self.model_class, "depth": self.depth,
               "modules": [{**asdict(r), "frozen": r.frozen} for r in self.modules],
               "total": self.total, "trainable": self.trainable, "frozen": self.frozen,
               "bytes_fp32": self.bytes_fp32, "bytes_bf16": self.bytes_bf16}
        if self.diff is not None:
            out["diff"] = self.diff.to_dict()
        return out


# --------------------------------------------------------------------------------------------
# the module tree

def base_prefix(model) -> str:
    """The module path of the base model inside `model` ("bert" for BertForQuestionAnswering, "" for BertModel)."""
    base = getattr(model, "base_model", model)
    if base is model:
        return ""
    for name, module in model.named_children():
        if module is base:
            return name
    return ""


def _strip(name: str, prefix: str) -> str:
    if prefix and (name == prefix or name.startswith(prefix + ".")):
        return name[len(prefix) + 1:]
    return name


def _is_container(module) -> bool:
    """A numbered list (ModuleList/ModuleDict), or a parameter-less module whose only child is one.

    Such modules are not rows of their own: their children carry the joined name, so BERT's
    ``encoder`` → ``layer`` → ``0`` makes the single depth-1 component ``encoder.layer.0``.
    """
    import torch.nn as nn

    if isinstance(module, (nn.ModuleList, nn.ModuleDict)):
        return True
    children = list(module.children())
    return (len(children) == 1 and not list(module.parameters(recurse=False))
            and _is_container(children[0]))


def _canonical_params(model) -> tuple[dict[int, str], dict[str, Any]]:
    """id(parameter) -> its first name (the one `named_parameters()` keeps), and that name -> parameter."""
    first: dict[int, str] = {}
    by_name: dict[str, Any] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) not in first:
            first[id(p)] = name
            by_name[name] = p
    return first, by_name


def inventory(model, *, depth: int = 1, spec: str = "", task: str = "") -> Inventory:
    """The parameter inventory of a loaded `torch.nn.Module` at `depth` (see the module docstring)."""
    if depth < 1:
        raise EncoderlabError(f"--depth must be 1 or more, not {depth}")
    prefix = base_prefix(model)
    first, params = _canonical_params(model)
    rows: list[ModuleRow] = []

    def row_for(path: str, module, level: int) -> ModuleRow:
        shapes, shared, total, trainable = {}, [], 0, 0
        for rel, p in module.named_parameters(remove_duplicate=False):
            full = f"{path}.{rel}" if path else rel
            shapes[rel] = list(p.shape)
            owner = first[id(p)]
            if owner != full:
                shared.append(f"{rel} = {_strip(owner, prefix)}")
                continue
            total += p.numel()
            trainable += p.numel() if p.requires_grad else 0
        return ModuleRow(_strip(path, prefix), type(module).__name__, level, shapes, total, trainable, shared)

    def param_row(path: str, rel: str, p, level: int) -> ModuleRow:
        full = f"{path}.{rel}" if path else rel
        owner = first[id(p)]
        if owner != full:
            return ModuleRow(_strip(full, prefix), "Parameter", level, {"": list(p.shape)}, 0, 0,
                             [f"= {_strip(owner, prefix)}"])
        return ModuleRow(_strip(full, prefix), "Parameter", level, {"": list(p.shape)}, p.numel(),
                         p.numel() if p.requires_grad else 0)

    def walk(path: str, module, level: int) -> None:
        # `level`: the depth of `module` itself (0 for the root and the base model)
        children = list(module.named_children())
        if level >= depth or (level > 0 and not children):
            rows.append(row_for(path, module, level))
            return
        for rel, p in module.named_parameters(recurse=False):
            rows.append(param_row(path, rel, p, level + 1))
        for name, child in children:
            if not any(True for _ in child.parameters()):
                continue                     # dropout, activations: nothing to count
            child_path = f"{path}.{name}" if path else name
            if child_path == prefix or _is_container(child):
                walk(child_path, child, level)           # transparent: same depth as its parent
            else:
                walk(child_path, child, level + 1)

    walk("", model, 0)
    total = sum(p.numel() for p in params.values())
    trainable = sum(p.numel() for p in params.values() if p.requires_grad)
    assert sum(r.parameters for r in rows) == total, "inventory rows must partition the parameters"
    return Inventory(spec, task, type(model).__name__, depth, rows, total, trainable)


# --------------------------------------------------------------------------------------------
# diff

def _named_shapes(model) -> dict[str, tuple[int, ...]]:
    prefix = base_prefix(model)
    _, params = _canonical_params(model)
    return {_strip(n, prefix): tuple(p.shape) for n, p in params.items()}


def _numel(shape: tuple[int, ...] | None) -> int:
    n = 1
    for d in shape or ():
        n *= d
    return n if shape is not None else 0


def diff_models(model_a, model_b, *, a: str = "A", b: str = "B") -> ModelDiff:
    """Modules added, removed and resized from `model_a` to `model_b`, matched by parameter name."""
    sa, sb = _named_shapes(model_a), _named_shapes(model_b)
    status: dict[str, str] = {}
    for n in sa.keys() | sb.keys():
        if n not in sb:
            status[n] = "removed"
        elif n not in sa:
            status[n] = "added"
        elif sa[n] != sb[n]:
            status[n] = "resized"
    order = list(sa) + [n for n in sb if n not in sa]     # model order, A's modules first
    names = set(order)
    done: set[str] = set()
    changes: list[DiffRow] = []
    for n in order:
        if n not in status or n in done:
            continue
        # the shortest module path above `n` whose parameters all changed like `n`
        parts = n.split(".")
        for k in range(1, len(parts) + 1):
            head = ".".join(parts[:k])
            under = [m for m in names if m == head or m.startswith(head + ".")]
            if all(status.get(m) == status[n] for m in under):
                break
        under = [m for m in order if m == head or m.startswith(head + ".")]
        done.update(under)
        shapes = {(m[len(head) + 1:] if m != head else ""): [list(sa[m]) if m in sa else None,
                                                            list(sb[m]) if m in sb else None] for m in under}
        changes.append(DiffRow(head, status[n], sum(_numel(sa.get(m)) for m in under),
                               sum(_numel(sb.get(m)) for m in under), shapes))
    total_a, total_b = sum(map(_numel, sa.values())), sum(map(_numel, sb.values()))
    unchanged = sum(_numel(sa[n]) for n in sa if n not in status)
    assert total_b - total_a == sum(c.delta for c in changes)
    return ModelDiff(a, b, total_a, total_b, changes, unchanged)


# --------------------------------------------------------------------------------------------
# loading

def saved_task(spec: str) -> str:
    """The head a saved model has (its :func:`~encoderlab.modelinfo.model_info`: recorded task, else the
    architecture); "base" for a bare encoder (builtin:, scratch:, a directory or Hub model with no task)."""
    from ..modelinfo import model_info

    return model_info(spec).head


def load_for_inspection(spec: str, task: str = "auto", *, num_labels: int | None = None):
    """Load `spec` for `task` ("auto": a saved model's own task, else "base"); returns (model, task)."""
    spec = run_model_dir(spec)
    if task == "auto":
        task = saved_task(spec)
    if task not in TASKS and find_task(task) is not None:
        task = head_of_task_name(task)             # "pretraining" (old name) -> mlm+nsp
    if task not in TASKS:
        raise ModelError(f"unknown task '{task}' (known: auto, {', '.join(TASKS)})")
    overrides: dict[str, Any] = {}
    if task != BASE and find_task(task) is not None and find_task(task).labelled:
        if num_labels is not None and num_labels < 1:
            raise EncoderlabError(f"--num-labels must be 1 or more, not {num_labels}")
        if num_labels is not None or spec.strip().startswith("scratch:"):
            overrides["num_labels"] = num_labels or 2
    try:
        # counting parameters needs no tokenizer, and a scratch model no values: built from its config on
        # the meta device, roberta-base takes a fraction of a second instead of initialising 125 M weights
        import contextlib

        import torch

        scratch = spec.strip().startswith("scratch:")
        with torch.device("meta") if scratch else contextlib.nullcontext():
            resolved = load_model(spec, task, with_tokenizer=False, **overrides)
    except ValueError as exc:          # e.g. a config that has no model for this task
        raise ModelError(f"cannot load '{spec}' for task {task}: {str(exc).splitlines()[0][:200]}") from exc
    return resolved.model, task


def inspect_model(spec: str, task: str = "auto", *, depth: int = 1, num_labels: int | None = None,
                  diff: str | None = None, diff_task: str | None = None) -> Inventory:
    """Load `spec` and inventory it; with `diff` (a model spec) and/or `diff_task`, diff against that model."""
    if depth < 1:
        raise EncoderlabError(f"--depth must be 1 or more, not {depth}")
    for flag, value in (("--task", task), ("--diff-task", diff_task)):
        if value is not None and value != "auto" and value not in TASKS and find_task(value) is None:
            raise ModelError(f"unknown {flag} '{value}' (known: auto, {', '.join(TASKS)})")
    model, task = load_for_inspection(spec, task, num_labels=num_labels)
    inv = inventory(model, depth=depth, spec=spec, task=task)
    if diff is not None or diff_task is not None:
        other_spec = diff if diff is not None else spec
        # --diff B: B with its own head (--diff-task names another); --diff-task alone: MODEL with that head
        other_task = diff_task or ("auto" if diff is not None else task)
        other, other_task = load_for_inspection(other_spec, other_task, num_labels=num_labels)
        inv.diff = diff_models(model, other, a=f"{spec} ({task})", b=f"{other_spec} ({other_task})")
    return inv


def format_shapes(shapes: dict[str, Any], *, pairs: bool = False, limit: int = 2) -> str:
    """Compact shapes for a table cell: ``768×768, 768`` for a Linear, ``16 tensors`` for a layer.

    With `pairs`, each value is ``[shape in A, shape in B]`` (a diff row) and prints as ``A → B``.
    """
    def one(s):
        return "—" if s is None else ("×".join(map(str, s)) if s else "scalar")

    if len(shapes) > limit:
        return f"{len(shapes)} tensors"
    return ", ".join(f"{one(s[0])} → {one(s[1])}" if pairs else one(s) for s in shapes.values())
