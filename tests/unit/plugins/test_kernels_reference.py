"""The op-contract references (NHWC, raw weight, style s, delta full / per-channel / absent, pre-multiplied noise)
equal models.stylegan2.StyledConv / ToRGB, fp32, B=2 with distinct per-sample delta. Tolerance: atol 1e-5."""

import pytest
import torch

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.models.stylegan2 import StyledConv, ToRGB
from hyperstyle_trt.plugins.mod_conv.reference import from_ohwi, mod_conv_flops, mod_conv_ref, to_ohwi
from hyperstyle_trt.plugins.to_rgb.reference import to_rgb_flops, to_rgb_ref

ATOL = 1e-5


def _nchw(t):
    return t.permute(0, 3, 1, 2)


def _nhwc(t):
    return t.permute(0, 2, 3, 1)


def _styled_conv(cin, cout, upsample, seed=0):
    torch.manual_seed(seed)
    m = StyledConv(cin, cout, 3, style_dim=16, upsample=bool(upsample))
    with torch.no_grad():  # non-trivial noise strength and bias (both start at zero)
        m.noise.weight.fill_(0.7)
        m.activate.bias.normal_()
    return m.eval()


@pytest.mark.parametrize("upsample", [0, 1])
@pytest.mark.parametrize("delta_mode", [0, 1, 2])
def test_mod_conv_ref_equals_styled_conv(upsample, delta_mode):
    b, h, w, cin, cout = 2, 4, 6, 8, 12
    m = _styled_conv(cin, cout, upsample)
    f = 2 if upsample else 1
    x = torch.randn(b, h, w, cin)
    lat = torch.randn(b, 16)
    noise = torch.randn(1, 1, f * h, f * w)
    d_models = {0: None, 1: 0.5 * torch.randn(b, cout, cin, 3, 3), 2: 0.5 * torch.randn(b, cout, cin)}[delta_mode]
    delta = to_ohwi(d_models) if delta_mode == 1 else d_models  # the op's full delta is OHWI [B,Cout,3,3,Cin]
    if delta_mode == 2:
        d_models = d_models[..., None, None].expand(b, cout, cin, 3, 3)
    with torch.no_grad():
        want = _nhwc(m(_nchw(x), lat, noise, d_models))
        s = m.conv.modulation(lat)
        got = mod_conv_ref(x, s, to_ohwi(m.conv.weight[0]), delta, m.noise.weight * noise[0, 0], m.activate.bias,
                           upsample, delta_mode)
    assert got.shape == (b, f * h, f * w, cout)
    torch.testing.assert_close(got, want, atol=ATOL, rtol=ATOL)
    if delta_mode:  # the per-sample delta matters: applying sample 0's delta to both changes the output
        with torch.no_grad():
            mixed = mod_conv_ref(x, s, to_ohwi(m.conv.weight[0]), delta[[0, 0]], m.noise.weight * noise[0, 0],
                                 m.activate.bias, upsample, delta_mode)
        assert (mixed[1] - got[1]).abs().max() > 1e-3


