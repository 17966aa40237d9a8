"""plugins.mod_conv.strategy's tables are what the recorded GPU measurements select (benchmarks/results/, H200):
FUSED_PICKS = the fp16 (layer, batch) pairs where `hs-bench kernels` timed the fused kernel faster than the staged
path; TUNED = the staged candidates `hs-bench tune` timed fastest, by the rule in strategy's docstring (B >= 3: the
fastest at B=8; B <= 2: the fastest at B=1, or the B >= 3 pick when within TIE_FRACTION of it)."""

import json
from pathlib import Path

import pytest

from hyperstyle_trt.core.config import get_config
from hyperstyle_trt.plugins.mod_conv.strategy import FUSED_PICKS, TIE_FRACTION, TUNED, bucket

RESULTS = Path(__file__).resolve().parents[3] / "benchmarks" / "results"
CONVS = [s for s in get_config("ffhq1024").layers if s.kind != "rgb"]


def _key(s) -> tuple[int, int, int, int, int]:
    """strategy's (upsample, H, W, Cin, Cout) of the layer's input."""
    up = int(s.kind == "up")
    h = s.res // 2 if up else s.res
    return up, h, h, s.in_ch, s.out_ch


def _tiles(t: tuple[int, ...]) -> str:
    return "{}x{}x{}/w{}/s{}".format(*t)


@pytest.fixture(scope="module")
def tune_rows() -> dict[tuple[str, int], dict[tuple[str, int], float]]:
    """{(layer, batch): {(tiles, split): µs}} of the staged rows of h200_tune.json."""
    out: dict = {}
    for r in json.loads((RESULTS / "h200_tune.json").read_text()):
        if r["kind"] == "staged":
            out.setdefault((r["layer"], r["batch"]), {})[(r["tiles"], r["split"])] = r["us"]
    return out


def test_fused_picks_are_where_the_fused_kernel_was_faster():
    rows = json.loads((RESULTS / "h200_kernels.json").read_text())["rows"]
    by_name = {s.name: s for s in CONVS}
    faster = {(*_key(by_name[r["layer"]]), bucket(r["batch"])) for r in rows
              if r["staged_us"] is not None and r["fused_us"] < r["staged_us"]}
    timed = {(r["layer"], r["batch"]) for r in rows if r["staged_us"] is not None}
    assert timed == {(s.name, b) for s in CONVS for b in (1, 8)}  # every StyledConv at both buckets was timed
    assert FUSED_PICKS == faster


def test_tuned_is_what_the_tune_selects(tune_rows):
    assert set(TUNED) == {_key(s) for s in CONVS}
    for s in CONVS:
        (t1, k1), (t8, k8) = TUNED[_key(s)]
        at1, at8 = tune_rows[s.name, 1], tune_rows[s.name, 8]
        pick8 = min(at8, key=at8.get)
        assert (_tiles(t8), k8) == pick8, (s.name, 8)
        fastest1 = min(at1, key=at1.get)
        want1 = pick8 if pick8 in at1 and at1[pick8] <= at1[fastest1] * (1 + TIE_FRACTION) else fastest1
        assert (_tiles(t1), k1) == want1, (s.name, 1)


def test_fp32_runs_staged_because_only_the_fused_kernels_spill():
    """strategy's fp32 rule (staged everywhere) stands on sm90_codegen_fp32.json: every fused variant spills, no
    staged one does."""
    rows = json.loads((RESULTS / "sm90_codegen_fp32.json").read_text())["rows"]
    spills: dict[str, list[int]] = {}
    for r in rows:
        spills.setdefault(r["kernel"], []).append(r["spill_bytes"])
    assert all(s > 0 for k in ("mod_conv_kernel", "mod_conv_up_kernel") for s in spills[k])
    assert all(s == 0 for k in ("mod_weight_kernel", "mod_conv_ready_kernel") for s in spills[k])
