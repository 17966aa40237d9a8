"""The IPluginV3 objects' runtime path on a CUDA GPU without a TensorRT engine (TensorRT-RTX cannot run on SM 9.0 and
full TensorRT may be absent): on_shape_change with TensorRT tensor descriptors, then enqueue on raw device pointers
and a side stream, through plugins.<op>.op.launch_raw, compared with the fp32 references.

Tolerance: max abs error <= REL * max|reference| (inputs rounded to T first), as tests/gpu/plugins/test_kernels_gpu.py.
"""

import pytest
import torch

from hyperstyle_trt.plugins import trt_impls
from hyperstyle_trt.plugins.mod_conv.reference import mod_conv_ref
from hyperstyle_trt.plugins.to_rgb.reference import to_rgb_ref

pytestmark = [pytest.mark.gpu, pytest.mark.trt]

REL = {torch.float16: 3e-3, torch.float32: 2e-5}


@pytest.fixture(autouse=True)
def _no_tf32():
    prev = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False  # an exact fp32 reference
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = prev


def _desc(trt, t):
    d = trt.PluginTensorDesc()
    d.dims = trt.Dims(list(t.shape))
    d.type = {torch.float16: trt.DataType.HALF, torch.float32: trt.DataType.FLOAT}[t.dtype]
    d.format = trt.TensorFormat.LINEAR
    return d


def _inputs(key, attrs, dtype, b=3, h=8, cin=32, cout=48):
    g = torch.Generator(device="cuda").manual_seed(0)
    r = lambda *s: torch.randn(*s, device="cuda", generator=g)  # noqa: E731
    if key == "mod_conv":
        f = 2 if attrs["upsample"] else 1
        d = {0: None, 1: 0.3 * r(b, cout, 3, 3, cin), 2: 0.3 * r(b, cout, cin)}[attrs["delta_mode"]]
        t = dict(x=r(b, h, h, cin), style=1 + 0.3 * r(b, cin), weight=r(cout, 3, 3, cin), delta=d,
                 noise=0.2 * r(f * h, f * h), bias=0.2 * r(cout))
    else:
        t = dict(x=r(b, h, h, cin), style=1 + 0.3 * r(b, cin), weight=r(3, cin),
                 delta=0.3 * r(b, 3, cin) if attrs["delta_mode"] else None, bias=0.2 * r(3),
                 skip=r(b, h // 2, h // 2, 3) if attrs["has_skip"] else None)
    return {k: None if v is None else v.to(dtype).contiguous() for k, v in t.items()}


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32], ids=["fp16", "fp32"])
@pytest.mark.parametrize("key, attrs", [("mod_conv", {"upsample": 0, "delta_mode": 1, "demodulate": 1}),
                                        ("mod_conv", {"upsample": 1, "delta_mode": 2, "demodulate": 1}),
                                        ("to_rgb", {"has_skip": 1, "delta_mode": 1}),
                                        ("to_rgb", {"has_skip": 0, "delta_mode": 0})])
def test_plugin_enqueue_matches_reference(key, attrs, dtype):
    from hyperstyle_trt.core.flavor import get_flavor
    from hyperstyle_trt.plugins.trt_common import plugin_classes

    trt = get_flavor().module
    Plugin, Creator = plugin_classes(key)
    plugin = Creator().create_plugin("n0", Plugin(attrs).get_fields_to_serialize(), trt.TensorRTPhase.RUNTIME)
    plugin = plugin.attach_to_context(None)
    t = _inputs(key, attrs, dtype)
    ins = [t[n] for n in plugin.input_names]
    f32 = {k: None if v is None else v.float() for k, v in t.items()}
    if key == "mod_conv":
        want = mod_conv_ref(**f32, **attrs)
    else:
        want = to_rgb_ref(**f32, delta_mode=attrs["delta_mode"])
    out = torch.full(want.shape, float("nan"), device="cuda", dtype=dtype)
    plugin.on_shape_change([_desc(trt, x) for x in ins], [_desc(trt, out)])
    impl = trt_impls()[key]  # the workspace TensorRT would hand over (fp32 layers run staged: they need one)
    need = 0 if impl.workspace is None else impl.workspace(plugin.attrs, plugin.shapes, plugin.dtype)
    ws = torch.empty(max(need, 1), device="cuda", dtype=torch.uint8)
    stream = torch.cuda.Stream()
    torch.cuda.synchronize()
    assert plugin.enqueue([], [], [x.data_ptr() for x in ins], [out.data_ptr()], ws.data_ptr() if need else 0,
                          stream.cuda_stream) == 0
    stream.synchronize()
    err = (out.float() - want).abs().max().item()
    assert torch.isfinite(out).all() and err <= REL[dtype] * want.abs().max().item(), err