@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.parametrize("delta_mode", [0, 1])
def test_to_rgb_ref_equals_to_rgb(skip, delta_mode):
    b, h, w, cin = 2, 8, 6, 12
    torch.manual_seed(1)
    m = ToRGB(cin, 16, upsample=skip)
    with torch.no_grad():
        m.bias.normal_()
    x = torch.randn(b, h, w, cin)
    lat = torch.randn(b, 16)
    sk = torch.randn(b, h // 2, w // 2, 3) if skip else None
    delta = 0.5 * torch.randn(b, 3, cin) if delta_mode else None
    with torch.no_grad():
        want = _nhwc(m(_nchw(x), lat, None if sk is None else _nchw(sk),
                       None if delta is None else delta[..., None, None]))
        got = to_rgb_ref(x, m.conv.modulation(lat), m.conv.weight[0, :, :, 0, 0], delta, m.bias.view(3), sk,
                         delta_mode)
    assert got.shape == (b, h, w, 3)
    torch.testing.assert_close(got, want, atol=ATOL, rtol=ATOL)


def test_references_reject_contract_violations():
    x, s = torch.randn(1, 4, 4, 8), torch.randn(1, 8)
    w, n, bias = torch.randn(6, 3, 3, 8), torch.randn(4, 4), torch.randn(6)
    with pytest.raises(HsError, match="noise"):
        mod_conv_ref(x, s, w, None, n, bias, upsample=1)  # noise must be [8,8] when upsampling
    with pytest.raises(HsError, match="delta"):
        mod_conv_ref(x, s, w, torch.randn(1, 6, 3, 3, 8), n, bias, delta_mode=2)
    with pytest.raises(HsError, match="delta"):  # full delta in the official OIHW order
        mod_conv_ref(x, s, w, torch.randn(1, 6, 8, 3, 3), n, bias, delta_mode=1)
    with pytest.raises(HsError, match="OHWI"):  # the official OIHW weight
        mod_conv_ref(x, s, torch.randn(6, 8, 3, 3), None, n, bias)
    with pytest.raises(HsError, match="needs a delta"):
        mod_conv_ref(x, s, w, None, n, bias, delta_mode=1)
    with pytest.raises(HsError, match="skip"):
        to_rgb_ref(x, s, torch.randn(3, 8), None, torch.randn(3), torch.randn(1, 4, 4, 3))


def test_flop_counts():
    assert mod_conv_flops(1, 4, 4, 512, 512, 0) == 2 * 16 * 512 * 512 * 9
    assert mod_conv_flops(2, 4, 4, 8, 8, 1) == 2 * 2 * 16 * 8 * 8 * 9  # transposed conv: at the input resolution
    assert to_rgb_flops(1, 1024, 1024, 32) == 2 * 1024 * 1024 * 3 * 32


def test_ohwi_conversions_are_inverse_and_put_cin_last():
    w = torch.randn(2, 6, 8, 3, 3)  # [B,O,I,kh,kw]
    o = to_ohwi(w)
    assert o.shape == (2, 6, 3, 3, 8) and o.is_contiguous()
    assert torch.equal(o[1, 4, 2, 0, 5], w[1, 4, 5, 2, 0])
    assert torch.equal(from_ohwi(o), w)


def _activation_copies(fn, numel: int) -> list:
    """The input shapes of every aten::copy_ of at least `numel` elements while fn() runs."""
    from torch.profiler import profile

    with torch.no_grad(), profile(record_shapes=True) as prof:
        fn()
    out = []
    for e in prof.events():
        if e.name == "aten::copy_" and e.input_shapes and e.input_shapes[0]:
            n = 1
            for d in e.input_shapes[0]:
                n *= d
            if n >= numel:
                out.append(e.input_shapes[0])
    return out


@pytest.mark.parametrize("upsample", [0, 1])
def test_references_copy_no_activation_between_layouts(upsample):
    """NHWC in, NHWC out, the convs in channels_last: no copy the size of an activation (weights are far smaller)."""
    b, h, cin, cout = 1, 32, 8, 6
    f = 2 if upsample else 1
    x, s = torch.randn(b, h, h, cin), torch.randn(b, cin)
    w, d = torch.randn(cout, 3, 3, cin), 0.1 * torch.randn(b, cout, 3, 3, cin)
    noise, bias = torch.randn(f * h, f * h), torch.randn(cout)
    assert _activation_copies(lambda: mod_conv_ref(x, s, w, d, noise, bias, upsample, 1), b * h * h * 3) == []
    sk = torch.randn(b, h // 2, h // 2, 3)
    assert _activation_copies(lambda: to_rgb_ref(x, s, torch.randn(3, cin), None, torch.randn(3), sk), h * h) == []
