"""Held-out evaluation of a masked-LM: mean masked-token loss, perplexity and (for mlm+nsp) NSP accuracy.

The evaluation masks are drawn once, with a fixed seed, when the evaluator is built: every
evaluation of a run scores the same masked positions, so perplexities are comparable across epochs
(and across runs with the same seed, corpus and tokenizer).
"""
from __future__ import annotations

import math
import time
from typing import Any

import torch

from ..errors import EncoderlabError
from ..training import forward_batches
from .features import MaskingCollator, PretrainFeatures

# math.exp overflows just above 709.78; a mean token loss that large means a diverged model.
MAX_EXP_ARGUMENT = 709.0


def perplexity(loss: float | None) -> float:
    """exp(mean token loss), guarded: inf for a loss too large to exponentiate, nan for no loss."""
    if loss is None or math.isnan(loss):
        return math.nan
    if loss > MAX_EXP_ARGUMENT:
        return math.inf
    return math.exp(loss)


class MaskedLMEvaluator:
    """Scores a model on fixed masks of held-out features.

    Perplexity is exp of the mean cross-entropy over *masked tokens* (every masked token weighs the
    same, whatever its batch), computed from the MLM logits only: with ``mlm+nsp`` the NSP loss is
    reported separately as ``nsp_loss`` / ``nsp_accuracy``.
    """

    def __init__(self, features: PretrainFeatures, tokenizer, *, mlm_probability: float = 0.15,
                 whole_word_mask: bool = False, seed: int = 42, batch_size: int = 32):
        if len(features) == 0:
            raise ValueError("no evaluation features")
        collator = MaskingCollator(tokenizer, mlm_probability=mlm_probability, whole_word_mask=whole_word_mask,
                                   seed=seed)
        columns = features.columns
        n = len(features)
        self.batches: list[dict[str, torch.Tensor]] = []
        for start in range(0, n, batch_size):
            rows = [{k: columns[k][i] for k in columns} for i in range(start, min(n, start + batch_size))]
            self.batches.append(collator(rows))
        self.features = n
        self.tokens = features.tokens
        self.masked_tokens = int(sum(int((b["labels"] != -100).sum()) for b in self.batches))
        self.has_nsp = "next_sentence_label" in columns
        if self.masked_tokens == 0:
            raise EncoderlabError(f"the held-out text ({features.tokens} tokens) got no masked token: "
                                  f"hold out more text (--eval-fraction, --eval-corpus)")

    def __call__(self, model, *, precision: str = "fp32", accelerator=None, show_progress: bool = True) -> dict[str, Any]:
        device = next(model.parameters()).device
        batches = self.batches
        if accelerator is not None and accelerator.num_processes > 1:
            batches = batches[accelerator.process_index::accelerator.num_processes]
        loss_sum, count, nsp_sum, nsp_correct, pairs = 0.0, 0, 0.0, 0, 0
        start = time.time()
        for batch, out in forward_batches(model, batches, device=device, precision=precision, desc="perplexity",
                                          show_progress=show_progress, total=len(batches),
                                          targets=("labels", "next_sentence_label")):
            labels, nsp_labels = batch["labels"], batch.get("next_sentence_label")
            logits = out.logits if getattr(out, "logits", None) is not None else out.prediction_logits
            mask = labels != -100
            if mask.any():
                loss_sum += float(torch.nn.functional.cross_entropy(logits[mask].float(), labels[mask],
                                                                    reduction="sum"))
                count += int(mask.sum())
            if nsp_labels is not None and getattr(out, "seq_relationship_logits", None) is not None:
                nsp_logits = out.seq_relationship_logits.float()
                nsp_sum += float(torch.nn.functional.cross_entropy(nsp_logits, nsp_labels, reduction="sum"))
                nsp_correct += int((nsp_logits.argmax(-1) == nsp_labels).sum())
                pairs += len(nsp_labels)
        if accelerator is not None and accelerator.num_processes > 1:
            from accelerate.utils import gather_object

            parts = gather_object([(loss_sum, count, nsp_sum, nsp_correct, pairs)])
            loss_sum, count, nsp_sum, nsp_correct, pairs = (sum(p[i] for p in parts) for i in range(5))
        seconds = time.time() - start
        loss = loss_sum / count if count else math.nan
        metrics: dict[str, Any] = {"loss": loss, "perplexity": perplexity(loss), "masked_tokens": count}
        if pairs:
            metrics.update(nsp_loss=nsp_sum / pairs, nsp_accuracy=nsp_correct / pairs)
        metrics["tokens_per_second"] = self.tokens / seconds if seconds > 0 else math.nan
        return metrics


