"""benchmarks/kernels.py on CPU: the layer list (17 tuned StyledConvs + 9 toRGBs of FFHQ-1024), FLOP counting, and a
clean one-line refusal without a CUDA GPU."""

from pathlib import Path

import pytest
import torch

from hyperstyle_trt.benchmarks import kernels as kb
from hyperstyle_trt.core.errors import HsError


def test_layer_list_is_the_tuned_convs_and_every_to_rgb():
    specs = kb.bench_layers()
    convs = [s for s in specs if s.kind != "rgb"]
    assert len(convs) == 17 and len(specs) == 26
    assert sum(s.kind == "up" for s in convs) == 8 and convs[0].name == "conv1"
    cases = kb.bench_cases((1, 8))
    assert len(cases) == 52 and {c.batch for c in cases} == {1, 8}
    assert all(c.delta_mode == (0 if c.layer.kind == "rgb" else 1) for c in cases)


def test_flops_per_case():
    by = {(c.layer.name, c.batch): c for c in kb.bench_cases((1, 8))}
    assert by["convs.15", 1].flops == 2 * 1024 * 1024 * 32 * 32 * 9
    assert by["convs.14", 8].flops == 8 * 2 * 512 * 512 * 32 * 64 * 9  # upsampling: at the input resolution
    assert by["to_rgbs.7", 1].flops == 2 * 1024 * 1024 * 3 * 32
    total = sum(c.flops for c in kb.bench_cases((1,)) if c.layer.kind != "rgb")
    assert 145e9 < total < 152e9  # ~74.3 GMAC per generator pass (docs/architecture.md §4, toRGBs and blur excluded)


