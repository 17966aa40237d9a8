"""Launch ABI for TensorRT AOT plugins: deterministic, batch-independent tile choice for every FFHQ-1024 layer;
grids computable from input shapes (also symbolic); compiled entries take (inputs, int32 scalars, outputs) + Triton's
2 hidden scratch pointers, with absent optional inputs dropped. Compiles for sm_90 on the CPU (ptxas ships with
triton); no GPU needed."""

import pytest

pytest.importorskip("triton", reason="triton not installed (pip install 'hyperstyle-trt[kernels]')")

from hyperstyle_trt.core.config import get_config  # noqa: E402
from hyperstyle_trt.plugins._triton import HIDDEN_TRAILING_PARAMS, TileConfig
from hyperstyle_trt.plugins.mod_conv import kernel as km
from hyperstyle_trt.plugins.to_rgb import kernel as kr

LAYERS = get_config("ffhq1024").layers


def _pow2(n):
    return n >= 16 and n & (n - 1) == 0


@pytest.mark.parametrize("layer", LAYERS, ids=lambda s: s.name)
def test_every_ffhq_layer_gets_a_valid_launch(layer):
    h = layer.res // 2 if layer.kind == "up" else layer.res  # input resolution
    seen = set()
    for b in (1, 2, 3, 8, 64):
        if layer.kind == "rgb":
            grid, cfg = kr.launch_params(b, h, h, layer.in_ch, has_skip=int(layer.idx > 1))
            assert grid == ((h * h + cfg.block_m - 1) // cfg.block_m, 1, b) and cfg.block_n == 16
        else:
            up = int(layer.kind == "up")
            grid, cfg = km.launch_params(b, h, h, layer.in_ch, layer.out_ch, up)
            assert grid[2] == b and grid[1] * cfg.block_n >= layer.out_ch
            assert (grid[0] - 1) * cfg.block_m < h * h <= grid[0] * cfg.block_m
            assert grid[1] <= 65535
        assert all(_pow2(v) for v in (cfg.block_m, cfg.block_n, cfg.block_k)) and cfg.num_warps in (4, 8)
        seen.add((cfg, grid[:2]))
    # no dependence on the batch: an AOT engine has one kernel per layer for every batch of its profile, so the tile
    # choice and the grid's x/y extent are the same at B = 1, 2, 3, 8, 64 (only grid z = B changes)
    assert len(seen) == 1, seen


def test_launch_params_accept_symbolic_batch_and_custom_cdiv():
    class Sym:
        def __init__(self, s):
            self.s = s

    calls = []

    def cdiv(a, b):
        calls.append((a, b))
        return a // b + (a % b > 0)

    grid, cfg = km.launch_params(Sym("B"), 16, 16, 512, 512, 1, cdiv_fn=cdiv)
    assert grid[2].s == "B" and calls == [(256, cfg.block_m), (512, cfg.block_n)]


@pytest.mark.parametrize("op, attrs, visible", [
    ("mod_conv", dict(upsample=1, delta_mode=1, demodulate=1), 12),  # x style weight delta noise bias B H W Cin Cout y
    ("mod_conv", dict(upsample=0, delta_mode=0, demodulate=1), 11),  # no delta pointer
    ("to_rgb", dict(has_skip=0, delta_mode=0), 9),  # x style weight bias B H W Cin rgb
])
def test_aot_entry_has_abi_params_plus_two_hidden_pointers(op, attrs, visible):
    pytest.importorskip("triton")
    cfg = TileConfig(16, 16, 16, 4, 1)
    if op == "mod_conv":
        k = km.aot_compile(attrs["upsample"], attrs["delta_mode"], attrs["demodulate"], "fp16", cfg, arch=90)
    else:
        k = kr.aot_compile(attrs["has_skip"], attrs["delta_mode"], "fp16", cfg, arch=90)
    assert k.n_params == visible + HIDDEN_TRAILING_PARAMS
    assert k.block == (128, 1, 1) and k.shared_mem >= 0 and k.name in k.ptx
    assert ".target sm_90" in k.ptx and len(k.cubin) > 0
