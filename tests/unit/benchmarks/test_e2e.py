"""`hs-bench` (no sub-command) end to end on the tiny config, CPU: every CPU-capable method runs, bench.json has
every method with its status and figures or reason, its spread and trust verdicts, the PNG plots are real PNGs (the
legend names only plotted kinds); the terminal summary fits 100 columns without a terminal; bad flags are one-line
errors."""

from __future__ import annotations

import contextlib
import io
import json
import math
import re

import pytest
import torch
from PIL import Image

from hyperstyle_trt.benchmarks import e2e, report
from hyperstyle_trt.benchmarks.cli import main

CPU_METHODS = ("projector", "pti", "hyperstyle-ref", "hyperstyle-fast", "hyperstyle-ort")
# |output - hyperstyle-ref| on the tiny default, CPU fp32, batch 2 (torch executor, onnxruntime): fp32 rounding
# only; the gate leaves a margin of a few times the worst difference seen
REF_ATOL = 3e-6


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    pytest.importorskip("matplotlib", reason="hs-bench needs the bench extra (matplotlib)")
    out = tmp_path_factory.mktemp("bench")
    argv = ["--config", "tiny", "--device", "cpu", "--batch", "2", "--out", str(out), "--repeats", "1",
            "--warmup", "0", "--baseline-steps", "1", "--sweep", "1,2"]
    err = io.StringIO()  # no terminal: what a log file or a pipe receives
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err):
        mp.setenv("COLUMNS", "100")
        rc = main(argv)
    assert rc == 0
    (out / "stderr.txt").write_text(err.getvalue())
    return out, json.loads((out / "bench.json").read_text())


def test_json_lists_every_method(bench):
    _, r = bench
    assert list(r["methods"]) == list(e2e.METHOD_NAMES)
    for name, m in r["methods"].items():
        assert m["status"] in ("ok", "skipped", "failed"), name
        if m["status"] != "ok":
            assert m["reason"], name
    for name in CPU_METHODS:
        assert r["methods"][name]["status"] == "ok", (name, r["methods"][name].get("reason"))
    if not torch.cuda.is_available():
        trt = r["methods"]["hyperstyle-trt"]
        assert trt["status"] == "skipped" and "no CUDA GPU" in trt["reason"]
    env = r["environment"]
    for k in ("gpu", "driver", "cuda", "torch", "triton", "tensorrt_flavor", "tensorrt", "config", "weights",
              "command_line"):
        assert k in env, k
    assert env["config"] == "tiny" and "--batch 2" in env["command_line"]
    assert "embedded default" in env["weights"]
    assert any("running on CPU" in n for n in r["notes"])


def test_figures(bench):
    _, r = bench
    ms = {k: r["methods"][k]["ms_per_image"] for k in CPU_METHODS}
    for name in CPU_METHODS:
        m = r["methods"][name]
        assert m["ms_per_image"] > 0 and math.isfinite(m["ms_per_image"])
        q = m["quality"]
        assert 0 < q["mse"] < 1 and q["psnr_db"] == pytest.approx(10 * math.log10(1 / q["mse"]))
        sp = m["speedup"]
        assert sp["vs_hyperstyle-ref"] == pytest.approx(ms["hyperstyle-ref"] / ms[name])
        assert sp["vs_pti"] == pytest.approx(ms["pti"] / ms[name])
    for name in ("hyperstyle-ref", "hyperstyle-fast", "hyperstyle-ort"):
        m = r["methods"][name]
        lat = m["latency_ms_per_batch"]
        # one sample supports no tail percentile: p95 / p99 are absent and `omitted` says why (issue #21 item 2)
        assert lat["n"] == 1 and lat["min"] <= lat["p50"] <= lat["max"]
        assert "p95" not in lat and "p99" not in lat and "p95 needs >= 20 samples" in lat["omitted"]
        assert m["throughput"]["ms_per_batch"] == pytest.approx(m["ms_per_image"] * 2)
    for name in ("hyperstyle-fast", "hyperstyle-ort"):
        vs = r["methods"][name]["vs_ref"]
        assert vs["max_abs_err"] < REF_ATOL, (name, vs)
        assert "vs_ref" not in r["methods"]["hyperstyle-ref"]
    # the same images and weights: the fast paths reconstruct the input as the reference does
    q_ref = r["methods"]["hyperstyle-ref"]["quality"]["mse"]
    assert r["methods"]["hyperstyle-fast"]["quality"]["mse"] == pytest.approx(q_ref, rel=1e-4)
    # baselines: 1 measured step each, projected to the full schedule and labelled so
    proj, pti = r["methods"]["projector"], r["methods"]["pti"]
    assert proj["projected"] and proj["label"] == "projected from 1 measured steps"
    assert proj["steps"]["full"] == 1000 and proj["steps"]["measured"] == 1
    assert proj["ms_per_batch"] > 1000 * min(proj["latency_ms_per_step"]["p50"], proj["latency_ms_per_step"]["mean"])
    assert pti["projected"] and pti["label"].startswith("projected from 1 measured W steps")
    assert pti["steps"]["full"] == 450 and pti["steps"]["full_tune"] == 350
    assert r["sweep"].keys() == {"hyperstyle-fast", "hyperstyle-ort"}
    assert [row["batch"] for row in r["sweep"]["hyperstyle-fast"]] == [1, 2]


