"""Real model, real data: fine-tuning builtin:minilm-l6 on a few hundred questions must learn QA.

Trains on 647 questions of four training articles of the bundled sample (SQuAD v1.1 dev, `train`
half: Warsaw, Normans, Southern_California, Sky_(United_Kingdom)) for 2 epochs and scores 120
questions of its held-out articles (`test` half).

Floors: honest runs of exactly this configuration (2-core CPU, bf16 autocast, seed 42) reached
EM 10.83 / F1 26.17 in about 2 minutes of training; after half the steps they were at EM 3.3 /
F1 16.4, and with 2.5x fewer steps (batch 16, learning rate 1.5e-4) at EM 5.8 / F1 14.9. The floors
sit below the honest figures and above what a barely trained head reaches, so a broken pipeline
(labels, features, optimizer, postprocessing) fails while run-to-run noise does not.
"""
from __future__ import annotations

import pytest

from encoderlab.qa.train import QATrainConfig, train_qa

FLOOR_EXACT = 6.0
FLOOR_F1 = 18.0
TITLES = ["Warsaw", "Normans", "Southern_California", "Sky_(United_Kingdom)"]


@pytest.mark.slow
def test_minilm_learns_squad_on_a_few_hundred_questions(tmp_path):
    cfg = QATrainConfig(model="builtin:minilm-l6", output_dir=str(tmp_path / "run"), train="builtin:squad-sample",
                        train_titles=TITLES, eval_split="test", eval_limit=120, num_train_epochs=2,
                        learning_rate=4e-4, train_batch_size=8, max_seq_length=256, doc_stride=64,
                        logging_steps=20, seed=42)
    metrics = train_qa(cfg, log=print)
    print({k: metrics[k] for k in ("exact", "f1", "train_runtime", "train_features_per_second")})
    assert metrics["train_questions"] == 647 and metrics["total"] == 120
    assert metrics["exact"] >= FLOOR_EXACT and metrics["f1"] >= FLOOR_F1, metrics
