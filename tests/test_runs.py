"""The run directory's JSON files are standard JSON, even for a diverged run."""
from __future__ import annotations

import pytest

import json
import math

from encoderlab.runs import RunDir, dumps


def test_non_finite_numbers_are_written_as_null(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    metrics = {"perplexity": math.inf, "loss": math.nan, "evaluations": [{"perplexity": -math.inf, "step": 3}],
               "accuracy": 0.5}
    run.write_json("metrics.json", metrics)
    run.append_history({"step": 1, "loss": math.nan})
    text = (run.path / "metrics.json").read_text() + (run.path / "history.jsonl").read_text()
    assert "Infinity" not in text and "NaN" not in text
    assert json.loads((run.path / "metrics.json").read_text()) == {
        "perplexity": None, "loss": None, "evaluations": [{"perplexity": None, "step": 3}], "accuracy": 0.5}
    assert run.history() == [{"step": 1, "loss": None}]
    assert json.loads(dumps({"a": [1.5, "x"]})) == {"a": [1.5, "x"]}


def test_fail_records_the_reason(tmp_path):
    run = RunDir(tmp_path / "run")
    run.start({"x": 1})
    run.fail(ValueError("broken input"))
    assert run.status == "failed" and run.read_json("run.json")["error"] == "broken input"
    run.fail(KeyboardInterrupt())
    assert run.status == "interrupted"


@pytest.mark.timeout(30)
def test_output_files_that_cannot_be_written_are_one_line_errors(tmp_path):
    from encoderlab.errors import EncoderlabError
    from encoderlab.runs import write_output

    (tmp_path / "a-file").write_text("x")
    for bad in (tmp_path, tmp_path / "a-file" / "out.md"):          # a directory; a path under a file
        with pytest.raises(EncoderlabError, match=f"cannot write {bad}: "):
            write_output(bad, "text")
    assert write_output(tmp_path / "ok.md", "text").read_text() == "text"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []      # no temporary file left
