"""hs-export: bad arguments give one `error:` line and a non-zero exit; --dry-run; the tiny fp16 export with all three
TensorRT engines (marked trt)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cli.export import main

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
    r = subprocess.run([sys.executable, "-m", "cli.export", "--config", "nope"], cwd=ROOT, capture_output=True,
                       text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 2 and r.stderr.strip().startswith("error: unknown config") and "Traceback" not in r.stderr


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
    # the exporter is deterministic: re-exporting gives byte-identical graphs, so engines are reused by content hash
    side = json.loads((out / "hypernet_plugin_fp16.onnx.json").read_text())
    from core.sidecar import sha256_files
    from export.onnx_io import onnx_files

    assert sha256_files(onnx_files(out / "hypernet_plugin_fp16.onnx")) == side["sha256"]
