"""report.html in a real browser: headless Chromium through Selenium (skipped where not installed).

Checks what only a browser can: no console errors, every embedded figure decodes (complete, with a
natural width), and the run names are visible text. A screenshot is saved beside the report.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from _helpers import needs_chromium
import yaml

pytestmark = needs_chromium

RUNS = ("bert-seed1", "bert-seed2")


def write_run(root: Path, name: str, shift: float) -> Path:
    """A finished 2-epoch QA run: logged steps, 3 evaluations, the train summary and the final line."""
    run = root / name
    run.mkdir(parents=True)
    history, t = [], 0.0
    for step in range(1, 601):
        if step == 1 or step % 50 == 0:
            t += 100.0
            history.append({"step": step, "epoch": step / 300, "time": t, "loss": 1.1 + 4.9 * math.exp(-step / 150) + shift,
                            "grad_norm": 3.0 + step / 100, "learning_rate": 1e-4 * (1 - step / 600)})
        if step % 200 == 0:
            exact = 72.0 - 20 * math.exp(-step / 200) - 4 * shift
            history.append({"step": step, "epoch": step / 300, "time": t + 90, "eval_loss": 1.0 + math.exp(-step / 300) + shift,
                            "eval_exact": exact, "eval_f1": exact + 12.5, "eval_total": 4874, "eval_correct": 3400,
                            "eval_similar": 900, "eval_incorrect": 574, "eval_modified_exact": exact + 7, "eval_runtime": 90.0})
    history.append({"step": 600, "epoch": 2.0, "time": t + 100, "train_runtime": t + 50, "train_loss": 2.0 + shift})
    final = {**history[-2], "final": True}
    final.pop("eval_runtime")
    history.append(final)
    (run / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history), encoding="utf-8")
    metrics = {k[5:]: v for k, v in final.items() if k.startswith("eval_")}
    metrics.update(train_loss=2.0 + shift, train_runtime=t + 50)
    (run / "metrics.json").write_text(json.dumps(metrics, indent=1), encoding="utf-8")
    config = {"model": "bert-base-uncased", "learning_rate": 3e-5, "seed": int(name[-1]),
              "train": "data/<script>alert('x')</script>.json", "eval_steps": 200}
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    (run / "run.json").write_text(json.dumps({"status": "completed", "started": "2026-11-23T10:00:00+0000",
                                              "finished": "2026-11-23T11:02:00+0000", "device": "cpu"}), encoding="utf-8")
    return run


@pytest.fixture()
def driver(chromium):
    return chromium


def test_report_renders_in_chromium(tmp_path, driver):
    from selenium.webdriver.common.by import By

    from encoderlab.reports.html import write_report

    runs = [write_run(tmp_path / "runs", name, shift) for name, shift in zip(RUNS, (0.0, 0.25))]
    report = write_report(runs, tmp_path / "report.html", title="BERT seeds")
    driver.get(report.resolve().as_uri())

    severe = [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]
    assert severe == [], severe

    images = driver.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight]);")
    assert len(images) == 2, images                         # loss + EM/F1
    for alt, complete, width, height in images:
        assert complete and width > 0 and height > 0, (alt, complete, width, height)

    body = driver.find_element(By.TAG_NAME, "body")
    visible = body.text
    for name in RUNS:
        assert name in visible
    assert "BERT seeds" in visible
    assert "<script>alert('x')</script>" in visible         # shown as text, never run
    assert driver.execute_script("return document.scripts.length;") == 0

    # the best EM is highlighted (shown with the highlight class in the comparison table)
    best = driver.find_elements(By.CSS_SELECTOR, "table.compare td.best")
    assert best and all(cell.is_displayed() for cell in best)

    shot = tmp_path / "report.png"
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