def evaluate_model(model: str, data: str, *, max_seq_length: int | None = None, mlm_probability: float = 0.15,
                   whole_word_mask: bool = False, seed: int = 42, batch_size: int = 32, text_field: str = "text",
                   limit: int | None = None) -> dict[str, Any]:
    """Held-out perplexity (and NSP accuracy for an mlm+nsp model) of a saved model on a corpus spec
    (see encoderlab.mlm.corpus), with the same fixed-mask evaluator as training."""
    from ..models import load_model
    from ..training import resolve_precision
    from .corpus import load_corpus
    from .features import build_features

    probe = load_model(model, "mlm")
    info = getattr(probe.model.config, "encoderlab", None) or {}
    objective = info.get("objective", "mlm")
    resolved = probe if objective == "mlm" else load_model(model, objective)
    length = max_seq_length or int(info.get("max_seq_length", 128))
    corpus = load_corpus(data, text_field=text_field, limit=limit)
    feats = build_features(corpus.documents, resolved.tokenizer, objective=objective, max_seq_length=length,
                           seed=seed + 1, show_progress=False)
    if len(feats) == 0:
        raise EncoderlabError(f"{data}: no text to evaluate on")
    evaluator = MaskedLMEvaluator(feats, resolved.tokenizer, mlm_probability=mlm_probability,
                                  whole_word_mask=whole_word_mask, seed=seed, batch_size=batch_size)
    metrics = evaluator(resolved.model, precision=resolve_precision("fp32"), show_progress=False)
    return {**metrics, "total": len(feats)}


def fill_mask(model: str, inputs: list[str], *, top_k: int = 5) -> list[list[dict[str, Any]]]:
    """The top-k tokens for the first mask token of each text: ``[[{token, score}, ...], ...]``."""
    from ..models import load_model

    resolved = load_model(model, "mlm")
    tok, net = resolved.tokenizer, resolved.model.eval()
    results = []
    for i, text in enumerate(inputs):
        if tok.mask_token not in text:
            raise EncoderlabError(f"text {i + 1} has no {tok.mask_token} token to fill")
        enc = tok(text, return_tensors="pt", truncation=True)
        with torch.inference_mode():
            logits = net(**enc).logits[0]
        position = int((enc["input_ids"][0] == tok.mask_token_id).nonzero()[0, 0])
        probs = torch.softmax(logits[position].float(), -1)
        scores, ids = probs.topk(top_k)
        results.append([{"token": tok.convert_ids_to_tokens(int(t)), "score": round(float(s), 6)}
                        for s, t in zip(scores, ids)])
    return results


def tiny_example(directory):
    """Tiny data for smoke tests of the mlm task (see encoderlab.tasks.TaskExample)."""
    from pathlib import Path

    from ..tasks import TaskExample

    directory = Path(directory)
    words = "the cat sat on the mat while the dog ran in the park and the bird sang a song".split()
    docs = ["\n".join(" ".join(words[(d + j) % len(words):] + words[:(d + j) % len(words)]) + "."
                      for j in range(3)) for d in range(12)]
    (directory / "corpus.txt").write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    (directory / "held.txt").write_text("\n\n".join(docs[:4]) + "\n", encoding="utf-8")
    return TaskExample(config={"corpus": str(directory / "corpus.txt"), "eval_corpus": str(directory / "held.txt"),
                               "max_seq_length": 32, "eval_before_training": False},
                       evaluate_data=str(directory / "held.txt"), predict_inputs=["the cat sat on the [MASK]."])
