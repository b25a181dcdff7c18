"""Rebuild the bundled `builtin:squad-sample` from the official SQuAD v1.1 dev file.

    python scripts/make_squad_sample.py ../shared/data/squad-v1.1/dev-v1.1.json ../shared/data/squad-v1.1/split.json

Train-half articles are for fine-tuning, test-half articles for held-out evaluation; the
split travels with the sample (`squad-sample-split.json`) so the demo never trains on test data.
"""
import json
import sys
from pathlib import Path

TRAIN = ["Super_Bowl_50", "Warsaw", "Normans", "Southern_California", "Sky_(United_Kingdom)"]
TEST = ["Pharmacy", "Construction"]


def main(dev_path: str, split_path: str) -> None:
    dev = json.loads(Path(dev_path).read_text(encoding="utf-8"))
    split = json.loads(Path(split_path).read_text(encoding="utf-8"))
    assert set(TRAIN) <= set(split["train"]) and set(TEST) <= set(split["test"])
    by_title = {a["title"]: a for a in dev["data"]}
    sample = {"version": dev["version"], "data": [by_title[t] for t in TRAIN + TEST]}
    out = Path(__file__).resolve().parents[1] / "src/encoderlab/data/builtin"
    (out / "squad-sample.json").write_text(json.dumps(sample, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    (out / "squad-sample-split.json").write_text(json.dumps({"train": TRAIN, "test": TEST}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(*sys.argv[1:3])
