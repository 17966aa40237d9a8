"""Compiled Triton kernels on a CUDA GPU vs the fp32 references (TF32 off) on every FFHQ-1024 layer shape at B=1
and B=8, delta full / per-channel / absent: the staged path (weight kernel + ready-weight conv, split-K + finalize
where strategy.TUNED splits) that every layer runs, and the fused kernel on every layer (TensorRT's AOT path runs
it); the torch custom ops inside a captured CUDA graph (a split-K and a plain staged layer) and torch.compile; the
raw-pointer launcher (TensorRT enqueue path) on a side stream, with and without a caller-given workspace.

Tolerance: max abs error <= REL * max|reference| (fp16 in/out, fp32 accumulation; inputs rounded to fp16 first, so
only the kernel's own rounding counts). fp32 kernels use IEEE dots and get a tight bound, against a float64
reference.
"""

import pytest
import torch

from hyperstyle_trt.core.config import get_config
from hyperstyle_trt.plugins.mod_conv.reference import mod_conv_ref
from hyperstyle_trt.plugins.to_rgb.reference import to_rgb_ref

pytestmark = pytest.mark.gpu

REL = {torch.float16: 3e-3, torch.float32: 2e-5}
LAYERS = get_config("ffhq1024").layers
CONVS = [s for s in LAYERS if s.kind != "rgb"]
RGBS = [s for s in LAYERS if s.kind == "rgb"]


def _check(got, want, dtype):
    assert got.dtype == dtype and got.shape == want.shape
    err = (got.float() - want).abs().max().item()
    scale = want.abs().max().item()
    assert torch.isfinite(got).all() and err <= REL[dtype] * scale, f"max abs err {err:.3g}, max|ref| {scale:.3g}"


