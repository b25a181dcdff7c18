"""The one training engine every task uses: Transformers' Trainer, wired for encoderlab.

A task hands the engine tokenized features (a `datasets.Dataset` with a ``length`` column), a
collator and an *evaluator* — a function ``evaluator(trainer) -> dict`` that runs the task's own
prediction + postprocessing + metrics (e.g. SQuAD EM/F1). The engine supplies AdamW with linear
warmup/decay, weight decay, gradient accumulation, bf16/fp16 where the hardware has it,
length-grouped batches with dynamic padding, evaluation every N steps, checkpoints and resume,
early stopping on a named metric, progress bars, and ``history.jsonl``.

Multi-GPU works through ``accelerate launch`` / ``torchrun`` with no code change: Trainer handles
DDP for training, and `predict_in_order` shards evaluation across processes and gathers it.
"""
from __future__ import annotations

import math
import re
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from .config import TrainConfig  # noqa: F401  (re-exported: the engine's options)
from .errors import EncoderlabError
from .runs import RunDir


def cpu_has_fast_bf16() -> bool:
    """AVX-512 BF16 or AMX: bf16 matrix products run about 2.5x faster than fp32 on such CPUs."""
    cpu = torch.cpu
    return bool(getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
                or getattr(cpu, "_is_amx_tile_supported", lambda: False)())


def is_main_process() -> bool:
    """Rank 0 of a torchrun / accelerate launch job, or a plain single process."""
    import os

    return int(os.environ.get("RANK", "0")) == 0


def resolve_precision(precision: str, device=None) -> str:
    """'auto' -> bf16 on GPUs (fp16 on GPUs without bf16) and on CPUs with fast bf16; else fp32.

    `device`: where the model runs (a CPU device picks by the CPU even on a machine with a GPU); by default
    the GPU when there is one. bf16 here is mixed precision (autocast): weights and optimizer state stay fp32.
    """
    if precision not in ("auto", "fp32", "bf16", "fp16"):
        raise EncoderlabError(f"precision must be auto, fp32, bf16 or fp16, not '{precision}'")
    cuda = torch.cuda.is_available() and (device is None or torch.device(device).type == "cuda")
    if precision == "auto":
        if cuda:
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    if precision == "fp16" and not cuda:
        raise EncoderlabError("fp16 needs a CUDA GPU; use --precision bf16 or fp32 on CPU")
    return precision


# Below this padded batch length a bf16 training step on a CPU runs attention faster with the math kernel than
# with PyTorch's fused flash kernel when attention dropout is off (with it the two measured even or math slower):
# under 192 query rows the fused kernel works in blocks of 32 rows (64 from 192: PyTorch's own split), and its
# backward is slow there. Forward + backward 1.19-1.42x faster up to 160 tokens, 0.71-0.88x at 384; a training
# step over the recipe's length mix 1.09-1.10x (bench/bench_attention_kernel.py on AMD Zen 4 and Zen 5; not measured on Intel AMX;
# docs/performance.md). Inference is not helped: the fused forward alone is the faster one at every length.
MATH_ATTENTION_BELOW = 192


def attention_dropout(model) -> float:
    """The largest attention-probability dropout of `model` (`attention_dropout_layers`; the probability it
    has in training mode), 0 when it has none."""
    return max((layer.p for layer in attention_dropout_layers(model)), default=0.0)


def attention_dropout_layers(model) -> list:
    """The dropout layers of `model`'s attention probabilities: those held by modules whose class name ends in
    ``Attention`` (BertSelfAttention, DistilBERT's MultiHeadSelfAttention…; the BERT-family attention modules
    read their ``dropout.p``)."""
    return [child for module in model.modules() if type(module).__name__.endswith("Attention")
            for child in module.children() if isinstance(child, torch.nn.Dropout)]


def training_attention_kernel(length: int, precision: str, device_type: str = "cpu", dropout: float = 0.0):
    """The context a training step's forward pass over a batch padded to `length` tokens runs in (its backward
    follows the kernels the forward took): the math attention kernel for bf16 on a CPU without attention
    `dropout` below MATH_ATTENTION_BELOW tokens, else PyTorch's own choice."""
    if precision == "bf16" and device_type == "cpu" and not dropout and length < MATH_ATTENTION_BELOW:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        return sdpa_kernel([SDPBackend.MATH])
    return nullcontext()


_ADAMW_KINDS = ("fused", "foreach", "for-loop")
_adamw_kind_cache: dict[str, str] = {}


def adamw_kind(device_type: str = "cpu") -> str:
    """The fastest torch.optim.AdamW implementation that works on `device_type`: "fused" (one kernel over all
    parameters; on this 2-core CPU 4-12x faster than the per-parameter for-loop, see docs/performance.md),
    else "foreach" (batched tensor ops), else "for-loop". Probed once per device type with one step on a
    tiny parameter, so an older torch or a device without the fused kernel falls back instead of failing."""
    if device_type not in _adamw_kind_cache:
        kind = "for-loop"
        for candidate in _ADAMW_KINDS[:2]:
            try:
                param = torch.zeros(2, device=device_type, requires_grad=True)
                param.grad = torch.ones_like(param)
                torch.optim.AdamW([param], lr=1e-3, **{candidate: True}).step()
            except (RuntimeError, TypeError, ValueError, NotImplementedError):
                continue
            kind = candidate
            break
        _adamw_kind_cache[device_type] = kind
    return _adamw_kind_cache[device_type]


def adamw_options(device_type: str = "cpu") -> dict[str, bool]:
    """torch.optim.AdamW keyword arguments selecting `adamw_kind(device_type)`."""
    kind = adamw_kind(device_type)
    return {} if kind == "for-loop" else {kind: True}


# Device types where torch.compile measured faster than eager for our encoders' training + evaluation (what
# `--compile auto` turns it on for). CPU: measured slower here (compilation of the forward and backward graphs
# costs minutes on 2 cores and the compiled steps were no faster; docs/performance.md); GPUs: not measured yet.
COMPILE_FASTER_ON: frozenset[str] = frozenset()


def resolve_compile(choice: str, device_type: str) -> bool:
    """Whether `--compile auto|on|off` compiles the model on `device_type`."""
    from .config import COMPILE_CHOICES

    if choice not in COMPILE_CHOICES:
        raise EncoderlabError(f"compile must be {', '.join(COMPILE_CHOICES)}, not {choice!r}")
    return device_type in COMPILE_FASTER_ON if choice == "auto" else choice == "on"


def set_dropout(model, p: float | None, *, attention: float | None = None) -> int:
    """Set the probability of every dropout layer of `model` (hidden states, attention probabilities - the
    BERT-family attention modules read their ``dropout.p`` - and the task head) to `p`, then that of the
    attention probabilities alone to `attention` (the dropout layers held by modules whose class name ends in
    ``Attention``: BertSelfAttention, DistilBERT's MultiHeadSelfAttention…); None leaves a value as it is.
    The model config's dropout settings (its float attributes named ``*dropout*``: ``hidden_dropout_prob``,
    DistilBERT's ``attention_dropout``…; those also named ``*attention*`` take `attention`) follow, so a saved
    model says what it was trained with. One mechanism for every architecture; returns the number of dropout
    layers changed."""
    attention_layers = {id(layer) for layer in attention_dropout_layers(model)}
    changed = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            value = attention if attention is not None and id(module) in attention_layers else p
            if value is not None:
                module.p = float(value)
                changed += 1
    config = getattr(model, "config", None)
    for name, value in (vars(config).items() if config is not None else ()):
        if "dropout" in name and isinstance(value, float):
            new = attention if attention is not None and "attention" in name else p
            if new is not None:
                setattr(config, name, float(new))
    return changed


