"""Which `HsModConv` implementation a layer runs on a GPU, its split-K count, and the workspace it needs. Pure
Python (no triton, no GPU): TensorRT's build phase calls it for `get_workspace_size` on CPU-only machines.

    "fused":  one launch, the per-sample weight formed in registers (plugins/mod_conv/kernel.py).
    "staged": the per-sample weight written once to a workspace, then a ready-weight conv, split over K for problems
              of few tiles (+ a finalize launch) (plugins/mod_conv/staged.py).

Every layer runs "staged" but the fp16 (layer, batch bucket) pairs of FUSED_PICKS: the rule is "the faster of the
two paths as `hs-bench kernels` timed them with the production tiles" (benchmarks/results/h200_kernels.json, H200;
tests/unit/plugins/test_strategy_results.py checks FUSED_PICKS against it). fp32 (tests, `hs-export --fp32`
engines; a correctness path): staged everywhere, because the fused fp32 kernels spill registers and the staged ones
do not (`hs-bench codegen --dtype fp32`; benchmarks/results/sm90_codegen_fp32.json). TensorRT's AOT path (one
kernel, no workspace) runs the fused kernel on every layer.

TUNED holds the winners per FFHQ layer shape for the two batch buckets (B <= 2, B >= 3): the ready conv's tiles
(used on LARGE_SMEM_ARCHS in fp16) and the split-K count (fp16 on any GPU: the workspace must be known when a CPU
builds the engine). The rule: for B >= 3 the fastest staged candidate of `hs-bench tune` at B=8
(benchmarks/results/h200_tune.json); for B <= 2 the fastest at B=1, or the B >= 3 pick when that is within
TIE_FRACTION of it at B=1 (one kernel variant for both buckets). Other shapes and fp32 take `split_k`'s rule and
staged.ready_config's heuristic tiles.
"""

from __future__ import annotations

from typing import NamedTuple

from hyperstyle_trt.core.precision import PRECISIONS

STRATEGIES = ("fused", "staged")
SPLIT_MAX = 8
SPLIT_TARGET_TILES = 264  # ~2 programs per SM of an H100/H200 (132 SMs), counted in 64x64 output tiles
_ALIGN = 256  # coef's and the partial sums' byte offsets inside the workspace are multiples of this
# bytes per element by dtype name: our precision names and their numpy spellings (core.precision)
_ITEM = {alias: p.itemsize for p in PRECISIONS.values() for alias in (p.name, p.numpy)}
TIE_FRACTION = 0.03  # TUNED's B <= 2 entry reuses the B >= 3 pick when that is at most 3% slower at B=1

# (upsample, H, W, Cin, Cout) of the input -> ((tiles, split) for B <= 2, (tiles, split) for B >= 3); tiles as
# (BLOCK_M, BLOCK_N, BLOCK_K, warps, stages). Chosen from `hs-bench tune` (H200, fp16, full delta) by the rule in the
# module docstring; the timings are in benchmarks/results/h200_tune.json.
TUNED: dict[tuple[int, int, int, int, int], tuple[tuple[tuple[int, ...], int], tuple[tuple[int, ...], int]]] = {
    (0, 4, 4, 512, 512): (((16, 64, 64, 4, 3), 8), ((16, 64, 64, 4, 3), 8)),  # conv1
    (1, 4, 4, 512, 512): (((16, 64, 64, 4, 3), 8), ((16, 64, 64, 4, 3), 2)),  # convs.0
    (0, 8, 8, 512, 512): (((64, 32, 64, 4, 3), 4), ((64, 32, 64, 4, 3), 4)),  # convs.1
    (1, 8, 8, 512, 512): (((64, 64, 64, 4, 3), 4), ((64, 128, 64, 8, 3), 2)),  # convs.2
    (0, 16, 16, 512, 512): (((64, 64, 64, 4, 3), 4), ((128, 256, 64, 8, 3), 4)),  # convs.3
    (1, 16, 16, 512, 512): (((64, 128, 64, 8, 3), 2), ((128, 256, 64, 8, 3), 1)),  # convs.4
    (0, 32, 32, 512, 512): (((128, 128, 32, 8, 4), 4), ((128, 256, 64, 8, 3), 1)),  # convs.5
    (1, 32, 32, 512, 512): (((128, 128, 32, 8, 4), 1), ((128, 256, 64, 8, 3), 1)),  # convs.6
    (0, 64, 64, 512, 512): (((128, 128, 32, 8, 4), 1), ((128, 256, 64, 8, 3), 1)),  # convs.7
    (1, 64, 64, 512, 256): (((128, 256, 64, 8, 3), 1), ((128, 256, 64, 8, 3), 1)),  # convs.8
    (0, 128, 128, 256, 256): (((128, 256, 64, 8, 3), 1), ((128, 256, 64, 8, 3), 1)),  # convs.9
    (1, 128, 128, 256, 128): (((256, 128, 64, 8, 3), 1), ((256, 128, 64, 8, 3), 1)),  # convs.10
    (0, 256, 256, 128, 128): (((256, 128, 64, 8, 3), 1), ((256, 128, 64, 8, 3), 1)),  # convs.11
    (1, 256, 256, 128, 64): (((128, 64, 32, 8, 3), 1), ((128, 64, 32, 8, 3), 1)),  # convs.12
    (0, 512, 512, 64, 64): (((128, 64, 32, 8, 3), 1), ((128, 64, 32, 8, 3), 1)),  # convs.13
    (1, 512, 512, 64, 32): (((64, 32, 64, 4, 3), 1), ((64, 32, 64, 4, 3), 1)),  # convs.14
    (0, 1024, 1024, 32, 32): (((256, 32, 32, 4, 4), 1), ((256, 32, 32, 4, 4), 1)),  # convs.15
}


