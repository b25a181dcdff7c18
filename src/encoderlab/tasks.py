"""The task registry: one `Task` record per task package (qa, classify, mlm), tasks as data.

Everything that differs between tasks and is needed outside the task's own package lives here:
the config dataclass, the metrics (name, direction, scale, label), the headline metric, the
train / evaluate / predict entry points, the Transformers auto class of each head, the report
columns and plotted metrics, whether and how the task is served and exported to ONNX. Sweeps,
reports, plots, the HTML report, serving, export, inspect and the model loader read this table;
none of them keeps its own per-task table or if-chain on task names.

Entry points are ``"module:attribute"`` strings resolved on use, so importing this module is cheap
(no torch, no transformers).

Adding a task: write its package (config dataclass deriving from `config.TrainConfig`, a train
function ``train(cfg, *, resume, overwrite, log, callbacks) -> metrics``, evaluate / predict
functions), then add one `Task` to `TASKS`. Nothing else has to change.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from .errors import EncoderlabError


@dataclass(frozen=True)
class Metric:
    """A metric a task reports: an evaluation metric (key of RUN/metrics.json; ``eval_<name>`` in the
    evaluation records of history.jsonl) or, with ``training=True``, a metric of the training batches
    (``<name>`` in the training-step records of history.jsonl, one value per logging window)."""
    name: str
    higher_is_better: bool | None      # None: a count with no better direction (e.g. "similar")
    scale: float | None                # 1 (a fraction), 100 (a percentage) or None (unbounded: loss, perplexity)
    label: str                         # axis / column label
    log_axis: bool = False             # plot on a log axis (perplexity spans orders of magnitude)
    training: bool = False             # measured on the training batches: not for early stopping or sweeps

    @property
    def history_key(self) -> str:
        """Its field in history.jsonl: ``eval_<name>`` (evaluation records) or ``<name>`` (training steps)."""
        return self.name if self.training else f"eval_{self.name}"

    @property
    def goal(self) -> str | None:
        """The sweep goal: maximize / minimize (None for a metric without a direction)."""
        if self.higher_is_better is None:
            return None
        return "maximize" if self.higher_is_better else "minimize"

    @property
    def axis_label(self) -> str:
        return f"{self.label} (%)" if self.scale == 100 else self.label


EVAL_LOSS = Metric("loss", False, None, "eval loss")


@dataclass(frozen=True)
class Task:
    """Everything encoderlab needs to know about one task outside its package."""
    name: str
    title: str
    config: str                             # "module:Class" of its config dataclass
    train: str                              # "module:function" (cfg, *, resume, overwrite, log, callbacks) -> metrics
    evaluate: str                           # "module:function" (model, data, **kw) -> metrics dict
    predict: str                            # "module:function" (model, inputs, **kw) -> list of predictions
    heads: tuple[tuple[str, str], ...]      # (head name, Transformers auto class); the first is the task's default
    metrics: tuple[Metric, ...]             # every metric of its metrics.json the rest of encoderlab reads
    headline: str                           # the metric summarizing a run
    report_columns: tuple[str, ...]         # metrics shown in comparison tables (HTML report, sweep report)
    plots: tuple[str, ...]                  # metrics drawn per evaluation
    serve: str | None = None                # "module:Class" of its serving service (None: not servable)
    serve_route: str | None = None          # the HTTP route it is served on
    serve_info: tuple[str, ...] = ()        # ModelInfo fields shown for its models in GET /v1/models
    onnx_outputs: tuple[str, ...] | None = None   # model outputs of its ONNX graph (None: not exportable)
    eval_option: str = "eval"               # its config option naming held-out data (else validation_fraction)
    labelled: bool = False                  # its head has one output per label (the config's num_labels)
    onnx_text_pairs: bool = False           # the verification sample is (question, context) pairs
    inference_settings: tuple[str, ...] = ()      # keys of model.config.encoderlab saved with its models
    inference_defaults: tuple[tuple[str, Any], ...] = ()   # ModelInfo values of a model that recorded none
    defaults_fit_positions: bool = False    # the default max_seq_length is at most the model's positions
    aliases: tuple[str, ...] = ()           # older names (read from old runs and models)
    example: str | None = None              # "module:function" (directory) -> TaskExample: tiny data for tests/demos
    description: str = ""                   # what `encoderlab train <name>` does (its --help text)
    summary: str | None = None              # "module:function" (metrics) -> text printed after the final metrics
    verbs: tuple[str, ...] = ()             # top-level command aliases of `train <name>` (e.g. `pretrain`)
    compare: str | None = None              # "module:function" (model_a, model_b, data, **options) -> comparison
    compare_markdown: str | None = None     # "module:function" (comparison) -> Markdown
    compare_view: str | None = None         # "module:function" (comparison) -> analysis.comparison.ComparisonView

    # -- entry points ---------------------------------------------------------------------------
    def config_cls(self) -> type:
        return resolve(self.config, self.name)

    def train_fn(self):
        return resolve(self.train, self.name)

    def evaluate_fn(self):
        return resolve(self.evaluate, self.name)

    def predict_fn(self):
        return resolve(self.predict, self.name)

    def service_cls(self):
        if self.serve is None:
            raise EncoderlabError(f"{self.title} models cannot be served (servable: "
                                  f"{', '.join(t.name for t in TASKS.values() if t.servable)})")
        return resolve(self.serve, self.name)

    @property
    def servable(self) -> bool:
        return self.serve is not None

    @property
    def exportable(self) -> bool:
        return self.onnx_outputs is not None

    # -- models ---------------------------------------------------------------------------------
    @property
    def auto_model(self) -> str:
        return self.heads[0][1]

    @property
    def architecture_suffixes(self) -> tuple[str, ...]:
        """``ForQuestionAnswering``…: the end of the architecture names of its heads' models."""
        return tuple(auto[len("AutoModel"):] for _, auto in self.heads)

    # -- metrics --------------------------------------------------------------------------------
    def metric(self, name: str) -> Metric:
        for m in self.metrics:
            if m.name == name:
                return m
        raise EncoderlabError(f"unknown metric '{name}' for {self.title} "
                              f"(known: {', '.join(m.name for m in self.metrics)})")

    @property
    def headline_metric(self) -> Metric:
        return self.metric(self.headline)

    def optimizable(self) -> tuple[Metric, ...]:
        """Evaluation metrics with a direction: what early stopping and sweeps can optimize."""
        return tuple(m for m in self.metrics if m.higher_is_better is not None and not m.training)


