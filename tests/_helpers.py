"""Helpers importable by every test module (tests/ is on pytest's pythonpath)."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def shared_file(*parts: str) -> Path:
    """A file of ../shared/data, or skip the test with the reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs the shared data file {path} (absent on this machine)")
    return path


def run_cli(capsys, *args):
    """Run `encoderlab ARGS...` in-process; returns (exit code, stdout, stderr)."""
    from encoderlab.cli import main

    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *fragments):
    """Bad input: exit 2 and exactly one `error: ...` line containing every fragment, no traceback."""
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for f in fragments:
        assert f in lines[0], (f, lines[0])


# -- headless Chromium (Debian chromium + chromium-driver; `make browser` installs them) ----------------
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
needs_chromium = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason=f"needs headless Chromium: {CHROMIUM} and {CHROMEDRIVER} (Debian packages chromium, chromium-driver)")


def chromium_driver(profile_dir: Path, window: str = "1400,2400"):
    """A headless Chromium driven by Selenium with the system driver; console logs kept; quit() it after.

    The flags keep Chromium off the network it cannot reach here (background services, sync, updates).
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", f"--user-data-dir={profile_dir}", f"--window-size={window}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    drv.set_page_load_timeout(60)
    return drv


def step_recorder():
    """A TrainerCallback recording every optimizer step it sees (``.steps``): a resumed run must train only
    the steps after its checkpoint, which a run restarted from step 0 would not."""
    from transformers import TrainerCallback

    class StepRecorder(TrainerCallback):
        def __init__(self):
            self.steps: list[int] = []

        def on_step_end(self, args, state, control, **kwargs):
            self.steps.append(state.global_step)

    return StepRecorder()


# -- non-trivial SQuAD v2.0 predictions for metric checks against tests/squad_v2_official.py ----------
def seeded_v2_predictions(dataset_json: dict, seed: int = 0) -> tuple[dict, dict]:
    """(predictions, null odds) over every question of a SQuAD v2.0 file, deterministic per seed.

    Each question gets one of: a gold answer (sometimes re-cased / punctuated), a gold answer cut or
    extended by a word (partial F1), a plausible answer, a random wrong span of its context, "" or
    " " (the official best-threshold quirk). Null odds are rounded to 2 decimals, so ties occur
    (their order is the file's order), and lean towards the truth so the best thresholds are
    neither 0 nor the largest odds.
    """
    import random

    rng = random.Random(seed)
    preds: dict[str, str] = {}
    odds: dict[str, float] = {}
    for article in dataset_json["data"]:
        for p in article["paragraphs"]:
            words = p["context"].split()
            for qa in p["qas"]:
                gold = [a["text"] for a in qa["answers"]]
                plausible = [a["text"] for a in qa.get("plausible_answers", [])]
                start = rng.randrange(len(words))
                wrong = " ".join(words[start:start + rng.randint(1, 6)])
                r = rng.random()
                if gold and r < 0.35:
                    text = rng.choice(gold)
                    text = text.upper() if rng.random() < 0.2 else text + rng.choice(["", ".", "!"])
                elif gold and r < 0.55:
                    g = rng.choice(gold).split()
                    text = " ".join(g[:-1] if len(g) > 1 else g + [rng.choice(words)])
                elif plausible and r < 0.3:
                    text = rng.choice(plausible)
                elif r < 0.75:
                    text = wrong
                elif r < 0.95:
                    text = ""
                else:
                    text = " "
                preds[qa["id"]] = text
                lean = 0.25 if gold else -0.25
                odds[qa["id"]] = round(min(1.0, max(0.0, rng.random() - lean)), 2)
    return preds, odds


# -- a classifier's own answer, computed without encoderlab ---------------------------------------------
def argmax_labels(model_dir, texts, pairs=None) -> list[tuple[str, float]]:
    """(label, margin) per text: the saved classifier's argmax by plain Transformers, one text at a time.

    The margin is the gap between the two largest probabilities: tests compare encoderlab's label with
    this one where the margin is clear of float noise (random-weight models can be near a tie).
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval()
    out = []
    for i, text in enumerate(texts):
        enc = tok(text, pairs[i] if pairs else None, return_tensors="pt", truncation=True, max_length=128)
        with torch.no_grad():
            probs = model(**enc).logits[0].softmax(-1)
        top = probs.topk(2)
        out.append((model.config.id2label[int(top.indices[0])], float(top.values[0] - top.values[1])))
    return out


def tiny_qa_model(model_type: str = "bert"):
    """A 2-layer, 32-wide QA model of `model_type` ("bert" or "distilbert") from a config, seeded (seconds on CPU)."""
    import torch
    from transformers import AutoConfig, AutoModelForQuestionAnswering

    sizes = (dict(dim=32, n_layers=2, n_heads=2, hidden_dim=64) if model_type == "distilbert" else
             dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64))
    config = AutoConfig.for_model(model_type, vocab_size=100, max_position_embeddings=64, **sizes)
    torch.manual_seed(0)
    return AutoModelForQuestionAnswering.from_config(config)
