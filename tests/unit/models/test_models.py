"""Behaviour of the reference modules on the tiny config (seconds)."""

import pytest
import torch

from hyperstyle_trt.models.checkpoint import build_model
from hyperstyle_trt.core.config import HypernetConfig, get_config
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.models.hyperstyle import HyperStyle
from hyperstyle_trt.models.hypernet import SharedWeightsHyperNetResNet
from hyperstyle_trt.models.fill import fill_module_


@pytest.fixture(scope="module")
def tiny():
    return build_model("tiny", quiet=True)


def _x(b=2, seed=0):
    return torch.rand(b, 3, 64, 64, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_invert_shapes_and_iterations(tiny):
    cfg = tiny.cfg
    out = tiny.invert(_x(), n_iters=3, return_iterations=True)
    assert out.image.shape == (2, 3, 128, 128) and out.image_pooled.shape == (2, 3, 64, 64)
    assert out.codes.shape == (2, 12, 32)
    assert len(out.iterations) == 4
    assert list(out.deltas) == [s.name for s in cfg.tuned]
    for s in cfg.tuned:
        assert out.deltas[s.name].shape == (2, s.out_ch, s.in_ch, 3, 3)


def test_deltas_accumulate_additively_and_codes_stay_fixed(tiny):
    x = _x()
    out = tiny.invert(x, n_iters=2, return_iteration_deltas=True)
    codes = tiny.encode(x)
    assert torch.equal(out.codes, codes)
    y0 = tiny.pool(tiny.decoder(codes))
    d1 = tiny.hypernet(torch.cat([x, y0], 1))
    y1 = tiny.pool(tiny.decoder(codes, d1))
    d2 = tiny.hypernet(torch.cat([x, y1], 1))
    for k in d1:
        assert torch.equal(out.iteration_deltas[0][k], d1[k])
        assert torch.equal(out.deltas[k], d1[k] + d2[k])
    assert torch.allclose(out.image, tiny.decoder(codes, {k: d1[k] + d2[k] for k in d1}))


def test_batch_samples_are_independent(tiny):
    x = _x(2)
    both = tiny.invert(x, n_iters=2)
    one = tiny.invert(x[1:], n_iters=2)
    assert torch.allclose(both.image[1:], one.image, atol=1e-5)
    assert not torch.allclose(both.image[0], both.image[1])


def test_latent_avg_is_added_row_wise(tiny):
    x = _x()
    assert torch.equal(tiny.encode(x), tiny.w_encoder(x) + tiny.latent_avg[None])
    assert not torch.equal(tiny.latent_avg[0], tiny.latent_avg[1])


def test_delta_forms_agree(tiny):
    g = tiny.decoder
    codes = torch.randn(2, 12, 32)
    d = {s.name: 0.1 * torch.randn(2, *s.delta_shape) for s in tiny.cfg.tuned}
    as_list = g.delta_list(d)
    assert torch.equal(g(codes, d), g(codes, as_list))
    zero = {k: torch.zeros_like(v) for k, v in d.items()}
    assert torch.allclose(g(codes, zero), g(codes), atol=1e-5)  # zero delta == no delta (rounding differs ~1e-7)
    assert not torch.allclose(g(codes, d), g(codes), atol=1e-3)


def test_demodulation_cancels_a_uniform_filter_scale(tiny):
    # docs/architecture.md §3: demod is computed on the offset weight, so a delta scaling a whole filter uniformly is
    # cancelled.
    g = tiny.decoder
    codes = torch.randn(1, 12, 32)
    s = tiny.cfg.layers[15]  # convs.9, a demodulated 3x3 conv
    const = torch.full((1, *s.delta_shape), 0.7)
    assert torch.allclose(g(codes, {s.name: const}), g(codes), atol=1e-5)


def test_generator_rejects_bad_codes_and_names(tiny):
    with pytest.raises(HsError, match=r"codes must be \[B,12,32\]"):
        tiny.decoder(torch.randn(1, 18, 512))
    with pytest.raises(HsError, match="unknown delta layer names"):
        tiny.decoder(torch.randn(1, 12, 32), {"convs.99": torch.zeros(1)})
    with pytest.raises(HsError, match=r"input images must be \[B,3,64,64\]"):
        tiny.invert(torch.zeros(1, 3, 256, 256))


def test_separable_variant_and_torgb_tuning_run():
    base = get_config("tiny")
    for hyp in (HypernetConfig(**{**base.hypernet.__dict__, "encoder_type": "SharedWeightsHyperNetResNetSeparable"}),
                HypernetConfig(**{**base.hypernet.__dict__, "layers_to_tune": tuple(range(17))})):
        cfg = base.replace(hypernet=hyp)
        h = fill_module_(SharedWeightsHyperNetResNet(cfg).eval(), "hypernet.")
        with torch.no_grad():
            d = h(torch.rand(2, 6, 64, 64))
        assert [k for k in d] == [s.name for s in cfg.tuned]
        for s in cfg.tuned:
            assert d[s.name].shape == (2, s.out_ch, s.in_ch, s.kernel, s.kernel)
        m = HyperStyle(cfg)
        with torch.no_grad():
            img = m.decoder(torch.randn(2, 12, 32), d)
        assert img.shape == (2, 3, 128, 128)


def test_per_channel_heads_repeat_over_the_kernel(tiny):
    with torch.no_grad():
        d = tiny.hypernet(torch.rand(2, 6, 64, 64))
    v = d["convs.8"]  # idx 14: RefinementBlock (per channel)
    assert torch.equal(v, v[..., :1, :1].expand_as(v))
    w = d["convs.0"]  # idx 2: shared hypernet (full 3x3)
    assert not torch.equal(w, w[..., :1, :1].expand_as(w))
