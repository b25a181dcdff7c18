"""Shared fixtures: the real data in ../shared/data (skipped when absent) and tiny scratch models."""
from __future__ import annotations

import os
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")          # tests never reach for the network
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from _helpers import REPO, SHARED, shared_file  # noqa: F401  (tests/ is on pytest's pythonpath)


@pytest.fixture(scope="session", autouse=True)
def _quiet_transformers():
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


@pytest.fixture(scope="session")
def tokenizer():
    from encoderlab.models import load_tokenizer

    return load_tokenizer("builtin:minilm-l6")


@pytest.fixture(scope="session")
def tiny_qa_run(tmp_path_factory):
    """A finished run of scratch:bert-tiny on a slice of the bundled sample (seconds on CPU)."""
    from encoderlab.qa.train import QATrainConfig, train_qa

    out = tmp_path_factory.mktemp("runs") / "tiny"
    cfg = QATrainConfig(model="scratch:bert-tiny", output_dir=str(out), train="builtin:squad-sample",
                        train_split="train", eval_split="test", limit=96, eval_limit=24, max_steps=8,
                        eval_steps=4, logging_steps=2, train_batch_size=8, eval_batch_size=16,
                        max_seq_length=128, doc_stride=32, precision="fp32", learning_rate=1e-3)
    metrics = train_qa(cfg, log=lambda m: None)
    return out, metrics


@pytest.fixture()
def chromium(tmp_path):
    """A headless Chromium (Selenium + the system driver) for browser tests; mark them `needs_chromium`."""
    import shutil

    from _helpers import chromium_driver

    drv = chromium_driver(tmp_path / "chromium-profile")
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)
