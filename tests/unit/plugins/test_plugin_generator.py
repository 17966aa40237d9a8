"""PluginGenerator (NHWC, torch.ops.hyperstyle.*) equals models.stylegan2.Generator in fp32 on the tiny config, with
distinct per-sample Δ in full, per-channel and toRGB modes; it exports to an ONNX plugin graph (dynamo +
custom_translation_table) that the ONNX reference evaluator runs to the same image and TensorRT parses and builds
(fp32 and fp16, dynamic batch 1..8)."""

from collections import Counter

import numpy as np
import pytest
import torch

from hyperstyle_trt.core.config import get_config
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.models.fill import fill_module_
from hyperstyle_trt.models.stylegan2 import Generator
from hyperstyle_trt.plugins.generator import PluginGenerator
from hyperstyle_trt.plugins.mod_conv.reference import to_ohwi
from _trt_util import build, parse, plugin_layers

MODES = {"conv1": 1, "convs.0": 1, "convs.3": 1, "convs.8": 2, "convs.9": 2, "to_rgbs.0": 1}


@pytest.fixture(scope="module")
def setup():
    cfg = get_config("tiny")
    gen = fill_module_(Generator(cfg.generator), "decoder.").eval()
    pg = PluginGenerator(gen, MODES).eval()
    b = 2
    g = torch.Generator().manual_seed(0)
    codes = torch.randn(b, cfg.generator.n_latent, cfg.generator.style_dim, generator=g)
    specs = {s.name: s for s in gen.specs}
    deltas, full = [], {}
    for name, mode in MODES.items():
        s = specs[name]
        if s.kind == "rgb":
            d = 0.2 * torch.randn(b, 3, s.in_ch, generator=g)
            full[name] = d[..., None, None]  # [B,3,Cin,1,1]
        elif mode == 1:
            full[name] = 0.2 * torch.randn(b, s.out_ch, s.in_ch, 3, 3, generator=g)
            d = to_ohwi(full[name])  # the plugin op takes full delta OHWI [B,Cout,3,3,Cin]
        else:
            d = 0.2 * torch.randn(b, s.out_ch, s.in_ch, generator=g)
            full[name] = d[..., None, None].expand(-1, -1, -1, 3, 3)  # the official 3x3 repeat
        deltas.append(d)
    with torch.no_grad():
        want = gen(codes, full)
        nodelta = gen(codes)
    return gen, pg, codes, deltas, want, nodelta


def test_equals_reference_generator_fp32(setup):
    gen, pg, codes, deltas, want, nodelta = setup
    with torch.no_grad():
        got = pg(codes, *deltas)
    assert got.shape == want.shape == (2, 3, 128, 128)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert (want - nodelta).abs().max() > 1e-2  # the deltas matter, so a dropped Δ would fail
    assert (want[0] - want[1]).abs().max() > 1e-2


