"""Real model, real data: fine-tuning builtin:minilm-l6 on the bundled sample must learn QA.

Trains on the 1,457 questions of the bundled sample's training articles (SQuAD v1.1 dev, `train`
half) for 2 epochs (the `make demo` recipe) and scores 120 questions of its held-out articles
(`test` half). About 4.5 minutes on a 2-core CPU with bf16 (AVX-512 BF16 / AMX); about 15 minutes in fp32
on a 2-core AMD EPYC without bf16 (measured in a CI run on 2026-12-01), hence its own timeout.

Floors: an honest run of exactly this configuration (2-core AMD EPYC, bf16 autocast, seed 42) reached
EM 10.83 / F1 27.99 after the first epoch and EM 17.50 / F1 34.71 after the second. Shorter
recipes (650 questions, ~175 steps) landed anywhere between F1 15 and 26 depending on the
QA head's random initialisation, which is why this test trains for ~400 steps. The floors sit well
below the honest figures and far above an untrained head, so a broken pipeline (labels, features,
optimizer, postprocessing) fails while run-to-run noise does not.
"""
from __future__ import annotations

import pytest

from encoderlab.qa.train import QATrainConfig, train_qa

FLOOR_EXACT = 10.0
FLOOR_F1 = 24.0


@pytest.mark.slow
@pytest.mark.timeout(2700)
def test_minilm_learns_squad_on_the_bundled_sample(tmp_path):
    cfg = QATrainConfig(model="builtin:minilm-l6", output_dir=str(tmp_path / "run"), train="builtin:squad-sample",
                        train_split="train", eval_split="test", eval_limit=120, num_train_epochs=2,
                        learning_rate=4e-4, train_batch_size=8, max_seq_length=256, doc_stride=64,
                        logging_steps=20, seed=42)
    metrics = train_qa(cfg, log=print)
    print({k: metrics[k] for k in ("exact", "f1", "train_runtime", "train_features_per_second")})
    assert metrics["train_questions"] == 1457 and metrics["total"] == 120
    assert metrics["exact"] >= FLOOR_EXACT and metrics["f1"] >= FLOOR_F1, metrics
