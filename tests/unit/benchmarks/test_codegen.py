"""`hs-bench codegen` on this CPU machine: every fp16 HsModConv variant of the FFHQ-1024 generator compiles for sm_90
with its production tiles without register spills and within the H100's shared memory, and the non-upsampling
kernels load W and delta as vectors (with the old OIHW layout the same kernels had 26-98 scalar 2-byte loads)."""

import pytest

pytest.importorskip("triton", reason="triton not installed (pip install 'hyperstyle-trt[kernels]')")

from benchmarks import codegen  # noqa: E402

H100_SMEM_PER_BLOCK = 227 * 1024


@pytest.fixture(scope="module")
def rows():
    return [r for r in codegen.run_codegen("fp16", 90, (0, 1, 2)) if r["op"] == "mod_conv"]


@pytest.mark.slow
def test_every_fp16_mod_conv_variant_compiles_without_spills(rows):
    assert len(rows) == 3 * 17  # 17 StyledConv shape classes (9 plain 3x3, 8 upsampling) x 3 delta modes
    bad = [(r["layer"], r["delta_mode"], r["tiles"], r["spill_bytes"], r["shared_bytes"]) for r in rows
           if r["spill_bytes"] or r["shared_bytes"] > H100_SMEM_PER_BLOCK]
    assert not bad, bad
    assert all(r["mma"] > 0 for r in rows)  # tensor cores in every variant


@pytest.mark.slow
def test_weight_and_delta_tiles_are_vector_loads(rows):
    conv = [r for r in rows if not r["upsample"]]
    assert conv and all(r["ldgsts"] >= 6 and r["ldg_scalar"] <= 20 for r in conv), \
        [(r["layer"], r["delta_mode"], r["ldg_scalar"], r["ldgsts"]) for r in conv]


def test_variants_cover_every_layer_shape_once():
    vs = codegen.variants("ffhq1024", (1,))
    assert len({(v["op"], v["h"], v["cin"], v["cout"], v["upsample"], v["has_skip"]) for v in vs}) == len(vs)
    assert {v["layer"] for v in vs} >= {"conv1", "convs.0", "convs.15", "to_rgbs.7"}
