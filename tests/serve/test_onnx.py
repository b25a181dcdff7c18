"""ONNX export: dynamic axes, ONNX Runtime vs PyTorch agreement, the onnx serving backend, the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from _helpers import assert_one_line_error, run_cli


def _random_batch(tokenizer, names, batch, length, seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, 2000, size=(batch, length)).astype(np.int64)
    mask = np.ones((batch, length), np.int64)
    for i in range(1, batch):                        # rows of different lengths: padding + attention mask
        cut = max(2, length - 3 * i)
        ids[i, cut:] = tokenizer.pad_token_id
        mask[i, cut:] = 0
    ids[:, 0] = tokenizer.cls_token_id
    data = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    return {n: data[n] for n in names}


@pytest.mark.parametrize("which", ["qa", "classify"])
def test_onnx_matches_torch_for_any_batch_and_length(which, qa_run, qa_onnx, cls_model_dir, cls_onnx):
    from encoderlab.export.onnx import read_export_info
    from encoderlab.serve import OnnxBackend, TorchBackend

    export, source = (qa_onnx, qa_run / "model") if which == "qa" else (cls_onnx, cls_model_dir)
    assert export.path.is_file() and export.task == which and export.max_abs_diff <= 1e-4
    info = read_export_info(export.directory)
    assert info["max_abs_diff"] == export.max_abs_diff and info["exporter"] in ("dynamo", "torchscript")
    ort_b, torch_b = OnnxBackend("o", export.directory), TorchBackend("t", source, precision="fp32")
    assert ort_b.input_names == torch_b.input_names
    for batch, length, seed in ((1, 7, 0), (3, 40, 1), (5, 129, 2)):
        inputs = _random_batch(ort_b.tokenizer, ort_b.input_names, batch, length, seed)
        got, ref = ort_b.forward(inputs), torch_b.forward(inputs)
        for name in ort_b.output_names:
            assert got[name].shape == ref[name].shape
            np.testing.assert_allclose(got[name], ref[name], atol=1e-4, rtol=1e-4)


def test_onnx_backend_serves_the_same_answers(qa_run, qa_onnx, cls_model_dir, cls_onnx, context):
    from encoderlab.serve import create_app, load_backend

    answers, labels = {}, {}
    for kind in ("torch", "onnx"):
        backends = [load_backend("tiny", qa_run, kind, precision="fp32"),
                    load_backend("sentiment", cls_model_dir, kind, precision="fp32")]
        assert backends[0].kind == kind
        with TestClient(create_app(backends)) as c:
            answers[kind] = c.post("/v1/answer", json={"context": context, "questions": ["Who?", "Where?"],
                                                       "top_k": 3}).json()["results"]
            labels[kind] = c.post("/v1/classify", json={"texts": ["nice", "awful"]}).json()["results"]
            assert c.get("/v1/models").json()["models"][0]["backend"] == kind
    for t, o in zip(answers["torch"], answers["onnx"]):
        assert [(a["start"], a["end"]) for a in t["answers"]] == [(a["start"], a["end"]) for a in o["answers"]]
        assert [a["score"] for a in t["answers"]] == pytest.approx([a["score"] for a in o["answers"]], abs=1e-4)
    for t, o in zip(labels["torch"], labels["onnx"]):
        assert t["label"] == o["label"] and t["score"] == pytest.approx(o["score"], abs=1e-5)


def test_onnx_backend_needs_an_export(tmp_path, cls_model_dir):
    import shutil

    from encoderlab.errors import ModelError
    from encoderlab.serve import load_backend

    copy = tmp_path / "copy"
    shutil.copytree(cls_model_dir, copy, ignore=shutil.ignore_patterns("onnx"))
    with pytest.raises(ModelError, match=r"run `encoderlab export onnx .*copy` first"):
        load_backend("x", copy, "onnx")
    with pytest.raises(ModelError, match="neither a run directory"):
        load_backend("x", tmp_path, "torch")


def test_cli_export_onnx(capsys, tmp_path, cls_model_dir):
    from encoderlab.serve import create_app, load_backend

    out_dir = tmp_path / "exported"
    code, out, err = run_cli(capsys, "export", "onnx", cls_model_dir, "-o", out_dir, "--int8")
    assert code == 0, err
    assert (out_dir / "model.onnx").is_file() and (out_dir / "config.json").is_file()
    assert "max |onnxruntime - torch| = " in out and "classify" in out and "max |int8 - torch|" in out
    info = json.loads((out_dir / "export.json").read_text())
    assert info["task"] == "classify" and info["int8"] == "model.int8.onnx"
    assert (out_dir / "model.int8.onnx").stat().st_size < (out_dir / "model.onnx").stat().st_size
    backend = load_backend("q", out_dir, "onnx", int8=True)
    assert backend.describe()["precision"].startswith("int8")
    with TestClient(create_app([backend])) as c:
        res = c.post("/v1/classify", json={"texts": ["good", "bad"]}).json()["results"]
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-5 for r in res)
    code, out, err = run_cli(capsys, "export", "onnx", tmp_path / "nothing-here")
    assert_one_line_error(code, err, "does not exist")


def test_cli_serve_builds_the_app(capsys, monkeypatch, qa_run, cls_model_dir, cls_onnx):
    import uvicorn

    calls = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.update(app=app, **kw))
    code, out, err = run_cli(capsys, "serve", qa_run, f"sst={cls_model_dir}", "--port", "8123", "--max-top-k", "7")
    assert code == 0, err
    assert calls["host"] == "127.0.0.1" and calls["port"] == 8123                # loopback unless told otherwise
    with TestClient(calls["app"]) as c:
        models = c.get("/v1/models").json()
    assert [m["name"] for m in models["models"]] == [qa_run.name, "sst"] and models["limits"]["max_top_k"] == 7
    assert "serving on http://127.0.0.1:8123/" in err

    code, out, err = run_cli(capsys, "serve", qa_run, "--int8")
    assert_one_line_error(code, err, "int8 quantization is for the onnx backend")
    code, out, err = run_cli(capsys, "serve", qa_run, "--backend", "tensorrt")
    assert_one_line_error(code, err, "--backend must be torch or onnx")
    code, out, err = run_cli(capsys, "serve", f"a={cls_model_dir}", f"a={cls_model_dir}")
    assert_one_line_error(code, err, "two models are named 'a'")


def test_export_rejects_a_model_without_task(tmp_path):
    from encoderlab.errors import ModelError
    from encoderlab.export import export_onnx
    from encoderlab.models import load_model

    r = load_model("scratch:bert-tiny", "base")
    r.model.save_pretrained(str(tmp_path / "bare"))
    r.tokenizer.save_pretrained(str(tmp_path / "bare"))
    with pytest.raises(ModelError, match="cannot tell the model's task"):
        export_onnx(tmp_path / "bare")


def test_failed_verification_leaves_the_previous_export(monkeypatch, tmp_path, cls_model_dir):
    """An export whose logits do not match PyTorch writes nothing: the previous export stays as it was."""
    from encoderlab.errors import ModelError
    from encoderlab.export import onnx as onnx_export

    out = tmp_path / "onnx"
    first = onnx_export.export_onnx(cls_model_dir, out)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    monkeypatch.setattr(onnx_export, "verify_onnx", lambda *a, **k: 1.0e3)
    with pytest.raises(ModelError, match="not trustworthy"):
        onnx_export.export_onnx(cls_model_dir, out)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert first.path.is_file() and not list(tmp_path.glob(".onnx*"))


def _domains_and_ops(path):
    import onnx

    graph = onnx.load(str(path)).graph
    return {n.domain or "ai.onnx" for n in graph.node}, {n.op_type for n in graph.node}, graph


@pytest.mark.timeout(300)
def test_export_fuses_for_onnxruntime_and_int8_keeps_the_embeddings_fp32(tmp_path, qa_run):
    import onnx
    from transformers import AutoConfig

    from encoderlab.export import export_onnx

    layers = AutoConfig.from_pretrained(str(qa_run / "model")).num_hidden_layers
    res = export_onnx(qa_run, tmp_path / "fused", quantize=True)
    assert res.fused_operators["Attention"] == layers and res.fused_operators["EmbedLayerNormalization"] == 1
    assert res.optimize_note is None and res.max_abs_diff <= 1e-4
    domains, ops, _ = _domains_and_ops(res.path)
    assert "com.microsoft" in domains and {"Attention", "EmbedLayerNormalization", "SkipLayerNormalization"} <= ops
    info = json.loads((res.directory / "export.json").read_text())
    assert info["optimized"] is True and info["fused_operators"] == res.fused_operators
    _, q_ops, q_graph = _domains_and_ops(res.int8_path)
    assert {"QAttention", "MatMulInteger"} <= q_ops
    words = next(t for t in q_graph.initializer if "word_embeddings" in t.name)
    assert words.data_type == onnx.TensorProto.FLOAT            # embeddings are not quantized
    # int8 is approximate, but it must answer like fp32. This tiny model's answer probabilities are
    # nearly flat (top ~0.06, runner-up often < 0.002 behind), so bound what int8 can honestly keep:
    fp32, int8 = _top_answers(res.directory, int8=False), _top_answers(res.directory, int8=True)
    assert len(fp32) == len(int8) == 48
    top1 = [q[0][:3] for q in fp32]
    assert len(set(top1)) >= 24                                 # the fp32 answers vary, also within a paragraph
    assert all(len({t for t in top1 if t[0] == i}) > 1 for i in range(8))
    same = sum(f[0][:3] == i[0][:3] for f, i in zip(fp32, int8))
    assert same >= 0.75 * len(fp32), f"int8's top answer is fp32's on {same} of 48 questions"
    in_top3 = sum(i[0][:3] in [a[:3] for a in f] for f, i in zip(fp32, int8))
    assert in_top3 >= 46, f"int8's top answer is in fp32's top 3 on {in_top3} of 48 questions"
    clear = [(f, i) for f, i in zip(fp32, int8) if f[0][3] - f[1][3] > 0.004]   # fp32 has a clear winner
    assert len(clear) >= 8 and all(f[0][:3] == i[0][:3] for f, i in clear)
    assert max(abs(f[0][3] - i[0][3]) for f, i in zip(fp32, int8)) < 0.02


def _top_answers(onnx_dir, *, int8: bool) -> list[list[tuple[int, int, int, float]]]:
    """The top 3 answers (paragraph, start, end, score) to 48 real questions (8 paragraphs of the bundled sample)."""
    from encoderlab.data.squad import builtin_path
    from encoderlab.serve import create_app, load_backend

    data = json.loads(builtin_path("squad-sample")[0].read_text(encoding="utf-8"))
    paragraphs = [p for a in data["data"] for p in a["paragraphs"] if len(p["qas"]) >= 6][:8]
    out = []
    with TestClient(create_app([load_backend("m", onnx_dir, "onnx", int8=int8)])) as c:
        for i, p in enumerate(paragraphs):
            r = c.post("/v1/answer", json={"context": p["context"], "top_k": 3,
                                           "questions": [q["question"] for q in p["qas"][:6]]})
            assert r.status_code == 200, r.text
            out += [[(i, a["start"], a["end"], a["score"]) for a in q["answers"]] for q in r.json()["results"]]
    return out


def test_no_optimize_writes_standard_operators_only(capsys, tmp_path, cls_model_dir):
    out_dir = tmp_path / "portable"
    code, out, err = run_cli(capsys, "export", "onnx", cls_model_dir, "-o", out_dir, "--no-optimize")
    assert code == 0, err
    assert "standard ONNX operators" in out
    domains, _, _ = _domains_and_ops(out_dir / "model.onnx")
    assert domains == {"ai.onnx"}
    assert json.loads((out_dir / "export.json").read_text())["optimized"] is False


def test_a_failed_fusion_keeps_the_unfused_graph(monkeypatch, tmp_path, cls_model_dir):
    from encoderlab.export import onnx as onnx_export

    def broken(*args, **kwargs):
        raise RuntimeError("no pattern matched")

    monkeypatch.setattr(onnx_export, "fuse_for_onnxruntime", broken)
    res = onnx_export.export_onnx(cls_model_dir, tmp_path / "o")
    assert res.fused_operators == {} and "optimizer failed (no pattern matched)" in res.optimize_note
    assert res.max_abs_diff <= 1e-4 and sorted(p.name for p in res.directory.glob("*.onnx")) == ["model.onnx"]
    domains, _, _ = _domains_and_ops(res.path)
    assert domains == {"ai.onnx"}