def compile_model(model, log: Callable[[str], None] = print) -> bool:
    """torch.compile `model` in place (``nn.Module.compile``: the same module, weights and state-dict keys, so
    Trainer, checkpoints and `save_pretrained` are unchanged), with dynamic shapes so that dynamically padded
    batches do not recompile at every new length. A compile that fails, now or at a later call, warns once
    and runs eager: dynamo's `suppress_errors`, patched around this model's calls only, so the rest of the
    process (a user's own compiled code) keeps its own setting. Returns whether the model is compiled."""
    try:
        import torch._dynamo

        model.compile(dynamic=True)
        # a graph of this model that fails to compile runs eager; nn.Module.compile keeps the compiled callable
        # in `_compiled_call_impl`, which `Module.__call__` calls
        model._compiled_call_impl = torch._dynamo.config.patch(suppress_errors=True)(model._compiled_call_impl)
    except Exception as exc:  # noqa: BLE001 - any failure of the optional compiler means: run eager
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log(f"warning: torch.compile failed ({text}); running eager")
        return False
    return True


def training_arguments(cfg: TrainConfig, run: RunDir, *, metric: str, greater_is_better: bool, has_eval: bool):
    from transformers import TrainingArguments

    precision = resolve_precision(cfg.precision)
    eval_strategy = "no" if not has_eval else ("steps" if cfg.eval_steps else "epoch")
    early = cfg.early_stopping_patience is not None and has_eval
    try:        # Transformers checks the option values (schedule name, steps…): a user error here
        return TrainingArguments(
            output_dir=str(run.checkpoints_dir),
            per_device_train_batch_size=cfg.train_batch_size,
            per_device_eval_batch_size=cfg.eval_batch_size,
            learning_rate=cfg.learning_rate,
            num_train_epochs=cfg.num_train_epochs,
            max_steps=cfg.max_steps,
            warmup_steps=cfg.warmup_ratio,          # a float in [0, 1) is a ratio of the total steps
            weight_decay=cfg.weight_decay,
            gradient_accumulation_steps=cfg.gradient_accumulation_steps,
            lr_scheduler_type=cfg.lr_scheduler_type,
            max_grad_norm=cfg.max_grad_norm,
            bf16=precision == "bf16",
            fp16=precision == "fp16",
            seed=cfg.seed,
            eval_strategy=eval_strategy,
            eval_steps=cfg.eval_steps,
            save_strategy=eval_strategy if eval_strategy != "no" else "epoch",
            save_steps=cfg.eval_steps or 500,
            save_total_limit=cfg.save_total_limit,
            load_best_model_at_end=early,
            metric_for_best_model=metric if has_eval else None,
            greater_is_better=greater_is_better,
            logging_strategy="steps",
            logging_steps=cfg.logging_steps,
            logging_first_step=True,
            train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
            length_column_name="length",
            remove_unused_columns=False,            # keep `length` for the sampler; the collator drops it
            dataloader_num_workers=cfg.dataloader_num_workers,
            report_to=tracker_integrations(cfg.report_to),
            disable_tqdm=False,
            save_only_model=False,
            dataloader_pin_memory=torch.cuda.is_available(),
            # no GPU: say so, which also makes torchrun / accelerate launch start real (gloo) DDP on CPUs
            use_cpu=not torch.cuda.is_available() and not torch.backends.mps.is_available(),
        )
    except ValueError as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EncoderlabError(f"invalid training option: {text}") from exc


def tracker_integrations(names: list[str] | str | None) -> list[str]:
    """Validate optional experiment trackers: each must be one Transformers knows and be installed."""
    if not names:
        return []
    names = [names] if isinstance(names, str) else list(names)
    from transformers.integrations import get_available_reporting_integrations

    known = ("tensorboard", "wandb", "mlflow", "comet_ml", "clearml", "dvclive", "neptune", "trackio")
    available = set(get_available_reporting_integrations())
    for name in names:
        if name not in known:
            raise EncoderlabError(f"report_to: unknown tracker '{name}' (known: {', '.join(known)})")
        if name not in available:
            raise EncoderlabError(f"report_to: '{name}' is not installed (pip install {name}); trackers are optional")
    return names


class DynamicPadCollator:
    """Pad each batch to its own longest sequence; drop bookkeeping columns."""

    def __init__(self, tokenizer, drop: tuple[str, ...] = ("length",), pad_to_multiple_of: int | None = None):
        from transformers import DataCollatorWithPadding

        self.inner = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of)
        self.drop = drop

    def __call__(self, batch: list[dict]) -> dict[str, torch.Tensor]:
        return self.inner([{k: v for k, v in row.items() if k not in self.drop} for row in batch])


def predict_in_order(model, columns: dict[str, list], collator, *, batch_size: int, device, precision: str,
                     outputs: tuple[str, ...], desc: str = "predicting", accelerator=None,
                     show_progress: bool = True) -> tuple[dict[str, np.ndarray], float | None]:
    """Run `model` over every row of `columns`, longest-first batches, logits kept on the CPU.

    Returns ({name: (N, W) float32 array, rows padded with 0 to the widest batch's output}, mean loss or None).
    Under several processes each one predicts a shard and the shards are gathered.
    """
    n = len(columns["input_ids"])
    lengths = np.fromiter((len(x) for x in columns["input_ids"]), dtype=np.int64, count=n)
    order = np.argsort(-lengths, kind="stable")
    shard = order
    if accelerator is not None and accelerator.num_processes > 1:
        shard = order[accelerator.process_index::accelerator.num_processes]
    loss_sum, loss_count = 0.0, 0
    chunks = [shard[i:i + batch_size] for i in range(0, len(shard), batch_size)]
    batches = (collator([{k: columns[k][i] for k in columns} for i in idx]) for idx in chunks)
    local: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []
    for idx, (batch, out) in zip(chunks, forward_batches(model, batches, device=device, precision=precision,
                                                          desc=desc, show_progress=show_progress, total=len(chunks))):
        if getattr(out, "loss", None) is not None:
            loss_sum += float(out.loss) * len(idx)
            loss_count += len(idx)
        local.append((idx, {name: out[name].float().cpu().numpy() for name in outputs}))
    if accelerator is not None and accelerator.num_processes > 1:
        from accelerate.utils import gather_object

        local = gather_object(local)
        sums = gather_object([(loss_sum, loss_count)])
        loss_sum, loss_count = sum(s for s, _ in sums), sum(c for _, c in sums)
    # each output is as wide as its widest batch: the longest input for token-level outputs (QA
    # start/end logits), the number of labels for sequence-level ones (classification logits)
    widths = {name: max((arrays[name].shape[1] for _, arrays in local), default=1) for name in outputs}
    results = {name: np.zeros((n, widths[name]), dtype=np.float32) for name in outputs}
    for idx, arrays in local:
        for name, arr in arrays.items():
            results[name][idx, : arr.shape[1]] = arr
    return results, (loss_sum / loss_count if loss_count else None)


def forward_batches(model, batches: Iterable[dict], *, device, precision: str, desc: str = "predicting",
                    show_progress: bool = True, total: int | None = None,
                    targets: tuple[str, ...] = ()) -> Iterator[tuple[dict, Any]]:
    """The one evaluation loop: yields (batch on `device`, model output) for each batch, in inference mode,
    under autocast for bf16/fp16 (`precision` "auto": as :func:`resolve_precision`, bf16 where it is fast), the
    model in eval mode (its training mode is restored at the end).

    Callers reduce the outputs their own way: `predict_in_order` keeps logits, the masked-LM evaluator
    sums masked-token losses. `targets` are batch keys kept from the model (the caller scores them)."""
    precision = resolve_precision(precision, device)
    autocast = (torch.autocast(device_type=device.type, dtype=torch.bfloat16) if precision == "bf16" else
                torch.autocast(device_type=device.type, dtype=torch.float16) if precision == "fp16" else None)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for batch in _progress(batches, desc, show_progress, total):
                batch = {k: v.to(device) for k, v in batch.items()}
                inputs = {k: v for k, v in batch.items() if k not in targets}
                if autocast is not None:
                    with autocast:
                        out = model(**inputs)
                else:
                    out = model(**inputs)
                yield batch, out
    finally:
        if was_training:
            model.train()


