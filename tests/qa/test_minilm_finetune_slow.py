"""Real model, real data: fine-tuning builtin:minilm-l6 on the bundled sample must learn QA.

Trains on the 1,457 questions of the bundled sample's training articles (SQuAD v1.1 dev, `train`
half) for one epoch (198 steps of 8) and scores all 227 questions of its held-out articles (`test` half).
About 4.5 minutes on a 2-core AMD EPYC without bf16 (fp32) with both cores, 6.1 minutes on one pytest-xdist
worker (one thread) in `make test`; less where bf16 is fast.

Floors: honest runs of this configuration reached EM 9.25 / F1 18.25 with start / end token accuracy
0.109 / 0.085 (2-core AMD EPYC, fp32, seed 42, 2026-12-01), and EM 7.5 / F1 17.1 and EM 5.0 / F1 14.3
in earlier one-epoch calibrations; the base model's untrained head scores EM 0.65 / F1 7.3, and a token
accuracy near chance (one position in a window of ~150 tokens). The floors sit below every honest figure
and above the untrained head, so a broken pipeline (labels, features, optimizer, postprocessing) fails.
Two epochs (about twice the time) reach EM 17.5 / F1 34.7.
"""
from __future__ import annotations

import pytest

from encoderlab.qa.train import QATrainConfig, train_qa

FLOOR_EXACT = 3.5
FLOOR_F1 = 11.0
FLOOR_TOKEN_ACCURACY = 0.04


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_minilm_learns_squad_on_the_bundled_sample(tmp_path):
    cfg = QATrainConfig(model="builtin:minilm-l6", output_dir=str(tmp_path / "run"), train="builtin:squad-sample",
                        train_split="train", eval_split="test", num_train_epochs=1,
                        learning_rate=4e-4, train_batch_size=8, max_seq_length=256, doc_stride=64,
                        logging_steps=20, seed=42)
    metrics = train_qa(cfg, log=print)
    print({k: metrics[k] for k in ("exact", "f1", "start_accuracy", "end_accuracy", "train_runtime",
                                   "train_features_per_second")})
    assert metrics["train_questions"] == 1457 and metrics["total"] == 227 and metrics["global_step"] == 198
    assert metrics["exact"] >= FLOOR_EXACT and metrics["f1"] >= FLOOR_F1, metrics
    assert min(metrics["start_accuracy"], metrics["end_accuracy"]) >= FLOOR_TOKEN_ACCURACY, metrics