def test_plots_are_pngs(bench):
    out, r = bench
    assert r["plots"] == ["ms_per_image.png", "ms_per_image_vs_batch.png"]
    for name in r["plots"]:
        p = out / name
        assert p.stat().st_size > 1000
        with Image.open(p) as im:
            assert im.format == "PNG" and im.size[0] > 200 and im.size[1] > 150
            im.load()


def _one_line_error(capsys, argv):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc != 0 and err.startswith("error:") and "\n" not in err and "Traceback" not in err, err
    return err


def test_bad_flags(capsys, tmp_path):
    assert "--batch must be an integer >= 1" in _one_line_error(capsys, ["--batch", "0", "--out", str(tmp_path)])
    assert "unknown --methods ['nope']" in _one_line_error(capsys, ["--methods", "pti,nope"])
    assert "--full-baselines" in _one_line_error(capsys, ["--full-baselines", "--baseline-steps", "3"])
    assert "No such option" in _one_line_error(capsys, ["--bogus"])
    assert "--sweep" in _one_line_error(capsys, ["--sweep", "1,x"])
    assert "--images" in _one_line_error(capsys, ["--images", str(tmp_path / "none")])
    assert "--config must be one of" in _one_line_error(capsys, ["--config", "ffhq2048"])  # core.source's message
    assert "--w-encoder" in _one_line_error(capsys, ["--checkpoint", str(tmp_path / "x.pt")])
    if not torch.cuda.is_available():
        assert "CUDA is not available" in _one_line_error(capsys, ["--device", "cuda", "--config", "tiny",
                                                                   "--out", str(tmp_path)])
    assert not any(tmp_path.iterdir())  # nothing was written before the refusal


def test_missing_lpips_weights_skips_baselines(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="hs-bench needs the bench extra (matplotlib)")
    empty = tmp_path / "lpips"
    empty.mkdir()
    out = tmp_path / "out"
    rc = main(["--config", "tiny", "--device", "cpu", "--batch", "1", "--methods", "projector,pti", "--out", str(out),
               "--lpips-weights", str(empty)])
    assert rc == 0
    r = json.loads((out / "bench.json").read_text())
    for name in ("projector", "pti"):
        assert r["methods"][name]["status"] == "skipped"
        assert "vgg16.ckpt not found" in r["methods"][name]["reason"]
    assert (out / "ms_per_image.png").stat().st_size > 0