def test_unknown_layer_is_a_user_error():
    with pytest.raises(HsError, match="unknown kernel-bench layers"):
        kb.bench_cases(layers=["convs.99"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_refuses_cleanly_without_cuda(capsys):
    import subprocess
    import sys

    with pytest.raises(HsError, match="needs a CUDA GPU"):
        kb.run_kernel_bench(batch_sizes=(1,), layers=["conv1"])
    # main() is the command behind core.entry.run: the HsError becomes one `error:` line and exit 2
    assert kb.main(["--batch", "1", "--layers", "conv1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: hs-bench kernels needs a CUDA GPU") and err.count("\n") == 1
    r = subprocess.run([sys.executable, "-m", "hyperstyle_trt.benchmarks.kernels", "--batch", "1"], capture_output=True,
                       text=True,
                       timeout=120, cwd=Path(__file__).resolve().parents[3])
    assert r.returncode == 2 and r.stderr.startswith("error: hs-bench kernels needs a CUDA GPU")
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def _row(layer, kind, res, batch, ours, route, pick="fused", other=None):
    """A bench row whose pick ran in `ours` µs; `other`: the other strategy's time (StyledConvs)."""
    fused, staged = (ours, other) if pick == "fused" else (other, ours)
    if kind == "rgb":
        staged = None
    return dict(layer=layer, kind=kind, res=res, batch=batch, fused_us=fused, staged_us=staged, pick=pick,
                kernel_us=ours, route_us=route, speedup=route / ours)


def test_goals_report_met_and_missed_with_the_figures():
    rows = [_row("conv1", "conv", 4, 8, 10.0, 50.0, other=30.0), _row("convs.5", "conv", 32, 8, 10.0, 15.0, other=9.0),
            _row("convs.15", "conv", 1024, 8, 100.0, 90.0, "staged", 120.0),
            _row("to_rgbs.7", "rgb", 1024, 8, 5.0, 20.0)]
    g = kb.goals(rows)
    assert g[0].startswith("MISS") and "convs.15@B8 0.90x" in g[0]
    assert g[1].startswith("MISS") and "convs.5@B8 1.50x" in g[1] and "conv1" not in g[1]
    assert g[2].startswith("MISS") and "120 µs ours vs 155 µs route = 1.29x" in g[2] and "125 vs 175" in g[2]
    assert "strategy" in g[3] and "convs.5@B8 (fused 10.0 vs 9.0 µs)" in g[3] and "convs.15" not in g[3]
    fast = [_row("conv1", "conv", 4, 8, 10.0, 50.0, other=12.0), _row("convs.9", "conv", 128, 8, 10.0, 25.0, "staged",
                                                                      10.4)]
    g = kb.goals(fast)
    assert all(line.startswith("MET") for line in g[:-1]) and "within 5% of the faster path on all 2 rows" in g[-1]


def test_goals_mark_a_partial_run_and_eager_rows():
    rows = [_row("conv1", "conv", 4, 8, 10.0, 50.0, other=30.0), _row("convs.5", "conv", 32, 8, 10.0, 35.0, other=19.0)]
    rows[1]["timing"] = "graph/graph/eager"
    g = kb.goals(rows, expected=52)
    assert all(line.endswith("[partial: 2/52 rows]") for line in g), g
    assert any(line.startswith("NOTE timing: eager (not CUDA-graph) or failed on 1 rows: convs.5@B8") for line in g), g
    rows[1]["timing"], rows[1]["route_layout"] = "graph", "nchw"
    rows[1]["route_timing_by_layout"] = {"nchw": "graph", "cl": "failed: no engine"}
    assert any("convs.5@B8 route cl (failed: no engine)" in line for line in kb.goals(rows)), kb.goals(rows)
    assert not any("partial" in line or "NOTE" in line for line in kb.goals(rows[:1], expected=1))


@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("layer", ["conv1", "convs.0", "to_rgbs.0", "to_rgbs.1"])
def test_route_layouts_equal_the_reference_and_keep_their_layout(layout, layer):
    """Both route layouts compute the reference's math (fp32, CPU) and keep activations as stored: "cl" works on
    [1,B*C,H,W] channels_last (memory [H,W,B,C]) from input to output, so no layer converts layouts."""
    c = next(c for c in kb.bench_cases((2,), [layer], config="tiny"))
    t = kb._inputs(c, "cpu")
    ref = kb.fp32_reference(c, t)
    y = kb.torch_route(c, t, layout)()
    torch.testing.assert_close(y.permute(0, 2, 3, 1), ref, rtol=1e-4, atol=1e-4)
    if layout == "nchw" and c.layer.kind != "rgb":  # torch's conv dispatch runs NCHW: no hidden relayout
        assert y.is_contiguous(), y.stride()
    if layout == "cl":
        x = kb.route_input(t["x"], "cl")
        assert x.is_contiguous(memory_format=torch.channels_last) and x.shape[0] == 1
        # the standard strides, batch included (what torch's conv dispatch needs to see channels_last)
        assert x.stride() == torch.empty(x.shape, memory_format=torch.channels_last).stride()
        if c.layer.kind != "rgb":
            b, ch, h, w = y.shape
            assert y.stride() == (ch, 1, w * b * ch, b * ch), y.stride()  # memory [H,W,B,C]
    with pytest.raises(HsError, match="route layout must be one of"):
        kb.route_input(t["x"], "nhwc")


def test_tiles_option_parses_or_refuses_in_one_line():
    assert kb.parse_tiles("128x64x32/w8/s3") == kb.TileConfig(128, 64, 32, 8, 3)
    with pytest.raises(HsError, match="--tiles must look like"):
        kb.parse_tiles("128x64")


def test_harness_dry_run_on_cpu_in_the_interpreter(triton_interp):
    """Everything `hs-bench kernels` does except CUDA timing, run in the Triton interpreter on the tiny config: the
    inputs in the op contract (OHWI), the fused kernel, the PyTorch route, the fp32 reference, the error columns and
    the goal lines. So the GPU run cannot fail on the harness itself."""
    layers = ["conv1", "convs.0", "to_rgbs.0", "convs.3"]  # plain, upsampling, toRGB with skip; small resolutions
    rows = triton_interp.call("hyperstyle_trt.benchmarks.kernels:run_kernel_bench", batch_sizes=(1, 2), layers=layers,
                              warmup=1,
                              iters=1, config="tiny", device="cpu")
    cases = kb.bench_cases((1, 2), layers, config="tiny")
    assert [(r["layer"], r["batch"]) for r in rows] == [(c.layer.name, c.batch) for c in cases]
    assert {r["kind"] for r in rows} == {"conv", "up", "rgb"}
    for r in rows:  # fp16 kernels and route (both layouts) vs the fp32 reference: fp16 rounding, not wrong math
        assert r["ref_max"] > 0.1 and r["fused_err"] <= 3e-3 * r["ref_max"], r
        assert set(r["route_err_by_layout"]) == set(kb.ROUTE_LAYOUTS) == set(r["route_us_by_layout"]), r
        assert all(e <= 1e-2 * r["ref_max"] for e in r["route_err_by_layout"].values()), r
        assert r["route_us"] == min(r["route_us_by_layout"].values()) == r["route_us_by_layout"][r["route_layout"]]
        assert r["timing"] == "cpu" and r["fused_us"] > 0 and r["speedup"] > 0
        if r["kind"] == "rgb":
            assert r["staged_us"] is None and r["pick"] == "fused"
        else:  # both strategies ran; every layer runs staged (plugins.mod_conv.strategy)
            assert r["staged_err"] <= 3e-3 * r["ref_max"] and r["staged_us"] > 0 and r["pick"] == "staged", r
        assert r["kernel_us"] == (r["staged_us"] if r["pick"] == "staged" else r["fused_us"])
    assert len(kb.goals(rows)) == 5  # every-layer, <= 32^2, B=1 and B=2 sums, strategy
    kb.print_table(rows)


def test_cli_dry_run_writes_json_after_every_row(triton_interp, tmp_path):
    """`hs-bench kernels --device cpu --json F` (interpreter): progress lines, the JSON rewritten atomically after
    each row (so a time limit keeps the finished rows), complete: true at the end."""
    import json

    out = tmp_path / "k.json"
    args = ["--batch", "1", "--layers", "conv1", "to_rgbs.0", "--warmup", "1", "--iters", "1", "--config", "tiny",
            "--device", "cpu", "--json", str(out)]
    assert triton_interp.call("hyperstyle_trt.benchmarks.kernels:main", args) == 0
    data = json.loads(out.read_text())
    assert data["complete"] is True and [r["layer"] for r in data["rows"]] == ["conv1", "to_rgbs.0"]
    assert data["goals"] and not (tmp_path / "k.json.tmp").exists()