def test_plugin_enqueue_staged_layer_with_its_workspace():
    """A 64^2 -> 128^2 upsampling node runs staged: the plugin sizes its workspace from the profile's max dims
    (get_workspace_size), enqueue gets a buffer of that size, as TensorRT hands it over."""
    from hyperstyle_trt.core.flavor import get_flavor
    from hyperstyle_trt.plugins.trt_common import plugin_classes

    trt = get_flavor().module
    attrs = {"upsample": 1, "delta_mode": 1, "demodulate": 1}
    Plugin, Creator = plugin_classes("mod_conv")
    plugin = Creator().create_plugin("n0", Plugin(attrs).get_fields_to_serialize(), trt.TensorRTPhase.RUNTIME)
    t = _inputs("mod_conv", attrs, torch.float16, b=3, h=64, cin=32, cout=48)
    ins = [t[n] for n in plugin.input_names]
    dyn = []
    for name, x in zip(plugin.input_names, ins):
        d = trt.DynamicPluginTensorDesc()
        d.desc = _desc(trt, x)
        batched = name in ("x", "style", "delta")
        d.max = trt.Dims([4] + list(x.shape[1:]) if batched else list(x.shape))  # a profile up to B=4
        dyn.append(d)
    size = plugin.get_workspace_size(dyn, [])
    assert size >= 4 * 48 * 36 * 32 * 2  # the 4-phase weights of the largest batch
    want = mod_conv_ref(**{k: None if v is None else v.float() for k, v in t.items()}, **attrs)
    out = torch.full(want.shape, float("nan"), device="cuda", dtype=torch.float16)
    plugin = plugin.attach_to_context(None)
    plugin.on_shape_change([_desc(trt, x) for x in ins], [_desc(trt, out)])
    ws = torch.full((size,), 255, device="cuda", dtype=torch.uint8)
    stream = torch.cuda.Stream()
    ptrs = [x.data_ptr() for x in ins]
    torch.cuda.synchronize()  # inputs were written on the default stream
    assert plugin.enqueue([], [], ptrs, [out.data_ptr()], ws.data_ptr(), stream.cuda_stream) == 0  # compiles
    torch.cuda.synchronize()
    allocs = torch.cuda.memory_stats()["allocation.all.allocated"]  # a running count of allocation requests
    assert plugin.enqueue([], [], ptrs, [out.data_ptr()], ws.data_ptr(), stream.cuda_stream) == 0
    stream.synchronize()
    assert torch.cuda.memory_stats()["allocation.all.allocated"] == allocs  # TensorRT's workspace, no allocation
    err = (out.float() - want).abs().max().item()
    assert torch.isfinite(out).all() and err <= REL[torch.float16] * want.abs().max().item(), err
    assert (ws != 255).float().mean() > 0.5
    from hyperstyle_trt.core.errors import HsError

    with pytest.raises(HsError, match="gave no workspace"):  # an engine built without it fails loudly
        plugin.enqueue([], [], ptrs, [out.data_ptr()], 0, stream.cuda_stream)
