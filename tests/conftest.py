"""Shared fixtures: the real data in ../shared/data (skipped when absent) and tiny scratch models."""
from __future__ import annotations

import os
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")          # tests never reach for the network
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# `make test` runs the suite on pytest-xdist workers (-n auto, one per core): each worker, and every process
# its tests start, gets its share of the cores (set before torch is imported), not PyTorch's default of one
# thread per core each, which would oversubscribe them.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 0)
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))

from _helpers import REPO, SHARED, shared_file  # noqa: F401  (tests/ is on pytest's pythonpath)


def pytest_collection_modifyitems(config, items):
    """Files with slow (real-model) tests first, each file's tests in their own order: on xdist workers
    (--dist loadfile) the longest files then start at once instead of ending the run alone."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.path not in slow_files)


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