def padded_tokens(lengths: np.ndarray, batch_size: int) -> int:
    """Tokens (padding included) of `lengths` cut into batches of `batch_size` in this order, each padded to
    its longest row."""
    return int(sum(len(chunk) * int(chunk.max()) for chunk in
                   (lengths[i:i + batch_size] for i in range(0, len(lengths), batch_size))))


def estimate_forward_seconds(model, input_ids: Sequence[Sequence[int]], collator, *, batch_size: int, device,
                             precision: str, seed: int = 0) -> float:
    """Seconds the evaluation loop (`predict_in_order`: longest-first batches of `batch_size`) would spend in
    the model's forward passes over rows `input_ids`, from timing one batch of `batch_size` rows drawn at
    random (their own generator: the training's random state is untouched): the sample's seconds per padded
    token times the padded tokens of the whole evaluation. (Attention's cost per token grows with the length,
    a small share at these lengths; a random batch pads more than a longest-first one, which errs long.)"""
    lengths = np.fromiter((len(x) for x in input_ids), dtype=np.int64, count=len(input_ids))
    if not len(lengths):
        return 0.0
    rows = np.random.default_rng(seed).choice(len(lengths), size=min(batch_size, len(lengths)), replace=False)
    batch = collator([{"input_ids": list(input_ids[i]), "attention_mask": [1] * int(lengths[i])} for i in rows])
    start = time.perf_counter()
    for _ in forward_batches(model, [batch], device=device, precision=precision, show_progress=False):
        pass
    seconds = time.perf_counter() - start
    whole = padded_tokens(np.sort(lengths)[::-1], batch_size)
    return seconds * whole / padded_tokens(lengths[rows], batch_size)


def _progress(items: Iterable, desc: str, show: bool, total: int | None = None) -> Iterator:
    if not show:
        yield from items
        return
    from tqdm.auto import tqdm

    yield from tqdm(items, desc=desc, leave=False, unit="batch", total=total)


def make_trainer(*, model, tokenizer, cfg: TrainConfig, run: RunDir, train_dataset, collator,
                 evaluator: Callable[[Any], dict[str, float]] | None, metric: str, greater_is_better: bool,
                 callbacks: list | None = None, started: float | None = None,
                 eval_input_ids: Sequence[Sequence[int]] | None = None,
                 log: Callable[[str], None] = print, train_accuracy: Callable[[Any, dict], Any] | None = None):
    """A Trainer whose evaluation is the task's `evaluator` and whose logs go to history.jsonl.

    `train_accuracy(outputs, batch) -> (correct, total)` (tensors or numbers) scores each training batch
    from the outputs the training step computes anyway; every training-loss log then carries
    ``train_accuracy``, the share correct over the batches since the previous log (all micro-batches of
    gradient accumulation, all processes). The window restarts with each log and with each (resumed) train().
    `callbacks` are extra TrainerCallback objects (e.g. a sweep's pruning hook). With ``cfg.time_budget``
    a `TimeBudgetCallback` fits the run into the budget counted from `started` (the time the task's
    train function began; default: now), `eval_input_ids` (the token ids of the rows the evaluator
    predicts) size its estimate of an evaluation's cost, and `log` gets its line with the chosen number of
    steps.
    """
    from transformers import EarlyStoppingCallback, Trainer, TrainerCallback
    from transformers.trainer_callback import ProgressCallback

    class EngineTrainer(Trainer):
        loss_before = 0.0        # sum of the per-step losses before the checkpoint this invocation resumed from
        loss_before_known = True
        run_started = started if started is not None else time.time()
        seconds_before = 0.0     # run time (s) of earlier invocations up to the checkpoint resumed from
        resume_state: dict = {}
        steps_before_budget = 0  # the steps --epochs / --max-steps gave, when a time budget changed them
        window = None            # (correct, total) of the training batches since the last log (train_accuracy)

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            # Transformers 5 takes a model whose forward has **kwargs to normalise its loss by
            # num_items_in_batch, and then skips dividing by the accumulation steps; the QA, classification
            # and masked-LM heads ignore num_items_in_batch (their losses are batch means), so with
            # --gradient-accumulation-steps N the gradient and the logged loss were N times too large.
            self.model_accepts_loss_kwargs = False

        def train(self, resume_from_checkpoint=None, **kwargs):
            self.window = None
            state = read_resume_state(resume_from_checkpoint)
            self.resume_state = state
            self.loss_before = state.get("loss_sum", 0.0)
            self.seconds_before = float(state.get("seconds", 0.0))
            self.loss_before_known = resume_from_checkpoint is None or "loss_sum" in state
            for cb in self.callback_handler.callbacks:      # callbacks with state in the checkpoint
                if hasattr(cb, "load_state"):
                    cb.load_state(resume_from_checkpoint, self.model)
            try:
                return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)
            except BaseException:
                for cb in self.callback_handler.callbacks:      # end the bar's line: `error: …` gets its own
                    if isinstance(cb, ProgressCallback) and cb.training_bar is not None:
                        cb.training_bar.close()
                        cb.training_bar = None
                raise

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            ids = inputs.get("input_ids")
            compiled = getattr(self.accelerator.unwrap_model(model), "_compiled_call_impl", None) is not None    # its kernels are the compiler's
            if not model.training or ids is None or compiled:
                return self._compute_loss(model, inputs, return_outputs, num_items_in_batch)
            with training_attention_kernel(ids.shape[-1], "bf16" if self.args.bf16 else "fp32",
                                           self.args.device.type, attention_dropout(model)):
                return self._compute_loss(model, inputs, return_outputs, num_items_in_batch)

        def _compute_loss(self, model, inputs, return_outputs, num_items_in_batch):
            if train_accuracy is None or not model.training:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            loss, outputs = super().compute_loss(model, inputs, True, num_items_in_batch)
            with torch.no_grad():
                counts = torch.stack([torch.as_tensor(x, device=loss.device).detach().sum().to(torch.long)
                                      for x in train_accuracy(outputs, inputs)])
            self.window = counts if self.window is None else self.window + counts
            return (loss, outputs) if return_outputs else loss

        def log(self, logs, *args, **kwargs):
            if train_accuracy is not None and "loss" in logs and self.window is not None:
                # a training-loss log (every process logs it): the window's accuracy over all processes
                correct, total = self.accelerator.reduce(self.window, reduction="sum").tolist()
                self.window = None
                if total:
                    logs["train_accuracy"] = correct / total
            # Trainer's train_loss covers this invocation's steps only; make it the whole run's mean
            # (in place: the same dict is Trainer's train() result metrics)
            if "train_loss" in logs and "train_runtime" in logs and self.loss_before_known and self.state.global_step:
                steps_now = self.state.global_step - getattr(self, "_initial_global_step", 0)
                logs["train_loss"] = (self.loss_before + logs["train_loss"] * steps_now) / self.state.global_step
            if "train_samples_per_second" in logs and self.steps_before_budget:
                # Trainer counts the samples of the steps --epochs gave, not of the budget's (fewer) steps
                logs["train_samples_per_second"] = round(
                    logs["train_samples_per_second"] * self.state.max_steps / self.steps_before_budget, 3)
            return super().log(logs, *args, **kwargs)

        @staticmethod
        def get_optimizer_cls_and_kwargs(args, model=None):
            # Trainer's AdamW (learning rate, betas, eps; weight-decay groups stay Trainer's), with the fastest
            # implementation that works here: Trainer asks for the fused kernel and leaves the fallback to
            # torch's default, which is the slow per-parameter for-loop on CPUs
            cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
            if cls is torch.optim.AdamW:
                kwargs = {k: v for k, v in kwargs.items() if k not in ("fused", "foreach")}
                kwargs.update(adamw_options(args.device.type))
            return cls, kwargs

        def create_optimizer(self, model=None):
            if self.optimizer is not None or cfg.layerwise_lr_decay >= 1.0:
                return super().create_optimizer(model)
            opt_model = self.model if model is None else model
            groups = layerwise_param_groups(opt_model, lr=self.args.learning_rate, decay=cfg.layerwise_lr_decay,
                                            weight_decay=self.args.weight_decay,
                                            decay_names=set(self.get_decay_parameter_names(opt_model)))
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
            self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
            return self.optimizer

        def _save_checkpoint(self, model, trial):
            save_checkpoint_atomically(self)

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
            start = time.time()
            raw = evaluator(self)
            metrics = {f"{metric_key_prefix}_{k}": v for k, v in raw.items() if isinstance(v, (int, float))}
            metrics[f"{metric_key_prefix}_runtime"] = round(time.time() - start, 3)
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
            return metrics

    class HistoryCallback(TrainerCallback):
        def __init__(self):
            self.t0 = time.time()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and logs:
                run.append_history({"step": state.global_step, "epoch": round(state.epoch or 0.0, 4),
                                    "time": round(time.time() - self.t0, 2), **logs})

    class ConsoleProgress(ProgressCallback):
        """Trainer's progress bars, with readable log lines instead of dict dumps."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not (state.is_world_process_zero and self.training_bar is not None and logs):
                return
            # stderr, like the bars: stdout stays clean for --json output
            self.training_bar.write(format_log(state.global_step, state.max_steps, logs), file=sys.stderr)

    args = training_arguments(cfg, run, metric=metric, greater_is_better=greater_is_better,
                              has_eval=evaluator is not None)
    if cfg.dropout is not None or cfg.attention_dropout is not None:
        set_dropout(model, cfg.dropout, attention=cfg.attention_dropout)
    if resolve_compile(cfg.compile, args.device.type):
        compile_model(model, log)
    extra_callbacks = list(callbacks or [])
    callbacks = [LogTrainingLossCallback(), HistoryCallback()]
    trim = glibc_malloc_trim()
    if trim is not None and args.device.type == "cpu":
        callbacks.append(MemoryTrimCallback(trim))
    if cfg.early_stopping_patience is not None and evaluator is not None:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    budget = cfg.time_budget_seconds()
    if budget is not None:
        budget_callback = TimeBudgetCallback(budget, run=run, eval_input_ids=eval_input_ids,
                                             precision=resolve_precision(cfg.precision), log=log)
        callbacks.append(budget_callback)
    if cfg.weight_averaging > 0:       # after the time budget's callback: it sees the step that ends the run
        callbacks.append(WeightAveragingCallback(cfg.weight_averaging, run=run, log=log))
    callbacks.extend(extra_callbacks)
    # Trainer insists on an eval_dataset when evaluation is on; ours is the evaluator's own data.
    placeholder = train_dataset.select(range(1)) if evaluator is not None else None
    trainer = EngineTrainer(model=model, args=args, train_dataset=train_dataset, eval_dataset=placeholder,
                            data_collator=collator, processing_class=tokenizer, callbacks=callbacks)
    if budget is not None:
        budget_callback.trainer = trainer
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(ConsoleProgress())
    return trainer


try:
    from transformers import TrainerCallback as _TrainerCallback
except ImportError:  # pragma: no cover - transformers is a hard dependency
    _TrainerCallback = object


class LogTrainingLossCallback(_TrainerCallback):
    """Log the training loss at the end of every epoch and right before every evaluation, whatever
    logging_steps says: every epoch has a training-loss point on the curves, and every evaluation row
    the training loss of the steps since the previous log (Trainer skips a log at a step already logged)."""

    def on_step_end(self, args, state, control, **kwargs):
        if control.should_evaluate:
            control.should_log = True

    def on_epoch_end(self, args, state, control, **kwargs):
        control.should_log = True


def glibc_malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None off glibc (macOS, Windows, musl)."""
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