@dataclass
class TaskExample:
    """Tiny data for a task (tests, smoke checks): config values, evaluate / predict arguments."""
    config: dict[str, Any]                  # values for the task's config (data specs, limits)
    evaluate_data: str                      # `data` argument of the task's evaluate function
    predict_inputs: Any                     # `inputs` argument of the task's predict function
    evaluate_kwargs: dict[str, Any] = field(default_factory=dict)
    serve_request: dict[str, Any] | None = None   # a JSON body for the task's serve route


def resolve(ref: str, task: str = "") -> Any:
    """Import ``"module:attribute"``; a task package missing from this installation is a one-line error."""
    module, _, attr = ref.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except ImportError as exc:
        raise EncoderlabError(f"task '{task}' is not available in this installation ({exc})") from exc


DEFAULT_TASK = "qa"        # what a sweep file without ``task:`` sweeps
_PCT = 100
TASKS: dict[str, Task] = {
    "qa": Task(
        name="qa", title="QA",
        config="encoderlab.qa.config:QATrainConfig", train="encoderlab.qa.train:train_qa",
        evaluate="encoderlab.qa.evaluate:evaluate", predict="encoderlab.qa.predict:predict_questions",
        heads=(("qa", "AutoModelForQuestionAnswering"),),
        metrics=(Metric("exact", True, _PCT, "EM"), Metric("f1", True, _PCT, "F1"), EVAL_LOSS,
                 Metric("correct", True, None, "correct"), Metric("similar", None, None, "similar"),
                 Metric("incorrect", False, None, "incorrect"), Metric("modified_exact", True, _PCT, "modified EM"),
                 Metric("HasAns_f1", True, _PCT, "HasAns F1"), Metric("NoAns_exact", True, _PCT, "NoAns EM"),
                 # share of evaluation windows whose argmax start (end) logit is the labelled token (CLS: no answer)
                 Metric("start_accuracy", True, 1, "start accuracy"), Metric("end_accuracy", True, 1, "end accuracy"),
                 # text-overlap metrics (metrics/overlap.py), present only when asked for (--metrics)
                 Metric("bleu", True, _PCT, "BLEU"), Metric("rouge1", True, _PCT, "ROUGE-1"),
                 Metric("rouge2", True, _PCT, "ROUGE-2"), Metric("rougeL", True, _PCT, "ROUGE-L"),
                 Metric("meteor", True, _PCT, "METEOR"),
                 Metric("meteor_no_synonyms", True, _PCT, "METEOR (no synonyms)")),
        headline="f1",
        report_columns=("exact", "f1", "modified_exact", "correct", "similar", "incorrect", "start_accuracy",
                        "end_accuracy", "bleu", "rouge1", "rouge2", "rougeL", "meteor", "meteor_no_synonyms"),
        plots=("exact", "f1", "start_accuracy", "end_accuracy"),
        serve="encoderlab.serve.qa:QAService", serve_route="/v1/answer", serve_info=("squad_version",),
        onnx_outputs=("start_logits", "end_logits"), onnx_text_pairs=True,
        inference_settings=("squad_version", "null_threshold", "max_seq_length", "doc_stride", "max_query_length"),
        inference_defaults=(("max_seq_length", 384), ("doc_stride", 128), ("max_query_length", 64),
                            ("squad_version", "1.1"), ("null_threshold", 0.0), ("n_best_size", 20),
                            ("max_answer_length", 30)),
        example="encoderlab.qa.predict:tiny_example",
        compare="encoderlab.analysis.compare:compare_models",
        compare_markdown="encoderlab.analysis.compare:comparison_markdown",
        compare_view="encoderlab.analysis.comparison:qa_view",
        description="Fine-tune an encoder for extractive QA (SQuAD v1.1 / v2.0) and write a run directory.\n\n"
                    "Example: encoderlab train qa --train ../shared/data/squad-v1.1/dev-v1.1.json "
                    "--split-file ../shared/data/squad-v1.1/split.json --train-split train --eval-split test",
    ),
    "classify": Task(
        name="classify", title="classification",
        config="encoderlab.classify.config:ClassifyTrainConfig", train="encoderlab.classify.train:train_classify",
        evaluate="encoderlab.classify.predict:evaluate_model", predict="encoderlab.classify.predict:predict_texts",
        heads=(("classify", "AutoModelForSequenceClassification"),),
        metrics=(Metric("accuracy", True, 1, "accuracy"), Metric("f1", True, 1, "F1"),
                 Metric("f1_macro", True, 1, "macro F1"), Metric("mcc", True, 1, "MCC"), EVAL_LOSS,
                 Metric("precision", True, 1, "precision"), Metric("recall", True, 1, "recall"),
                 Metric("precision_macro", True, 1, "macro precision"),
                 Metric("recall_macro", True, 1, "macro recall"),
                 # accuracy on the training batches of each logging window (history.jsonl only)
                 Metric("train_accuracy", True, 1, "training accuracy", training=True)),
        headline="accuracy",
        report_columns=("accuracy", "f1", "f1_macro", "mcc"),
        plots=("accuracy", "f1", "train_accuracy"),
        serve="encoderlab.serve.classify:ClassifyService", serve_route="/v1/classify", serve_info=("labels",),
        onnx_outputs=("logits",), labelled=True,
        inference_settings=("max_seq_length", "truncation", "head_tokens", "text_column", "text_pair_column"),
        inference_defaults=(("max_seq_length", 128), ("truncation", "head")), defaults_fit_positions=True,
        example="encoderlab.classify.predict:tiny_example",
        compare="encoderlab.analysis.compare_classify:compare_classifiers",
        compare_markdown="encoderlab.analysis.compare_classify:classifier_comparison_markdown",
        compare_view="encoderlab.analysis.comparison:classify_view",
        description="Fine-tune an encoder for text classification and write a run directory.\n\n"
                    "Example: encoderlab train classify --train ../shared/data/sst2/train.tsv "
                    "--eval ../shared/data/sst2/dev.tsv --epochs 1 --eval-steps 500",
        summary="encoderlab.metrics.classification:format_report",
    ),
    "mlm": Task(
        name="mlm", title="masked-LM",
        config="encoderlab.mlm.config:PretrainConfig", train="encoderlab.mlm.train:pretrain",
        evaluate="encoderlab.mlm.evaluate:evaluate_model", predict="encoderlab.mlm.evaluate:fill_mask",
        heads=(("mlm", "AutoModelForMaskedLM"), ("mlm+nsp", "AutoModelForPreTraining")),   # BERT: MLM + NSP heads
        metrics=(Metric("perplexity", False, None, "perplexity", log_axis=True), EVAL_LOSS,
                 Metric("nsp_accuracy", True, 1, "NSP accuracy"), Metric("nsp_loss", False, None, "NSP loss")),
        headline="perplexity",
        report_columns=("perplexity", "nsp_accuracy"),
        plots=("perplexity", "nsp_accuracy"),
        eval_option="eval_corpus", inference_settings=("objective", "corpus"),
        aliases=("pretraining",),
        example="encoderlab.mlm.evaluate:tiny_example",
        description="Pretrain an encoder with masked-LM (optionally + next-sentence prediction); perplexity on "
                    "held-out text.\n\nDefault model: scratch:bert-mini. Continued pretraining (domain adaptation): "
                    "encoderlab train mlm --model builtin:minilm-l6 --corpus ../shared/data/imdb/unsup.jsonl.gz "
                    "--limit 2000 --epochs 1 -o runs/minilm-imdb, then: encoderlab train classify --model "
                    "runs/minilm-imdb/model ...",
        summary="encoderlab.mlm.train:summary",
        verbs=("pretrain",),
    ),
}