def bucket(B: int) -> int:
    """The batch a batch size's measurements were taken at: 1 for B <= 2, else 8."""
    return 1 if B <= 2 else 8


def tuned(B: int, H: int, W: int, Cin: int, Cout: int, upsample: int) -> tuple[tuple[int, ...], int] | None:
    """(ready tiles, split) measured for this layer shape and batch bucket, or None for an untuned shape."""
    entry = TUNED.get((int(bool(upsample)), H, W, Cin, Cout))
    return None if entry is None else entry[0 if bucket(B) == 1 else 1]


# (upsample, H, W, Cin, Cout, batch bucket) where the fused kernel beat the staged path in fp16 (`hs-bench kernels`,
# H200, benchmarks/results/h200_kernels.json): convs.0 at B >= 3 (its 4^2 input is 16 positions, so the staged
# path's separate weight kernel with its 4 phases dominates).
FUSED_PICKS = frozenset({(1, 4, 4, 512, 512, 8)})


def select_strategy(B: int, H: int, W: int, Cin: int, Cout: int, upsample: int, dtype: str = "fp16") -> str:
    """"staged" except fp16 shapes of FUSED_PICKS (module docstring: measured); dtype is checked (fp16 / fp32)."""
    fp16 = _item(dtype, "select_strategy") == 2
    return "fused" if fp16 and (int(bool(upsample)), H, W, Cin, Cout, bucket(B)) in FUSED_PICKS else "staged"


def split_k(B: int, H: int, W: int, Cin: int, Cout: int, upsample: int, dtype: str = "fp16") -> int:
    """Split-K count of the staged conv (1: none). fp16: TUNED's for the FFHQ shapes; otherwise problems of few output
    tiles split the 9*Cin reduction so that more programs stream the weights (a power of two up to SPLIT_MAX, each
    split keeping >= 64 input channels). fp32: 1 (a correctness path; its tiles are chosen for no register spills)."""
    if _item(dtype, "split_k") == 4:
        return 1
    t = tuned(B, H, W, Cin, Cout, upsample)
    if t is not None:
        return t[1]
    p = 4 if upsample else 1
    tiles = B * p * -(-H * W // 64) * -(-Cout // 64)
    s = 1
    while s < SPLIT_MAX and tiles * 2 * s <= SPLIT_TARGET_TILES and Cin // (2 * s) >= 64:
        s *= 2
    return s


def _item(dtype: str, who: str) -> int:
    if dtype not in _ITEM:
        raise ValueError(f"{who}: dtype must be one of {sorted(_ITEM)}, got {dtype!r}")
    return _ITEM[dtype]


class WorkspaceLayout(NamedTuple):
    """Byte offsets inside one staged launch's workspace: wq at 0, coef, the split-K partial sums, the total."""

    coef: int
    part: int
    total: int


def _align(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def workspace_layout(B: int, Cin: int, Cout: int, upsample: int, dtype: str = "fp16", split: int = 1,
                     HW: int = 0) -> WorkspaceLayout:
    """Layout of the staged workspace: wq [B,Cout,P,9,Cin] in dtype (P = 4 phases for upsampling, else 1), coef
    [B,Cout] fp32, and with split > 1 the fp32 partial sums [B*P*split, HW, Cout] (HW: input pixels), each at a
    256-byte aligned offset."""
    p = 4 if upsample else 1
    coef = _align(B * Cout * p * 9 * Cin * _item(dtype, "workspace_layout"))
    part = _align(coef + B * Cout * 4)
    return WorkspaceLayout(coef, part, part + B * p * split * HW * Cout * 4 if split > 1 else coef + B * Cout * 4)


def workspace_bytes(B: int, H: int, W: int, Cin: int, Cout: int, upsample: int, dtype: str = "fp16") -> int:
    """Device workspace one launch of batch B needs: 0 for a fused layer, workspace_layout's total for a staged
    one (with the split-K buffer when split_k asks for one)."""
    if select_strategy(B, H, W, Cin, Cout, upsample, dtype) != "staged":
        return 0
    return workspace_layout(B, Cin, Cout, upsample, dtype, split_k(B, H, W, Cin, Cout, upsample, dtype), H * W).total


def max_workspace_bytes(B_min: int, B_max: int, H: int, W: int, Cin: int, Cout: int, upsample: int,
                        dtype: str = "fp16") -> int:
    """The largest workspace_bytes over batches B_min..B_max (TensorRT's dynamic batch: the strategy and split-K
    count may change with B, so the largest batch alone is not the bound)."""
    return max(workspace_bytes(b, H, W, Cin, Cout, upsample, dtype) for b in range(max(1, B_min), B_max + 1))