def _conv_inputs(spec, b, delta_mode, dtype, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    up = spec.kind == "up"
    h = spec.res // 2 if up else spec.res
    r = lambda *s: torch.randn(*s, device="cuda", generator=g)  # noqa: E731
    t = dict(x=r(b, h, h, spec.in_ch), style=1 + 0.3 * r(b, spec.in_ch), weight=r(spec.out_ch, 3, 3, spec.in_ch),
             delta={0: None, 1: 0.3 * r(b, spec.out_ch, 3, 3, spec.in_ch), 2: 0.3 * r(b, spec.out_ch, spec.in_ch)}[
                 delta_mode],
             noise=0.2 * r(spec.res, spec.res), bias=0.2 * r(spec.out_ch))
    return {k: None if v is None else v.to(dtype) for k, v in t.items()}, dict(upsample=int(up), delta_mode=delta_mode)


def _rgb_inputs(spec, b, delta_mode, dtype, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    h, c = spec.res, spec.in_ch
    r = lambda *s: torch.randn(*s, device="cuda", generator=g)  # noqa: E731
    t = dict(x=r(b, h, h, c), style=1 + 0.3 * r(b, c), weight=r(3, c), delta=0.3 * r(b, 3, c) if delta_mode else None,
             bias=0.2 * r(3), skip=r(b, h // 2, h // 2, 3) if spec.idx > 1 else None)
    return {k: None if v is None else v.to(dtype) for k, v in t.items()}


def _f32(t):
    return {k: None if v is None else v.float() for k, v in t.items()}


def _f64(t):
    return {k: None if v is None else v.double() for k, v in t.items()}


# The staged path (production tiles and split-K of strategy.TUNED for each batch) on every layer, then the fused
# kernel on every layer (TensorRT's AOT path runs it everywhere).
CONV_CASES = [(s, "staged") for s in CONVS] + [(s, "fused") for s in CONVS]


@pytest.mark.parametrize("delta_mode", [0, 1, 2], ids=["nodelta", "full", "perchan"])
@pytest.mark.parametrize("b", [1, 8])
@pytest.mark.parametrize("spec, strategy", CONV_CASES,
                         ids=[f"{s.name}-{s.in_ch}x{s.out_ch}@{s.res}-{k}" for s, k in CONV_CASES])
def test_mod_conv_kernel_every_ffhq_layer(spec, strategy, b, delta_mode):
    from hyperstyle_trt.plugins.mod_conv.op import run_cuda

    t, a = _conv_inputs(spec, b, delta_mode, torch.float16)
    _check(run_cuda(**t, **a, demodulate=1, strategy=strategy), mod_conv_ref(**_f32(t), **a), torch.float16)


@pytest.mark.parametrize("name, b, dtype, want", [("convs.0", 8, torch.float16, "fused"),
                                                   ("convs.0", 2, torch.float16, "staged"),
                                                   ("convs.0", 8, torch.float32, "staged"),
                                                   ("convs.1", 8, torch.float16, "staged")])
def test_custom_op_dispatch_follows_the_strategy(name, b, dtype, want, monkeypatch):
    """The custom op runs the path plugins.mod_conv.strategy names for the batch and dtype (the fused kernel only for
    fp16 convs.0 at B >= 3, FUSED_PICKS), and the result matches the reference."""
    import hyperstyle_trt.plugins.mod_conv.kernel as kernel
    import hyperstyle_trt.plugins.mod_conv.staged as staged
    from hyperstyle_trt.plugins.mod_conv.op import mod_conv

    calls = []
    for mod, fn in ((kernel, "mod_conv_triton"), (staged, "mod_conv_staged")):
        real = getattr(mod, fn)
        monkeypatch.setattr(mod, fn, lambda *a, _r=real, _f=fn, **k: calls.append(_f) or _r(*a, **k))
    spec = next(s for s in CONVS if s.name == name)
    t, a = _conv_inputs(spec, b, 1, dtype)
    _check(mod_conv(**t, **a, impl="cuda"), mod_conv_ref(**(_f32(t) if dtype == torch.float16 else _f64(t)), **a),
           dtype)
    assert calls == ["mod_conv_triton" if want == "fused" else "mod_conv_staged"]


@pytest.mark.parametrize("name, b", [("conv1", 1), ("convs.3", 8)])
def test_split_k_layer_writes_its_partial_sums_through_the_given_workspace(name, b):
    """conv1 at B=1 (8 splits) and convs.3 at B=8 (4 splits) through the enqueue launcher: the fp32 partial sums land
    in the workspace's split-K region (filled with 0xFF before: overwritten), and the output matches."""
    from hyperstyle_trt.plugins.mod_conv.op import launch_raw
    from hyperstyle_trt.plugins.mod_conv.strategy import split_k, workspace_bytes, workspace_layout

    spec = next(s for s in CONVS if s.name == name)
    h, up = (spec.res // 2, 1) if spec.kind == "up" else (spec.res, 0)
    split = split_k(b, h, h, spec.in_ch, spec.out_ch, up, "float16")
    assert split > 1
    lay = workspace_layout(b, spec.in_ch, spec.out_ch, up, "fp16", split, h * h)
    assert workspace_bytes(b, h, h, spec.in_ch, spec.out_ch, up, "float16") == lay.total
    t, a = _conv_inputs(spec, b, 1, torch.float16)
    y = torch.full((b, spec.res, spec.res, spec.out_ch), float("nan"), device="cuda", dtype=torch.float16)
    ws = torch.full((lay.total,), 255, device="cuda", dtype=torch.uint8)
    torch.cuda.synchronize()
    launch_raw(**{k: v.data_ptr() for k, v in t.items()}, y=y.data_ptr(), B=b, H=h, W=h, Cin=spec.in_ch,
               Cout=spec.out_ch, upsample=up, delta_mode=1, demodulate=1, dtype="float16",
               stream=torch.cuda.current_stream().cuda_stream, workspace=ws.data_ptr())
    torch.cuda.synchronize()
    _check(y, mod_conv_ref(**_f32(t), **a), torch.float16)
    assert (ws[lay.part:] != 255).float().mean() > 0.5


@pytest.mark.parametrize("name", ["conv1", "convs.2"])
def test_fp32_custom_op_runs_staged_and_tight(name, monkeypatch):
    """fp32 through the custom op (the path of fp32 PyTorch code and engines) dispatches to the staged pair on a
    small layer too, and matches the float64 reference tightly."""
    import hyperstyle_trt.plugins.mod_conv.staged as staged
    from hyperstyle_trt.plugins.mod_conv.op import mod_conv

    calls = []
    real = staged.mod_conv_staged
    monkeypatch.setattr(staged, "mod_conv_staged", lambda *a, **k: calls.append(1) or real(*a, **k))
    spec = next(s for s in CONVS if s.name == name)
    t, a = _conv_inputs(spec, 2, 1, torch.float32)
    _check(mod_conv(**t, **a, impl="cuda"), mod_conv_ref(**_f64(t), **a), torch.float32)
    assert calls == [1]


@pytest.mark.parametrize("delta_mode", [0, 1], ids=["nodelta", "delta"])
@pytest.mark.parametrize("b", [1, 8])
@pytest.mark.parametrize("spec", RGBS, ids=lambda s: f"{s.name}-{s.in_ch}@{s.res}")
def test_to_rgb_kernel_every_ffhq_layer(spec, b, delta_mode):
    from hyperstyle_trt.plugins.to_rgb.kernel import to_rgb_triton

    t = _rgb_inputs(spec, b, delta_mode, torch.float16)
    _check(to_rgb_triton(**t, delta_mode=delta_mode), to_rgb_ref(**_f32(t), delta_mode=delta_mode), torch.float16)


@pytest.mark.parametrize("name", ["convs.4", "convs.5"])
def test_fp32_kernels_are_tight(name):
    from hyperstyle_trt.plugins.mod_conv.kernel import mod_conv_triton
    from hyperstyle_trt.plugins.mod_conv.staged import mod_conv_staged
    from hyperstyle_trt.plugins.to_rgb.kernel import to_rgb_triton

    spec = next(s for s in CONVS if s.name == name)
    t, a = _conv_inputs(spec, 2, 1, torch.float32)
    want = mod_conv_ref(**_f64(t), **a)  # float64: cuDNN's fp32 algorithms (Winograd, FFT) may err near the bound
    _check(mod_conv_triton(**t, **a), want, torch.float32)
    _check(mod_conv_staged(**t, **a), want, torch.float32)
    t = _rgb_inputs(RGBS[3], 2, 1, torch.float32)
    _check(to_rgb_triton(**t, delta_mode=1), to_rgb_ref(**_f64(t), delta_mode=1), torch.float32)


@pytest.mark.parametrize("name", ["conv1", "convs.8"], ids=["split-k", "staged"])
def test_custom_ops_inside_a_captured_cuda_graph(name):
    """B=2: conv1 (512->512 at 4^2, split-K: ready conv + finalize) and convs.8 (512->256 upsample to 128^2); the
    workspace is allocated inside the capture, from the graph's private pool."""
    import hyperstyle_trt.plugins.mod_conv.op  # noqa: F401  (registers the ops)
    import hyperstyle_trt.plugins.to_rgb.op  # noqa: F401

    spec_c = next(s for s in CONVS if s.name == name)
    spec_r = next(s for s in RGBS if s.res == spec_c.res)
    tc, a = _conv_inputs(spec_c, 2, 1, torch.float16, seed=1)
    tr = _rgb_inputs(spec_r, 2, 0, torch.float16, seed=2)

    def step():
        y = torch.ops.hyperstyle.mod_conv(tc["x"], tc["style"], tc["weight"], tc["delta"], tc["noise"], tc["bias"],
                                          a["upsample"], a["delta_mode"], 1)
        return y, torch.ops.hyperstyle.to_rgb(y, tr["style"], tr["weight"], None, tr["bias"], tr["skip"], 0)

    step()  # compile outside the capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y, rgb = step()
    for seed in (3, 4):  # new inputs copied into the captured buffers, then replay
        new, _ = _conv_inputs(spec_c, 2, 1, torch.float16, seed=seed)
        for k in ("x", "style", "delta"):
            tc[k].copy_(new[k])
        graph.replay()
        torch.cuda.synchronize()
        want_y = mod_conv_ref(**_f32(tc), **a)
        _check(y, want_y, torch.float16)
        want_rgb = to_rgb_ref(y.float(), tr["style"].float(), tr["weight"].float(), None, tr["bias"].float(),
                              None if tr["skip"] is None else tr["skip"].float())
        _check(rgb, want_rgb, torch.float16)


def test_custom_op_under_torch_compile():
    import hyperstyle_trt.plugins.mod_conv.op  # noqa: F401

    spec = next(s for s in CONVS if s.name == "convs.3")
    t, a = _conv_inputs(spec, 2, 2, torch.float16)
    fn = torch.compile(lambda *xs: torch.ops.hyperstyle.mod_conv(*xs, a["upsample"], 2, 1), fullgraph=True)
    got = fn(t["x"], t["style"], t["weight"], t["delta"], t["noise"], t["bias"])
    _check(got, mod_conv_ref(**_f32(t), **a), torch.float16)


@pytest.mark.parametrize("given", [False, True], ids=["own-workspace", "given-workspace"])
def test_launch_raw_staged_layer_on_a_side_stream(given):
    """convs.10 (256->128, upsample to 256^2) through the TensorRT enqueue launcher: the workspace TensorRT would
    hand over (sized by the plugin's workspace_size), or none (allocated on the stream)."""
    from hyperstyle_trt.plugins.mod_conv.op import launch_raw
    from hyperstyle_trt.plugins.mod_conv.strategy import workspace_bytes

    spec = next(s for s in CONVS if s.name == "convs.10")
    t, a = _conv_inputs(spec, 3, 1, torch.float16)
    y = torch.full((3, 256, 256, 128), float("nan"), device="cuda", dtype=torch.float16)
    need = workspace_bytes(3, 128, 128, 256, 128, 1, "float16")
    assert need > 0
    ws = torch.full((need,), 255, device="cuda", dtype=torch.uint8) if given else None
    s = torch.cuda.Stream()
    p = {k: v.data_ptr() for k, v in t.items()}
    torch.cuda.synchronize()  # inputs were written on the default stream
    launch_raw(**p, y=y.data_ptr(), B=3, H=128, W=128, Cin=256, Cout=128, upsample=1, delta_mode=1, demodulate=1,
               dtype="float16", stream=s.cuda_stream, workspace=ws.data_ptr() if given else 0)  # compiles
    torch.cuda.synchronize()
    allocs = torch.cuda.memory_stats()["allocation.all.allocated"]  # a running count of allocation requests
    launch_raw(**p, y=y.data_ptr(), B=3, H=128, W=128, Cin=256, Cout=128, upsample=1, delta_mode=1, demodulate=1,
               dtype="float16", stream=s.cuda_stream, workspace=ws.data_ptr() if given else 0)
    s.synchronize()
    new_allocs = torch.cuda.memory_stats()["allocation.all.allocated"] - allocs  # before the reference allocates
    _check(y, mod_conv_ref(**_f32(t), **a), torch.float16)
    if given:  # the weights went through the given buffer, and nothing was allocated for them
        assert new_allocs == 0
        assert (ws != 255).float().mean() > 0.5
    else:  # the launcher allocated the workspace itself
        assert new_allocs >= 1


def test_launch_raw_on_a_side_stream():
    from hyperstyle_trt.plugins.mod_conv.op import launch_raw as mc_raw
    from hyperstyle_trt.plugins.to_rgb.op import launch_raw as rgb_raw

    spec = next(s for s in CONVS if s.name == "convs.2")  # upsample 512->512 to 16^2
    t, a = _conv_inputs(spec, 3, 1, torch.float16)
    y = torch.full((3, 16, 16, 512), float("nan"), device="cuda", dtype=torch.float16)
    s = torch.cuda.Stream()
    torch.cuda.synchronize()
    p = {k: v.data_ptr() for k, v in t.items()}
    mc_raw(**p, y=y.data_ptr(), B=3, H=8, W=8, Cin=512, Cout=512, upsample=1, delta_mode=1, demodulate=1,
           dtype="float16", stream=s.cuda_stream)
    s.synchronize()
    _check(y, mod_conv_ref(**_f32(t), **a), torch.float16)

    tr = _rgb_inputs(RGBS[1], 3, 1, torch.float16)  # to_rgbs.0: 512 channels at 8^2, with skip
    rgb = torch.full((3, 8, 8, 3), float("nan"), device="cuda", dtype=torch.float16)
    pr = {k: v.data_ptr() for k, v in tr.items()}
    rgb_raw(**pr, y=rgb.data_ptr(), B=3, H=8, W=8, Cin=512, has_skip=1, delta_mode=1, dtype="float16",
            stream=s.cuda_stream)
    s.synchronize()
    _check(rgb, to_rgb_ref(**_f32(tr), delta_mode=1), torch.float16)