def test_ohwi_weights_are_cached_in_inference_and_rebuilt_when_a_weight_changes():
    """Eager no-grad forwards reuse one OHWI copy per layer; an in-place weight update (version bump) rebuilds
    that layer's copy only, so the output follows the weights; writes through .data need clear_weight_cache();
    with autograd on, the transpose stays in the graph."""
    cfg = get_config("tiny")
    gen = fill_module_(Generator(cfg.generator), "decoder.").eval()
    pg = PluginGenerator(gen, {}).eval()
    codes = torch.randn(1, cfg.generator.n_latent, cfg.generator.style_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y0 = pg(codes)
        cached = {k: v[1] for k, v in pg._ohwi_cache.items()}
        assert len(cached) == sum(s.kind != "rgb" for s in gen.specs)
        pg(codes)
        assert all(pg._ohwi_cache[k][1] is v for k, v in cached.items())  # reused, not rebuilt
        w0 = gen.convs[0].conv.weight
        w0.add_(0.5 * torch.randn(w0.shape, generator=torch.Generator().manual_seed(2)))  # in place: new version
        y1 = pg(codes)
        assert pg._ohwi_cache["convs.0"][1] is not cached["convs.0"]
        assert pg._ohwi_cache["convs.1"][1] is cached["convs.1"]
        torch.testing.assert_close(y1, gen(codes), atol=1e-4, rtol=1e-4)
        assert (y1 - y0).abs().max() > 1e-3
        gen.convs[1].conv.weight.data.mul_(-1.0)  # through .data: no version bump, the cache cannot see it
        assert torch.equal(pg(codes), y1)
        pg.clear_weight_cache()
        y2 = pg(codes)
        torch.testing.assert_close(y2, gen(codes), atol=1e-4, rtol=1e-4)
        assert (y2 - y1).abs().max() > 1e-3
    spec = next(s for s in gen.specs if s.name == "convs.1")
    got = pg._ohwi_weight(spec, gen.convs[1].conv.weight[0])  # grad mode: recomputed, still tied to the parameter
    assert got.grad_fn is not None and got is not pg._ohwi_cache["convs.1"][1]


def test_same_parameters_and_names(setup):
    gen, pg, *_ = setup
    assert {k: v.data_ptr() for k, v in pg.decoder.state_dict().items()} == \
        {k: v.data_ptr() for k, v in gen.state_dict().items()}
    assert pg.delta_names == ["delta_conv1", "delta_convs_0", "delta_convs_3", "delta_convs_8", "delta_convs_9",
                              "delta_to_rgbs_0"]


def test_user_errors(setup):
    gen, pg, codes, deltas, *_ = setup
    with pytest.raises(HsError, match="unknown generator layer"):
        PluginGenerator(gen, {"convs.99": 1})
    with pytest.raises(HsError, match="delta mode 2"):
        PluginGenerator(gen, {"to_rgb1": 2})
    with pytest.raises(HsError, match="expected 6 delta inputs"):
        pg(codes, *deltas[:-1])


@pytest.fixture(scope="module")
def exported(setup):
    from hyperstyle_trt.plugins.onnx_export import custom_translation_table

    gen, pg, codes, deltas, want, _ = setup
    batch = torch.export.Dim("B", min=1, max=8)
    prog = torch.onnx.export(pg, (codes, *deltas), dynamo=True, custom_translation_table=custom_translation_table(),
                             input_names=["codes", *pg.delta_names], output_names=["image"],
                             dynamic_shapes=({0: batch}, tuple({0: batch} for _ in deltas)), optimize=True)
    return prog.model_proto


def test_export_gives_plugin_nodes_and_evaluates_to_the_image(setup, exported):
    from hyperstyle_trt.plugins.onnx_ref import run_reference

    gen, pg, codes, deltas, want, _ = setup
    ops = Counter((n.domain, n.op_type) for n in exported.graph.node)
    assert ops[("hyperstyle", "HsModConv")] == 11 and ops[("hyperstyle", "HsToRGB")] == 6
    assert not any(n.op_type in ("Conv", "ConvTranspose") for n in exported.graph.node)
    modes = sorted(next(a.i for a in n.attribute if a.name == "delta_mode") for n in exported.graph.node
                   if n.domain == "hyperstyle")
    assert modes == [0] * 11 + [1] * 4 + [2] * 2
    feeds = {"codes": codes.numpy(), **{n: d.numpy() for n, d in zip(pg.delta_names, deltas)}}
    (img,) = run_reference(exported, feeds)
    np.testing.assert_allclose(img, want.numpy(), atol=1e-4, rtol=1e-4)


@pytest.mark.trt
def test_exported_generator_parses_and_builds(trt, exported):
    net = _parse_and_build(trt, exported, 17)
    assert tuple(net.get_output(0).shape) == (-1, 3, 128, 128)

def _parse_and_build(trt, model, n_plugins):
    parsed, net = parse(trt, model)
    assert len(plugin_layers(trt, net)) == n_plugins
    assert build(trt, parsed, net, dynamic=True, opt=2) is not None
    return net


@pytest.mark.trt
def test_fp16_export_parses_and_builds(trt, setup):
    import copy

    from hyperstyle_trt.plugins.onnx_export import custom_translation_table

    gen, _, codes, deltas, *_ = setup
    pg = PluginGenerator(copy.deepcopy(gen).half(), MODES).eval()
    batch = torch.export.Dim("B", min=1, max=8)
    prog = torch.onnx.export(pg, (codes.half(), *[d.half() for d in deltas]), dynamo=True,
                             custom_translation_table=custom_translation_table(),
                             input_names=["codes", *pg.delta_names], output_names=["image"],
                             dynamic_shapes=({0: batch}, tuple({0: batch} for _ in deltas)), optimize=True)
    net = _parse_and_build(trt, prog.model_proto, 17)
    assert net.get_output(0).dtype == trt.DataType.HALF