def test_helpers():
    assert e2e.psnr(0.01) == pytest.approx(20.0)
    p = e2e.percentiles([1.0, 2.0, 3.0, 4.0, 100.0])
    assert p["p50"] == 3.0 and p["p99"] > p["p95"] > p["p50"]
    assert report._clean({"a": float("inf"), "b": [1.5, float("nan")]}) == {"a": "inf", "b": [1.5, "nan"]}
    x = torch.zeros(1, 3, 4, 4)
    assert e2e.vs_reference(x, x)["max_abs_err"] == 0.0 and e2e.vs_reference(x, x)["psnr_db"] == float("inf")


E_NOTATION = re.compile(r"\d(\.\d+)?[eE][+-]\d")


def test_summary_fits_100_columns_without_a_terminal(bench):
    out, r = bench
    text = (out / "stderr.txt").read_text()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100, max(lines, key=len)
    assert not E_NOTATION.search(text), E_NOTATION.search(text)
    rows = {c[0]: c for c in ([x.strip() for x in line.strip("│").split("│")] for line in lines
                              if line.startswith("│ ")) if c[0] in r["methods"]}
    assert set(rows) == set(r["methods"]), rows.keys()
    for name in CPU_METHODS:  # method, status, time/image, x vs ref, PSNR dB, note
        assert rows[name][1] in ("ok", "noisy"), rows[name]
        assert re.fullmatch(r"~?[0-9.]+ (ms|s|min)", rows[name][2]), rows[name]
    assert rows["projector"][2].startswith("~") and rows["projector"][2].endswith(" min")
    assert rows["hyperstyle-trt"][1] == "skipped" or torch.cuda.is_available()
    # a baseline's quality after 1 step is not in the PSNR column but in the note, labelled as after its steps
    for name in ("projector", "pti"):
        assert rows[name][4] == "-"
    assert "full detail: bench.json, or hs-bench --wide" in text
    assert "load average (1 min)" in text
    assert re.search(r"sweep hyperstyle-fast: B=1: [0-9.]+ (ms|s|min)/image, B=2: [0-9.]+ (ms|s|min)/image", text)


def test_json_records_spread_load_and_rules(bench):
    _, r = bench
    assert r["trust"]["percentile_min_samples"] == {"p95": 20, "p99": 100}
    assert "cv > 0.2" in r["trust"]["noisy"]["rule"] and "max/min > 2" in r["trust"]["noisy"]["rule"]
    m = r["machine"]
    assert m["cpu_count"] >= 1
    assert {"load_start", "load_end"} <= set(m)
    if hasattr(__import__("os"), "getloadavg"):
        assert len(m["load_start"]) == 3 and len(m["load_end"]) == 3
    for name in CPU_METHODS:
        sp = r["methods"][name]["spread"]
        for k in ("n", "min", "median", "max", "cv", "noisy", "why"):
            assert k in sp, (name, k)
        assert sp["min"] <= sp["median"] <= sp["max"] and isinstance(sp["noisy"], bool)
        assert sp["n"] >= 2 or sp["cv"] is None
        assert sp["noisy"] == bool(sp["why"])
    for name in ("hyperstyle-ref", "hyperstyle-fast", "hyperstyle-ort"):
        assert r["methods"][name]["quality"]["final"] is True
    q = r["methods"]["projector"]["quality"]
    assert q["final"] is False and q["after"] == "1 step" and "not the full schedule" in q["note"]
    assert r["methods"]["pti"]["quality"]["after"] == "1 W + 1 tuning steps"
    assert r["methods"]["projector"]["short_label"] == "projected from 1 step"


def test_legend_names_only_plotted_kinds(bench):
    _, r = bench
    from hyperstyle_trt.benchmarks.report import BAR_KINDS, ms_per_image_figure

    fig, ax = ms_per_image_figure(r)
    try:
        bar_colours = {tuple(round(c, 3) for c in p.get_facecolor()) for p in ax.patches}
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        handles = ax.get_legend().legend_handles
        assert labels and len(labels) == len(handles)
        for h in handles:
            assert tuple(round(c, 3) for c in h.get_facecolor()) in bar_colours, h.get_label()
        # the baselines ran 1 step each: projected, so no "full run" entry
        assert BAR_KINDS["#dd8452"] not in labels and BAR_KINDS["#c44e52"] in labels
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
