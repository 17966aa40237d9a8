"""hs-export: bad arguments give one `error:` line and a non-zero exit; Ctrl-C is `error: interrupted`, exit 130; a
verifier that raises becomes a FAIL row with the summary still written; --dry-run; re-exporting gives byte-identical
graphs; the tiny fp16 export with all three TensorRT engines, reused by content hash on a second run (marked trt)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hyperstyle_trt.cli.export import main

ROOT = Path(__file__).resolve().parents[3]


def _err_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    err = [e for e in err if not e.startswith("notice:")]
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    return err[0]


@pytest.mark.parametrize("args,match", [
    (["--config", "nope"], "unknown config"),
    (["--max-batch", "0"], "--max-batch must be >= 1"),
    (["--config", "tiny", "--checkpoint", "/no/such.pt", "--w-encoder", "/no/such.pt"], "checkpoint not found"),
    (["--config", "tiny", "--fp17"], "No such option"),
    (["--config", "tiny", "--max-batch", "x"], "not a valid integer"),
    (["--config", "tiny", "--compute-capability", "sm_86", "--dry-run"], "--compute-capability ['sm_86'] malformed"),
])
def test_user_errors(args, match, capsys):
    assert main(args) != 0
    assert match in _err_line(capsys)


def test_unreadable_checkpoint(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["--config", "tiny", "--checkpoint", str(bad), "--w-encoder", str(bad), "--out",
                 str(tmp_path / "o")]) == 2
    assert "bad.pt" in _err_line(capsys)


def test_unwritable_out(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["--config", "tiny", "--out", str(blocker / "sub")]) == 2
    assert "--out" in _err_line(capsys)


def test_dry_run(capsys, tmp_path):
    assert main(["--dry-run", "--config", "tiny", "--fp32", "--plugin", "--max-batch", "4", "--out",
                 str(tmp_path)]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["config"] == "tiny" and cfg["precisions"] == ["fp32"] and cfg["variants"] == ["plugin"]
    assert cfg["max_batch"] == 4 and not any(tmp_path.iterdir())


def test_console_script_error_exit_code():
    r = subprocess.run([sys.executable, "-m", "hyperstyle_trt.cli.export", "--config", "nope"], cwd=ROOT,
                       capture_output=True,
                       text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 2 and r.stderr.strip().startswith("error: unknown config") and "Traceback" not in r.stderr


def _onnx_hashes(out: Path) -> dict[str, str]:
    from hyperstyle_trt.core.sidecar import sha256_files
    from hyperstyle_trt.export.onnx_io import onnx_files

    return {p.name: sha256_files(onnx_files(p)) for p in sorted(out.glob("*.onnx"))}


def test_re_export_is_byte_identical(tmp_path, capsys):
    """Two hs-export runs (tiny, plain graphs, fp16, no verification or engines) into different directories write
    the same bytes for every graph and its external data, and the sidecars record those hashes."""
    args = ["--config", "tiny", "--fp16", "--plain", "--no-engines", "--no-verify"]
    for d in ("a", "b"):
        assert main([*args, "--out", str(tmp_path / d)]) == 0, capsys.readouterr().out
    a, b = _onnx_hashes(tmp_path / "a"), _onnx_hashes(tmp_path / "b")
    assert sorted(a) == ["generator_plain_fp16.onnx", "hypernet_plain_fp16.onnx", "w_encoder_fp16.onnx"]
    assert a == b
    for name, h in a.items():
        assert json.loads((tmp_path / "b" / (name + ".json")).read_text())["sha256"] == h, name


def test_ctrl_c_is_one_line_and_exit_130(tmp_path, capsys, monkeypatch):
    from hyperstyle_trt import engines
    import hyperstyle_trt.engines.pipeline  # noqa: F401  (the attribute patched below)

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(engines.pipeline, "run_export", interrupted)
    assert main(["--config", "tiny", "--out", str(tmp_path / "o")]) == 130
    assert _err_line(capsys) == "error: interrupted"


def test_verifier_crash_is_a_fail_row_and_the_summary_is_written(tmp_path, capsys, monkeypatch):
    """A non-HsError from the verifier (onnx.reference / onnxruntime raising) fails that graph's row only; the other
    graphs are verified, the table is printed, export_summary.json is written and the exit code is 1."""
    import hyperstyle_trt.export.pipeline as pipeline

    real = pipeline.verify_graph

    def flaky(path, model, graph, *a, **k):
        if graph == "hypernet":
            raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : boom\nsecond line")
        return real(path, model, graph, *a, **k)
    monkeypatch.setattr(pipeline, "verify_graph", flaky)
    out = tmp_path / "o"
    assert main(["--config", "tiny", "--fp32", "--plain", "--no-engines", "--out", str(out)]) == 1
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err + cap.out and "FAIL verify" in cap.out
    rows = {a["path"].rsplit("/", 1)[-1]: a for a in json.loads((out / "export_summary.json").read_text())["artifacts"]}
    assert rows["hypernet_plain_fp32.onnx"]["status"] == \
        "FAIL verify: RuntimeError: [ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : boom"
    assert rows["w_encoder_fp32.onnx"]["status"] == "ok" and rows["generator_plain_fp32.onnx"]["status"] == "ok"
    assert rows["generator_plain_fp32.onnx"]["max_rel_err"] is not None  # the others were really verified


@pytest.mark.trt
def test_tiny_fp16_export_builds_all_engines(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["--fp16", "--config", "tiny", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    for name in ("w_encoder_fp16", "hypernet_plain_fp16", "hypernet_plugin_fp16", "generator_plain_fp16",
                 "generator_plugin_fp16"):
        assert (out / f"{name}.onnx").is_file() and (out / f"{name}.onnx.json").is_file(), name
    engines = sorted(p.name for p in out.glob("*.engine"))
    assert engines == ["generator_plugin_fp16.engine", "hypernet_plugin_fp16.engine", "w_encoder_fp16.engine"]
    for e in engines:
        side = json.loads((out / (e + ".json")).read_text())
        assert side["status"] == "built" and side["build_options"]["profile"][0][1][0] == 1
    summary = json.loads((out / "export_summary.json").read_text())
    assert not [a for a in summary["artifacts"] if a["status"].startswith("FAIL")]
    assert "generator_plugin_fp16.engine" in text  # the summary table
    # a second run into the same directory re-exports byte-identical graphs, so every engine is reused by its
    # content hash (up-to-date), none rebuilt
    hashes = _onnx_hashes(out)
    assert main(["--fp16", "--config", "tiny", "--out", str(out)]) == 0
    capsys.readouterr()
    assert _onnx_hashes(out) == hashes
    summary = json.loads((out / "export_summary.json").read_text())
    assert sorted(a["status"] for a in summary["artifacts"] if a["kind"] == "engine") == ["up-to-date"] * 3


def test_second_run_reuses_graphs_and_force_redoes_them(tmp_path, capsys, monkeypatch):
    """hs-export into the same --out: a second run exports nothing and never loads the model (every graph reused,
    the same bytes, the summary says so); a graph whose file was truncated is exported again (a note says why) while
    the others are reused; --force exports every graph again."""
    import hyperstyle_trt.export.pipeline as pipeline

    out = tmp_path / "o"
    args = ["--config", "tiny", "--fp32", "--plain", "--no-engines", "--no-verify", "--out", str(out)]
    assert main(args) == 0
    first = _onnx_hashes(out)
    capsys.readouterr()
    exported, loaded = [], []
    real_export, real_load = pipeline._export_graph, pipeline.load_model
    monkeypatch.setattr(pipeline, "_export_graph", lambda m, *a, **k: exported.append(type(m).__name__) or
                        real_export(m, *a, **k))
    monkeypatch.setattr(pipeline, "load_model", lambda cfg: loaded.append(cfg) or real_load(cfg))

    assert main(args) == 0
    text = capsys.readouterr().out
    summary = json.loads((out / "export_summary.json").read_text())
    assert exported == [] and loaded == []
    assert [a["reused"] for a in summary["artifacts"]] == [True] * 3
    assert "(reused)" in text and "reused 3 graph(s)" in text and _onnx_hashes(out) == first

    hyp = out / "hypernet_plain_fp32.onnx"
    hyp.write_bytes(hyp.read_bytes()[:100])
    assert main(args) == 0
    text = capsys.readouterr().out
    assert exported == ["HypernetGraph"] and len(loaded) == 1
    assert "hypernet_plain_fp32.onnx: exported again (corrupt (sha256 mismatch))" in " ".join(text.split())
    rows = {a["path"].rsplit("/", 1)[-1]: a for a in json.loads((out / "export_summary.json").read_text())["artifacts"]}
    assert not rows["hypernet_plain_fp32.onnx"]["reused"] and rows["w_encoder_fp32.onnx"]["reused"]
    assert _onnx_hashes(out) == first

    exported.clear()
    assert main([*args, "--force"]) == 0
    capsys.readouterr()
    assert sorted(exported) == ["GeneratorGraph", "HypernetGraph", "WEncoderGraph"]
    assert not any(a["reused"] for a in json.loads((out / "export_summary.json").read_text())["artifacts"])
    assert _onnx_hashes(out) == first
