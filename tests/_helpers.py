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
