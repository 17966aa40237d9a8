"""`hs-bench` (no sub-command) end to end on the tiny config, CPU: every CPU-capable method runs, bench.json has
every method with its status and figures or reason, the PNG plots are real PNGs; bad flags are one-line errors."""

from __future__ import annotations

import json
import math

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
    rc = main(argv)
    assert rc == 0
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
        assert lat["n"] == 1 and lat["p50"] <= lat["p95"] <= lat["p99"]
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