def task_names() -> list[str]:
    return list(TASKS)


def get_task(name: str) -> Task:
    """The task registered as `name` (or under an older alias such as ``pretraining``)."""
    if isinstance(name, Task):
        return name
    if name in TASKS:
        return TASKS[name]
    for task in TASKS.values():
        if name in task.aliases:
            return task
    raise EncoderlabError(f"unknown task '{name}' (known: {', '.join(TASKS)})")


def find_task(name: Any) -> Task | None:
    """`get_task`, or None for anything that names no task."""
    try:
        return get_task(name) if isinstance(name, str) else None
    except EncoderlabError:
        return None


def heads() -> dict[str, str]:
    """{head name: Transformers auto class} over every task (``qa``, ``classify``, ``mlm``, ``mlm+nsp``)."""
    return {head: auto for task in TASKS.values() for head, auto in task.heads}


def head_of_task_name(name: str) -> str:
    """A head name from a task name or alias: ``pretraining`` (the old name of mlm+nsp models) -> ``mlm+nsp``."""
    if name in heads():
        return name
    task = get_task(name)
    if name in task.aliases and len(task.heads) > 1:
        return task.heads[1][0]
    return task.heads[0][0]


def head_of_architecture(architecture: str) -> tuple[Task, str] | None:
    """(task, head) of a saved model's architecture name (``BertForQuestionAnswering`` -> qa)."""
    for task in TASKS.values():
        for head, auto in task.heads:
            if architecture.endswith(auto[len("AutoModel"):]):
                return task, head
    return None


def task_of_config_class(cls: type) -> Task | None:
    """The task whose config dataclass is `cls` (or a parent of it)."""
    for klass in getattr(cls, "__mro__", (cls,)):
        ref = f"{klass.__module__}:{klass.__qualname__}"
        for task in TASKS.values():
            if task.config == ref:
                return task
    return None


def task_of_metrics(keys) -> Task | None:
    """The task whose own metric names (a name no other task has) appear among `keys`
    (metrics.json keys or history fields, with or without ``eval_``)."""
    names = {k[5:] if str(k).startswith("eval_") else str(k) for k in keys}
    owners: dict[str, list[str]] = {}
    for task in TASKS.values():
        for m in task.metrics:
            owners.setdefault(m.name, []).append(task.name)
    for task in TASKS.values():
        if any(owners[m.name] == [task.name] and m.name in names for m in task.metrics):
            return task
    return None