class MemoryTrimCallback(_TrainerCallback):
    """Return freed heap memory to the OS every `every` steps when training on the CPU.

    Dynamic padding gives every batch a new shape; glibc keeps the freed blocks of those differently
    sized tensors, so the resident memory of a CPU run grows step after step (measured here with
    MiniLM: 1.9 -> 3.0 GB over 90 steps, 5.6 GB after 734). Trimming keeps it near 1 GB for the same
    90 steps when trimming every 5 steps; every 10 (the default) bounds it between trims.
    """

    def __init__(self, trim: Callable[[int], int], every: int = 10):
        self.trim, self.every = trim, every

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.every == 0:
            self.trim(0)

    def on_evaluate(self, args, state, control, **kwargs):
        self.trim(0)


class TimeBudgetCallback(_TrainerCallback):
    """Fit a run into a wall-time budget (``--time-budget``), counted from the start of the task's train
    function; a resumed run gets what its earlier invocations left (their time up to the checkpoint).

    After a few uninterrupted optimizer steps it measures seconds per step and chooses the largest number
    of steps N (at most the one --epochs / --max-steps give) for which the remaining steps, the
    evaluations and checkpoints on the way, the final evaluation and checkpoint, the model save and a
    margin end within the budget. It sets ``state.max_steps`` to N and moves the learning-rate schedule's
    horizon (and warm-up) to N, so the schedule ends on time; it plans again after every step (seconds per
    step: the mean of the last `window` steps — long enough to span several of the length-grouped sampler's
    mega-batches, 50 batches each sorted longest first, whose step times differ several-fold: a 20-step window
    made the plan, and so the schedule's horizon, swing by ±30 % — so a machine that slows down still shortens
    the run early) and
    with the measured costs after every evaluation + checkpoint. Until the first evaluation its cost is
    estimated by timing the model's forward pass over one batch of randomly chosen evaluation rows
    (`eval_input_ids`, at the evaluation batch size, scaled by padded tokens to the whole evaluation:
    `estimate_forward_seconds`) once the steps are measured; before that, as a third of the training time
    per evaluation row (no cost without the rows). A save is estimated as 16 bytes per parameter
    at 100 MB/s. As a safety net it stops training (with a final evaluation and checkpoint) as soon as one
    more step would not leave time for them, even using the plan's margin
    (2 % of the budget + 1 s). The first plan is logged and recorded in history.jsonl
    (``time_budget_steps``, ``time_budget_epochs``, ``seconds_per_step``), and so is the end (the steps
    trained, ``stopped_by_time`` when the safety net stopped it)."""

    measure_steps = 5           # measured steps (the first step, with its one-off costs, is not measured)
    window = 200

    def __init__(self, budget: float, *, run: RunDir | None = None,
                 eval_input_ids: Sequence[Sequence[int]] | None = None, precision: str = "fp32",
                 log: Callable[[str], None] = print):
        self.budget, self.run, self.log = budget, run, log
        self.eval_input_ids, self.precision = eval_input_ids, precision
        self.eval_estimate: float | None = None      # the timed sample's estimate (seconds)
        self.trainer = None                   # set by make_trainer
        self.deadline = math.inf
        self.step_times: list[float] = []
        self.last_end: float | None = None
        self.train_begin = 0.0
        self.paused = False
        self.eval_seconds: float | None = None
        self.save_seconds: float | None = None
        self.evaluated_at: float | None = None
        self.planned: int | None = None
        self.measured = False                 # planned from measured steps (not only the resumed run's plan)
        self.stopped_by_time = False
        self.cap = 0
        self.steps_per_epoch = 1
        self.parameters = 0

    # -- costs -------------------------------------------------------------------------------------------
    def step_seconds(self) -> float:
        if self.step_times:
            return float(np.mean(self.step_times[-self.window:]))
        return max(time.time() - self.train_begin, 0.0)      # only the first step so far

    def eval_cost(self) -> float:
        if self.trainer is None or self.trainer.args.eval_strategy == "no":
            return 0.0
        if self.eval_seconds is not None:
            return self.eval_seconds
        if self.eval_estimate is not None:
            return self.eval_estimate
        args = self.trainer.args
        per_row = self.step_seconds() / (args.per_device_train_batch_size * args.gradient_accumulation_steps)
        return per_row / 3 * len(self.eval_input_ids or ())     # a forward pass: ~1/3 of forward + backward

    def time_evaluation(self) -> bool:
        """Time one sample batch of the evaluation rows (once, before the first plan); True if it ran."""
        trainer = self.trainer
        if (not self.eval_input_ids or self.eval_estimate is not None or self.eval_seconds is not None
                or trainer.args.eval_strategy == "no"):
            return False
        processes = max(getattr(trainer.accelerator, "num_processes", 1), 1)   # each predicts a shard
        self.eval_estimate = estimate_forward_seconds(
            trainer.model, self.eval_input_ids, DynamicPadCollator(trainer.processing_class),
            batch_size=trainer.args.per_device_eval_batch_size, device=trainer.args.device,
            precision=self.precision) / processes
        return True

    def save_cost(self) -> float:
        """One checkpoint (weights, optimizer state, RNG, trainer state)."""
        if self.save_seconds is not None:
            return self.save_seconds
        return 12.0 * self.parameters / 100e6 + 0.5

    def margin(self) -> float:
        return 0.02 * self.budget + 1.0

    def final_cost(self) -> float:
        """What follows the last step: its evaluation and checkpoint, a reload of the best model and its
        evaluation, the model save, a margin (which the plan keeps and the safety net may use)."""
        args = self.trainer.args
        reload = self.eval_cost() if args.load_best_model_at_end else 0.0
        return self.eval_cost() + self.save_cost() + reload + self.save_cost() / 3 + self.margin()

    def cost(self, step: int, total: int) -> float:
        """Seconds from the end of `step` until a run of `total` steps is saved."""
        args = self.trainer.args
        every = (args.eval_steps if args.eval_strategy == "steps" else self.steps_per_epoch) or self.steps_per_epoch
        every = max(int(every), 1)
        between = max((total - 1) // every - step // every, 0)     # evaluations + checkpoints before the last step
        return ((total - step) * self.step_seconds() + between * (self.eval_cost() + self.save_cost())
                + self.final_cost())

    # -- planning ----------------------------------------------------------------------------------------
    def plan(self, state, now: float, announce: bool = False) -> None:
        step = state.global_step
        left = self.deadline - now
        low, high = step + 1, max(self.cap, step + 1)
        if self.cost(step, low) > left:
            total = low
        else:
            while low < high:                 # the largest total that fits (cost grows with total)
                mid = (low + high + 1) // 2
                if self.cost(step, mid) <= left:
                    low = mid
                else:
                    high = mid - 1
            total = low
        total = self._agree(total)
        if total != self.planned:
            self.planned = state.max_steps = total
            set_schedule_horizon(self.trainer, total)
        if announce and state.is_world_process_zero:
            epochs = total / self.steps_per_epoch
            self.log(f"time budget {self.budget:g} s: {self.step_seconds():.3f} s/step, evaluation ~{self.eval_cost():.1f} s, "
                     f"checkpoint ~{self.save_cost():.1f} s -> {total} steps ({epochs:.2f} epochs"
                     f"{', capped by --epochs/--max-steps' if total == self.cap else ''})")
            self._record(step, total, seconds_per_step=round(self.step_seconds(), 4))

    def _record(self, step: int, total: int, **extra) -> None:
        if self.run is not None:
            self.run.append_history({"step": step, "time_budget": self.budget, "time_budget_steps": total,
                                     "time_budget_epochs": round(total / self.steps_per_epoch, 4), **extra})

    def _agree(self, value: int, op=min) -> int:
        """`op` (min, max) of `value` over the processes of a distributed run: every rank stops at the same step."""
        acc = getattr(self.trainer, "accelerator", None)
        if acc is None or acc.num_processes <= 1:
            return value
        return int(op(acc.gather(torch.tensor([value], device=acc.device)).tolist()))

    # -- events ------------------------------------------------------------------------------------------
    def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
        self.train_begin = time.time()
        self.deadline = self.trainer.run_started + self.budget - self.trainer.seconds_before
        self.cap = state.max_steps
        self.parameters = sum(p.numel() for p in self.trainer.model.parameters())
        self.trainer.steps_before_budget = self.cap
        if train_dataloader is not None and hasattr(train_dataloader, "__len__"):
            self.steps_per_epoch = max(math.ceil(len(train_dataloader) / args.gradient_accumulation_steps), 1)
        resumed = self.trainer.resume_state.get("max_steps")
        if resumed and state.global_step < resumed <= self.cap:    # the interrupted run's plan until we measure
            self.planned = state.max_steps = int(resumed)
            set_schedule_horizon(self.trainer, self.planned)

    def on_step_end(self, args, state, control, **kwargs):
        now = time.time()
        if self.last_end is not None and not self.paused:
            self.step_times.append(now - self.last_end)
        self.last_end, self.paused = now, False
        measured = len(self.step_times)
        if control.should_training_stop:      # the last step (max_steps, early stopping): no new plan
            return
        if self.measured:
            self.plan(state, now)
        elif measured >= self.measure_steps or (measured >= 2 and now - self.train_begin >= 0.05 * self.budget):
            if self.time_evaluation():
                now = time.time()
                self.paused = True            # the next step's time does not include the timing
            self.plan(state, now, announce=True)
            self.measured = True
        if state.global_step >= state.max_steps:
            return
        if measured:
            late = now + self.step_seconds() + self.final_cost() - self.margin() > self.deadline
        else:       # the first step's time holds one-off costs: no estimate from it, only the budget's end
            late = now + self.save_cost() * 4 / 3 > self.deadline
        if self._agree(int(late), max):           # the safety net
            control.should_training_stop = True
            self.stopped_by_time = True
            if args.eval_strategy == "steps":
                control.should_evaluate = True
            if args.save_strategy == "steps":
                control.should_save = True
            if state.is_world_process_zero:
                self.log(f"time budget {self.budget:g} s: stopping at step {state.global_step} of {state.max_steps} "
                         f"to evaluate and save on time")

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        runtime = (metrics or {}).get("eval_runtime")
        if runtime is not None:
            self.eval_seconds = float(runtime)
        self.evaluated_at = time.time()
        self.paused = True

    def on_save(self, args, state, control, **kwargs):
        now = time.time()
        since = self.evaluated_at if self.evaluated_at is not None else self.last_end
        if since is not None:
            self.save_seconds = max(now - since, 0.0)
        self.evaluated_at = None
        self.paused = True
        if self.measured and state.global_step < state.max_steps and not control.should_training_stop:
            self.plan(state, now)               # with the measured evaluation and checkpoint costs

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self._record(state.global_step, state.global_step, stopped_by_time=self.stopped_by_time)


class WeightAveragingCallback(_TrainerCallback):
    """Stochastic weight averaging (``--weight-averaging FRACTION``; Izmailov et al. 2018) over the run's own
    schedule: the uniform average of the trainable weights after each optimizer step of the last `fraction`
    of ``state.max_steps`` (torch's SWA update), taken by the model at the last step — before that step's
    evaluation and checkpoint, so the final metrics, checkpoint and saved model are the average's. When a time
    budget moves ``max_steps`` later, the average keeps its steps unless it would then span more than `SLACK`
    times the new window (begun much too early: it starts again inside the new window), so the small revisions
    a time budget makes every step never throw it away; moved earlier, it averages the steps left. The average
    goes into every checkpoint (`STATE`, with the number of steps in it) and a resumed run continues it. The end
    is logged and recorded in history.jsonl (``weight_average_steps``, ``weight_average_from``)."""

    STATE = "weight_average.safetensors"
    SLACK = 1.5

    def __init__(self, fraction: float, *, run: RunDir | None = None, log: Callable[[str], None] = print):
        from torch.optim.swa_utils import get_swa_multi_avg_fn

        self.fraction, self.run, self.log = fraction, run, log
        self.update = get_swa_multi_avg_fn()
        self.average: list[torch.Tensor] | None = None
        self.count = 0           # steps in the average
        self.first = 0           # its first step

    @staticmethod
    def parameters(model) -> list[tuple[str, torch.Tensor]]:
        return [(n, p) for n, p in model.named_parameters() if p.requires_grad]

    def window_start(self, max_steps: int) -> int:
        """The last step before the averaged ones."""
        return max(math.floor(max_steps * (1.0 - self.fraction)), 0)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        step = state.global_step
        start = self.window_start(state.max_steps)
        if self.count and state.max_steps - self.first + 1 > self.SLACK * (state.max_steps - start):
            self.average, self.count = None, 0          # begun much too early for the new plan: begin again
        if step > start:
            params = [p.detach() for _, p in self.parameters(model)]
            if self.average is None:
                self.average = [p.to(torch.float32, copy=True) for p in params]
                self.first, self.count = step, 1
            else:
                self.update(self.average, [p.float() for p in params], self.count)
                self.count += 1
        if (step >= state.max_steps or control.should_training_stop) and self.count:
            self.apply(model, state)

    def apply(self, model, state) -> None:
        with torch.no_grad():
            for (_, p), avg in zip(self.parameters(model), self.average):
                p.copy_(avg)
        if state.is_world_process_zero:
            self.log(f"weight averaging: the model takes the mean of the weights of steps {self.first}-{state.global_step} "
                     f"({self.count} steps)")
            if self.run is not None:
                self.run.append_history({"step": state.global_step, "weight_average_steps": self.count,
                                         "weight_average_from": self.first})
        self.average, self.count = None, 0

    def save_state(self, directory: Path, model) -> None:
        """Write the average so far into a checkpoint being saved (nothing before the window)."""
        from safetensors.torch import save_file

        if self.count:
            names = [n for n, _ in self.parameters(model)]
            save_file({n: t.contiguous() for n, t in zip(names, self.average)}, str(Path(directory) / self.STATE),
                      metadata={"count": str(self.count), "first": str(self.first)})

    def load_state(self, checkpoint: str | None, model) -> None:
        """Continue the average a checkpoint holds (none: start afresh)."""
        from safetensors import safe_open

        self.average, self.count = None, 0
        path = Path(checkpoint) / self.STATE if checkpoint else None
        if path is None or not path.is_file():
            return
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            names = [n for n, _ in self.parameters(model)]
            if set(f.keys()) != set(names):
                raise EncoderlabError(f"{path}: its weight average does not match the model's parameters")
            self.average = [f.get_tensor(n).to(p.device) for n, p in self.parameters(model)]
        self.count, self.first = int(meta.get("count", 0)), int(meta.get("first", 0))


def set_schedule_horizon(trainer, total: int) -> None:
    """Make the trainer's learning-rate schedule end at step `total` (warm-up: ``warmup_ratio`` of it).

    Transformers' schedules are LambdaLRs over ``functools.partial`` lambdas with ``num_training_steps``
    (and ``num_warmup_steps``) keywords; those keywords are replaced and the current learning rate is
    recomputed. Schedules without a horizon (constant) are left as they are."""
    import functools

    scheduler = getattr(trainer, "lr_scheduler", None)
    inner = getattr(scheduler, "scheduler", scheduler)          # accelerate's AcceleratedScheduler wraps it
    lambdas = getattr(inner, "lr_lambdas", None)
    if not lambdas:
        return
    changed = False
    for i, fn in enumerate(lambdas):
        if isinstance(fn, functools.partial) and "num_training_steps" in fn.keywords:
            keywords = dict(fn.keywords, num_training_steps=total)
            if "num_warmup_steps" in keywords:
                keywords["num_warmup_steps"] = trainer.args.get_warmup_steps(total)
            lambdas[i] = functools.partial(fn.func, *fn.args, **keywords)
            changed = True
    if changed:
        lrs = [base * fn(inner.last_epoch) for base, fn in zip(inner.base_lrs, lambdas)]
        for group, lr in zip(inner.optimizer.param_groups, lrs):
            group["lr"] = lr
        inner._last_lr = lrs


_LAYER_INDEX = re.compile(r"(?:^|\.)(?:layer|layers)\.(\d+)\.")


def layer_depth(name: str, num_layers: int) -> int:
    """Depth of parameter `name` for layer-wise learning-rate decay: 0 for the embeddings, k + 1 for
    transformer layer k (BERT/RoBERTa/ELECTRA ``encoder.layer.k.``, DistilBERT ``transformer.layer.k.``),
    num_layers + 1 for everything above them (pooler, task head)."""
    match = _LAYER_INDEX.search(name)
    if match:
        return int(match.group(1)) + 1
    return 0 if "embeddings" in name else num_layers + 1


def layerwise_param_groups(model, *, lr: float, decay: float, weight_decay: float, decay_names: set[str]) -> list[dict]:
    """AdamW parameter groups with layer-wise learning-rate decay (Howard & Ruder 2018; Sun et al. 2019,
    "How to Fine-Tune BERT for Text Classification"): a parameter at depth d (`layer_depth`) of a model
    with L layers trains at lr × decay^(L + 1 - d). Weight decay applies to `decay_names` only, as in
    Trainer's own two groups. The learning-rate schedule scales every group's rate alike."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    indices = [int(m.group(1)) for n, _ in named if (m := _LAYER_INDEX.search(n))]
    num_layers = max(indices) + 1 if indices else 0
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in named:
        depth = layer_depth(name, num_layers)
        decayed = name in decay_names
        group = groups.setdefault((depth, decayed), {
            "params": [], "weight_decay": weight_decay if decayed else 0.0,
            "lr": lr * decay ** (num_layers + 1 - depth)})
        group["params"].append(param)
    # the head's groups first: Trainer logs the first group's rate as `learning_rate` (the peak rate, as without decay)
    return [groups[key] for key in sorted(groups, key=lambda k: (-k[0], k[1]))]


def format_log(step: int, max_steps: int, logs: dict) -> str:
    if any(k.startswith("eval_") for k in logs):
        hidden = ("_runtime", "_total", "_thresh", "missing", "extra_predictions", "similar", "incorrect")
        shown = {k[5:]: v for k, v in logs.items() if k.startswith("eval_") and not k.endswith(hidden)}
        body = " · ".join(f"{k} {_fmt(v)}" for k, v in shown.items())
        return f"eval @ step {step}: {body}"
    if "train_runtime" in logs:
        return (f"done: {logs.get('train_runtime', 0):.0f} s, {logs.get('train_samples_per_second', 0):.1f} "
                f"features/s, mean loss {logs.get('train_loss', float('nan')):.4f}")
    keys = [k for k in ("loss", "train_accuracy", "learning_rate", "grad_norm", "epoch") if k in logs]
    return f"step {step}/{max_steps}: " + " · ".join(f"{k} {_fmt(logs[k])}" for k in keys)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1e-2 and v != 0 else f"{v:.4g}"
    return str(v)


class StepEvaluator:
    """A task's evaluation, run at most once per optimizer step.

    `fn(trainer) -> (metrics, output)` predicts, post-processes and scores (the output — predictions,
    probabilities… — is kept as ``.output`` for the run's files). Trainer's evaluation hook and the
    final evaluation after training both call it; when the last scheduled evaluation ran at the final
    step, the final one reuses it. ``forget()`` forces a fresh one (the best checkpoint was reloaded).
    """

    def __init__(self, fn: Callable[[Any], tuple[dict, Any]]):
        self.fn = fn
        self.step: int | None = None
        self.metrics: dict = {}
        self.output: Any = None

    def __call__(self, trainer) -> dict:
        step = trainer.state.global_step
        if self.step != step:
            self.metrics, self.output = self.fn(trainer)
            self.step = step
        return self.metrics

    def forget(self) -> None:
        self.step = None


def fit(trainer, evaluator: StepEvaluator, checkpoint: str | None) -> tuple[Any, dict]:
    """Train (resuming from `checkpoint`), then evaluate the model the run keeps — the best checkpoint's
    when ``load_best_model_at_end`` reloaded it; (Trainer's train result, final metrics)."""
    result = trainer.train(resume_from_checkpoint=checkpoint)
    if trainer.args.load_best_model_at_end:
        evaluator.forget()
    return result, evaluator(trainer)


@dataclass
class Trained:
    """What `train_task` returns: the trainer, Trainer's train result, the final metrics, the final
    evaluation's output (predictions…) and what `before_training` returned."""
    trainer: Any
    result: Any
    final: dict
    output: Any
    initial: Any = None


def train_task(*, model, tokenizer, cfg: TrainConfig, run: RunDir, train_dataset, collator, evaluate,
               metric: str, greater_is_better: bool, callbacks, checkpoint: str | None,
               before_training: Callable[[Any, StepEvaluator], Any] | None = None, **trainer_options) -> Trained:
    """The training stage of every task: `evaluate` (trainer -> (metrics, output)) as a StepEvaluator, the
    engine's Trainer, `fit`, and the final evaluation's line of history.jsonl (main process). The caller
    saves the model (`save_model`, every rank) and writes its task's files. `trainer_options` go to
    `make_trainer` (the time budget's ``started`` / ``eval_input_ids`` / ``log``)."""
    evaluator = StepEvaluator(evaluate)
    trainer = make_trainer(model=model, tokenizer=tokenizer, cfg=cfg, run=run, train_dataset=train_dataset,
                           collator=collator, evaluator=evaluator, metric=metric,
                           greater_is_better=greater_is_better, callbacks=callbacks, **trainer_options)
    initial = before_training(trainer, evaluator) if before_training is not None else None
    result, final = fit(trainer, evaluator, checkpoint)
    if trainer.is_world_process_zero():
        record_final(run, trainer, final)
    return Trained(trainer, result, final, evaluator.output, initial)


def record_final(run: RunDir, trainer, final: dict) -> None:
    """The final evaluation's line of history.jsonl (``"final": true``; numbers only: labels, matrices and
    tables are in metrics.json)."""
    run.append_history({"step": trainer.state.global_step, "epoch": trainer.state.epoch, "final": True,
                        **{f"eval_{k}": v for k, v in final.items() if v is None or isinstance(v, (int, float))}})


RESUME_MODES = (False, True, "auto")


@contextmanager
def started_run(run: RunDir, cfg: TrainConfig, *, resume: bool | str, overwrite: bool, log: Callable[[str], None]):
    """Start `run` (the main process writes it; under torchrun / accelerate launch the other ranks do not)
    and yield the checkpoint to resume from (None: from the beginning); an error or Ctrl-C inside marks
    the run failed / interrupted and propagates.

    `resume`: False (a new run), True (continue from the newest complete checkpoint; refused when there is
    none) or "auto" (continue when there is one, else start from the beginning). Every option is checked
    before anything is written or deleted, so a refused ``overwrite`` leaves the old run as it was.
    """
    if resume not in RESUME_MODES:
        raise EncoderlabError(f"resume must be False, True or 'auto', not {resume!r}")
    if resume and overwrite:
        raise EncoderlabError("--resume and --overwrite exclude each other: resume the run in "
                              f"{run.path} or replace it, not both")
    training_arguments(cfg, run, metric=cfg.metric_for_best_model or "loss", greater_is_better=True,
                       has_eval=True)        # Transformers' checks of the option values, before any deletion
    main = is_main_process()
    checkpoint = find_checkpoint(run) if resume else None
    if resume is True and checkpoint is None:
        raise EncoderlabError(f"--resume: no complete checkpoint in {run.checkpoints_dir}; use --resume-or-start "
                              f"to start from the beginning when there is none")
    if (resume == "auto" and checkpoint is None and run.path.is_dir() and any(run.path.iterdir())
            and run.status in ("completed", "unknown")):
        # starting over replaces only a run of ours that did not finish; a finished run or foreign files stay
        raise EncoderlabError(f"--resume-or-start: {run.path} holds {'a finished run' if run.status == 'completed' else 'other files'} "
                              f"and no checkpoint; pass --overwrite to replace it, or choose another --output-dir")
    if main and resume:
        dropped = clean_checkpoints(run)
        if dropped:
            log(f"removed {len(dropped)} incomplete checkpoint(s) left by an interrupted save: {', '.join(dropped)}")
        step = checkpoint_step(checkpoint) if checkpoint else 0
        log(f"resuming from {checkpoint} (step {step})" if checkpoint else
            f"no complete checkpoint in {run.checkpoints_dir}: starting from the beginning")
    if main:
        from .tasks import task_of_config_class

        task = task_of_config_class(type(cfg))
        run.start(cfg.to_dict(), resume=bool(resume), overwrite=overwrite, task=task.name if task else None)
        if resume:   # the steps after the checkpoint are trained again: each step keeps one record
            step = checkpoint_step(checkpoint) if checkpoint else -1
            run.keep_history(lambda r: r.get("step", 0) <= step and not r.get("final") and "train_runtime" not in r)
    try:
        yield checkpoint
    except BaseException as exc:
        if main:
            run.fail(exc)
        raise


TMP_CHECKPOINT_PREFIX = ".tmp-"     # checkpoints/.tmp-checkpoint-N: being written; renamed when complete
RESUME_STATE = "encoderlab_state.json"
_CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_step(checkpoint: str | Path) -> int:
    return int(_CHECKPOINT_NAME.match(Path(checkpoint).name).group(1))


def is_complete_checkpoint(path: Path) -> bool:
    """A checkpoint Trainer can resume from: its trainer state (written last) and weights are there."""
    return (path / "trainer_state.json").is_file() and any(path.glob("*.safetensors"))


def find_checkpoint(run: RunDir) -> str | None:
    """The newest complete `checkpoints/checkpoint-N` (temporary and incomplete ones are ignored)."""
    if not run.checkpoints_dir.is_dir():
        return None
    complete = [p for p in run.checkpoints_dir.iterdir()
                if _CHECKPOINT_NAME.match(p.name) and p.is_dir() and is_complete_checkpoint(p)]
    return str(max(complete, key=checkpoint_step)) if complete else None


def clean_checkpoints(run: RunDir) -> list[str]:
    """Remove what killed saves left: temporary checkpoint directories and incomplete checkpoints."""
    import shutil

    if not run.checkpoints_dir.is_dir():
        return []
    dropped = []
    for p in sorted(run.checkpoints_dir.iterdir()):
        if p.is_dir() and (p.name.startswith(TMP_CHECKPOINT_PREFIX)
                           or (_CHECKPOINT_NAME.match(p.name) and not is_complete_checkpoint(p))):
            shutil.rmtree(p, ignore_errors=True)
            dropped.append(p.name)
    return dropped


def read_resume_state(checkpoint: str | None) -> dict:
    """encoderlab's own state in a checkpoint ({"step", "loss_sum"}); {} when absent."""
    import json

    if not checkpoint:
        return {}
    try:
        return json.loads((Path(checkpoint) / RESUME_STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def save_checkpoint_atomically(trainer) -> None:
    """What Trainer._save_checkpoint does (weights, optimizer, scheduler, scaler, RNG and trainer state,
    best-checkpoint tracking, rotation under save_total_limit), but written to
    ``checkpoints/.tmp-checkpoint-N`` and renamed to ``checkpoint-N`` only when complete: a crash or a full
    disk in the middle of a save never leaves a checkpoint that looks valid. A full disk is reported in one
    line, and the previous checkpoint stays intact."""
    import shutil

    from transformers.trainer_callback import ExportableState
    from transformers.trainer_pt_utils import nested_gather
    from transformers.trainer import TRAINER_STATE_NAME
    from transformers.trainer_utils import rotate_checkpoints

    from .runs import atomic_replace_dir, atomic_write_json

    args, state = trainer.args, trainer.state
    step = state.global_step
    root = Path(args.output_dir)
    final = root / f"checkpoint-{step}"
    tmp = root / f"{TMP_CHECKPOINT_PREFIX}{final.name}"
    # every per-step loss so far: previous invocations + logged + not yet logged (the mean over processes)
    loss_sum = (trainer.loss_before + trainer._total_loss_scalar
                + nested_gather(trainer._tr_loss, args.parallel_mode).mean().item())
    trainer.store_flos()
    if args.should_save:
        shutil.rmtree(tmp, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    try:
        trainer.save_model(str(tmp), _internal_call=True)
        if args.should_save:
            for cb in trainer.callback_handler.callbacks:
                if hasattr(cb, "save_state"):
                    cb.save_state(tmp, trainer.model)
        _test_fault_in_save(step)
        if state.best_global_step:
            best = root / f"checkpoint-{state.best_global_step}"
            if state.best_global_step == step or best.is_dir():
                state.best_model_checkpoint = str(best)
        if not args.save_only_model:
            trainer._save_optimizer_and_scheduler(str(tmp))
            trainer._save_scaler(str(tmp))
            trainer._save_rng_state(str(tmp))
        if args.should_save:
            for cb in [c for c in trainer.callback_handler.callbacks + [trainer.control] if isinstance(c, ExportableState)]:
                name = cb.__class__.__name__
                if isinstance(state.stateful_callbacks.get(name), list):
                    state.stateful_callbacks[name].append(cb.state())
                else:
                    state.stateful_callbacks[name] = cb.state()
            state.save_to_json(str(tmp / TRAINER_STATE_NAME))
            atomic_write_json(tmp / RESUME_STATE, {"step": step, "loss_sum": loss_sum, "max_steps": state.max_steps,
                                                   "seconds": trainer.seconds_before + time.time() - trainer.run_started})
    except Exception as exc:
        full = is_disk_full(exc, root)
        if args.should_save:
            shutil.rmtree(tmp, ignore_errors=True)
        if not full:
            raise
        previous = find_checkpoint(RunDir(root.parent)) if root.name == "checkpoints" else None
        raise EncoderlabError(
            f"disk full while writing checkpoint {final} (no space left on device); "
            + (f"the previous checkpoint {previous} is intact: free some space and rerun with --resume"
               if previous else "no earlier checkpoint: free some space and run again")) from exc
    trainer.accelerator.wait_for_everyone()
    if args.should_save:
        atomic_replace_dir(tmp, final)
        rotate_checkpoints(output_dir=str(root), save_total_limit=args.save_total_limit,
                           best_model_checkpoint=state.best_model_checkpoint, use_mtime=True)


def is_disk_full(exc: BaseException, path: Path) -> bool:
    """ENOSPC / EDQUOT, or a writer (safetensors, torch.save) that failed on a disk with no space left."""
    import errno
    import shutil

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if "No space left" in str(exc) or "os error 28" in str(exc) or "StorageFull" in str(exc):
        return True
    try:
        return shutil.disk_usage(path).free < 16 * 2**20
    except OSError:
        return False


def _test_fault_in_save(step: int) -> None:
    """Test-only fault injection (tests/test_resume.py): ENCODERLAB_TEST_FAULT_IN_SAVE=kill@N kills the
    process with SIGKILL, enospc@N raises ENOSPC, midway through writing checkpoint N (weights written,
    optimizer and trainer state not)."""
    import os

    spec = os.environ.get("ENCODERLAB_TEST_FAULT_IN_SAVE")
    if not spec or spec.partition("@")[2] != str(step):
        return
    import errno
    import signal

    if spec.startswith("kill@"):
        os.kill(os.getpid(), signal.SIGKILL)
    if spec.startswith("enospc@"):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def save_model(trainer, run: RunDir, card: str) -> Path | None:
    """safetensors weights + config + tokenizer + model card, moved into RUN/model in one rename.

    Call it on every process: Trainer.save_model gathers sharded weights (FSDP, DeepSpeed) and writes
    on the main process only. Returns the model directory on the main process, None elsewhere.
    """
    import shutil

    from .runs import atomic_replace_dir

    tmp = run.path / ".model.tmp"
    if trainer.is_world_process_zero():
        shutil.rmtree(tmp, ignore_errors=True)
    trainer.save_model(str(tmp))
    if not trainer.is_world_process_zero():
        return None
    (tmp / "training_args.bin").unlink(missing_ok=True)   # a pickle; RUN/config.yaml holds the settings
    (tmp / "README.md").write_text(card, encoding="utf-8")
    atomic_replace_dir(tmp, run.model_dir)
    return run.model_dir


def features_per_second(n_features: int, epochs: float, seconds: float) -> float:
    return n_features * epochs / seconds if seconds > 0 else math.nan


def epochs_done(checkpoint: str | None) -> float:
    """Epochs already done in the checkpoint a resumed run starts from (0 for a fresh run)."""
    if not checkpoint:
        return 0.0
    import json

    try:
        return float(json.loads((Path(checkpoint) / "trainer_state.json").read_text())["epoch"] or 0.0)
    except (OSError, KeyError, ValueError):
        return 0.0


def train_summary(trainer, result, *, checkpoint: str | None, items: int, unit: str, t_start: float) -> dict:
    """The metrics.json fields every task shares: train loss and time, `train_<unit>_per_second` over the
    `items` trained on per epoch (only the epochs of this invocation, when resumed), steps, wall time."""
    seconds = result.metrics.get("train_runtime", 0.0)
    epochs = (trainer.state.epoch or 0.0) - epochs_done(checkpoint)
    return {"train_loss": result.metrics.get("train_loss"), "train_runtime": seconds,
            f"train_{unit}_per_second": features_per_second(items, epochs, seconds),
            "global_step": trainer.state.global_step, "wall_seconds": round(time.time() - t_start, 1)}
