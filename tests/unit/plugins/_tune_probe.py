"""Run in the Triton-interpreter worker: `hs-bench tune`'s candidate callables (benchmarks.tune.make_call) on tiny
layers in fp32, returned as max abs errors against the fp32 reference."""

from hyperstyle_trt.plugins._triton import TileConfig


def candidate_errors(config: str, cases: list[tuple[str, int, str, tuple[int, ...], int]]) -> list[tuple[float, float]]:
    """(max abs error, max |reference|) per (layer name, batch, kind, tiles, split)."""
    from hyperstyle_trt.benchmarks.kernels import KernelCase, _inputs, fp32_reference
    from hyperstyle_trt.benchmarks.tune import make_call
    from hyperstyle_trt.core.config import get_config

    layers = {s.name: s for s in get_config(config).layers}
    out = []
    for name, batch, kind, tiles, split in cases:
        s = layers[name]
        c = KernelCase(s, batch, 0 if s.kind == "rgb" else 1)
        t = _inputs(c, "cpu")
        ref = fp32_reference(c, t)
        y = make_call(kind, s, t, TileConfig(*tiles), split, c.delta_mode)()
        out.append(((y.float() - ref).abs().max().item(), ref.abs().max().item()))
    return out
