"""benchmarks.cpu_default on the tiny config: one child process per case, a row each with s/img, every timed
inversion and the child's own peak RSS, written as JSON with the command that made each row; a bad case name is one
error line (exit 2)."""

import json

from hyperstyle_trt.benchmarks.cpu_default import main


def test_tiny_rows(tmp_path, capsys):
    out = tmp_path / "cpu.json"
    assert main(["--config", "tiny", "--iters", "2", "--repeats", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    d = json.loads(out.read_text())
    assert [r["case"] for r in d["rows"]] == ["onnxruntime", "torch", "reference"]
    for r in d["rows"]:
        assert len(r["times_s"]) == 2 and r["s_per_img"] == min(r["times_s"]) > 0 and r["peak_rss_gib"] > 0
        assert len(r["cpu_s"]) == 2 and min(r["cpu_s"]) > 0
        assert f"--child {r['case']}" in r["command"] and r["case"] in text
    assert d["iters"] == 2 and d["machine"]["cores"] >= 1


def test_bad_case(capsys):
    assert main(["--executors", "onnxruntime,nope"]) == 2
    assert "expected a comma-separated subset" in capsys.readouterr().err
