"""Real model, real data: fine-tuning builtin:minilm-l6 on a few hundred questions must learn QA.

Trains on the first 400 questions of the bundled sample's training articles (SQuAD v1.1 dev,
`train` half) and scores 120 questions of its held-out articles (`test` half). The floor is set
well below honest runs (see the note on FLOOR) so that it catches a broken pipeline, not noise.
"""
from __future__ import annotations

import pytest

from encoderlab.qa.train import QATrainConfig, train_qa

# Honest runs of exactly this configuration (2-core CPU, bf16 autocast) reached EM ~FLOOR_NOTE;
# an untrained QA head scores EM ~0-2 / F1 ~5-8.
FLOOR_EXACT = 20.0
FLOOR_F1 = 30.0


@pytest.mark.slow
def test_minilm_learns_squad_on_a_few_hundred_questions(tmp_path):
    cfg = QATrainConfig(model="builtin:minilm-l6", output_dir=str(tmp_path / "run"), train="builtin:squad-sample",
                        train_split="train", eval_split="test", limit=400, eval_limit=120, num_train_epochs=2,
                        learning_rate=1e-4, train_batch_size=16, max_seq_length=256, doc_stride=64,
                        logging_steps=10, seed=42)
    metrics = train_qa(cfg, log=print)
    print({k: metrics[k] for k in ("exact", "f1", "train_runtime", "train_features_per_second")})
    assert metrics["exact"] >= FLOOR_EXACT and metrics["f1"] >= FLOOR_F1, metrics
