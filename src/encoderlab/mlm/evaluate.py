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
        autocast = (torch.autocast(device_type=device.type, dtype=torch.bfloat16) if precision == "bf16" else
                    torch.autocast(device_type=device.type, dtype=torch.float16) if precision == "fp16" else None)
        loss_sum, count, nsp_sum, nsp_correct, pairs = 0.0, 0, 0.0, 0, 0
        was_training = model.training
        model.eval()
        start = time.time()
        iterator = batches
        if show_progress:
            from tqdm.auto import tqdm

            iterator = tqdm(batches, desc="perplexity", leave=False, unit="batch")
        with torch.inference_mode():
            for batch in iterator:
                batch = {k: v.to(device) for k, v in batch.items()}
                labels = batch.pop("labels")
                nsp_labels = batch.pop("next_sentence_label", None)
                if autocast is not None:
                    with autocast:
                        out = model(**batch)
                else:
                    out = model(**batch)
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
        if was_training:
            model.train()
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
