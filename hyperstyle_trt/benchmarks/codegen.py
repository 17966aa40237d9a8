"""`hs-bench codegen`: what the fused kernels compile to for a GPU, without one (CPU-only machines, CI).

Every FFHQ-1024 modulated conv and toRGB shape class is compiled with its deterministic tile choice for `sm_<arch>`
(Triton's own ptxas; no GPU, no driver), then read back: registers per thread, spill bytes and static shared memory
from `ptxas -v`, and the global-load instructions of the SASS (`cuobjdump -sass`) by kind. These are static facts,
not timings: a spill or a scalar `LDG.E.U16` in the K loop is a reason to distrust a kernel before it runs, and the
figure to re-check after a layout or tile change. `aligned=True` compiles as a JIT launch on torch tensors would
(16-byte aligned pointers, Cin/Cout multiples of 16).

    hs-bench codegen [--arch 90] [--dtype fp16] [--delta-mode 0 1 2] [--json PATH]
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import tempfile
from dataclasses import asdict, dataclass

import click

from hyperstyle_trt.benchmarks.options import GreedyCommand
from hyperstyle_trt.core.atomic import write_json_atomic
from hyperstyle_trt.core.config import get_config
from hyperstyle_trt.core.entry import interruptible, run
from hyperstyle_trt.core.errors import HsError, one_line
from hyperstyle_trt.core.precision import PRECISION_NAMES


@dataclass(frozen=True)
class Codegen:
    """Static facts of one compiled kernel variant."""

    kernel: str
    registers: int
    spill_bytes: int  # spill stores + spill loads
    shared_bytes: int
    ldg_scalar: int  # global loads (LDG, cp.async LDGSTS) of 4 bytes or less: scalar / gathered elements
    ldg_vector: int  # global loads of 8 or 16 bytes (.64 / .128): vectors
    ldgsts: int  # cp.async instructions (global -> shared, pipelined)
    mma: int  # tensor-core instructions (HMMA / HGMMA)
    instructions: int


def _tool(name: str) -> str:
    import triton

    path = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", name)
    if not os.path.exists(path):
        raise HsError(f"hs-bench codegen: {name} not found in the triton wheel ({path})")
    return path


def _ptxas_info(ptx: str, arch: int) -> tuple[int, int]:
    """(registers, spill bytes) from `ptxas -v`. Tries triton's ptxas, then ptxas-blackwell (newer PTX versions)."""
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "k.ptx")
        with open(src, "w") as f:
            f.write(ptx)
        err = ""
        for name in ("ptxas", "ptxas-blackwell"):
            try:
                tool = _tool(name)
            except HsError as e:
                err = str(e)
                continue
            r = subprocess.run([tool, "-v", f"-arch=sm_{arch}a" if arch >= 90 else f"-arch=sm_{arch}", src,
                                "-o", os.path.join(d, "k.cubin")], capture_output=True, text=True)
            if r.returncode == 0:
                regs = int(re.search(r"Used (\d+) registers", r.stderr).group(1))
                st, ld = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", r.stderr).groups()
                return regs, int(st) + int(ld)
            err = one_line(r.stderr) or f"{name} exit {r.returncode}"
        raise HsError(f"hs-bench codegen: ptxas failed: {err}")


_OP = re.compile(r"/\*[0-9a-f]{4}\*/\s+(?:@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_.]*)")


def sass_ops(cubin: bytes) -> collections.Counter:
    """Opcode (with modifiers) -> static count, from cuobjdump -sass."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "k.cubin")
        with open(path, "wb") as f:
            f.write(cubin)
        r = subprocess.run([_tool("cuobjdump"), "-sass", path], capture_output=True, text=True)
    if r.returncode:
        raise HsError(f"hs-bench codegen: cuobjdump failed: {one_line(r.stderr, 200)}")
    return collections.Counter(m.group(1) for line in r.stdout.splitlines() if (m := _OP.search(line)))


def analyze(kernel, arch: int = 90) -> Codegen:
    """Codegen facts of an `AotKernel` (plugins._triton.compile_aot)."""
    regs, spill = _ptxas_info(kernel.ptx, arch)
    ops = sass_ops(kernel.cubin)
    ldg = {o: c for o, c in ops.items() if o.startswith("LDG") and not o.startswith("LDGDEPBAR")}
    vector = sum(c for o, c in ldg.items() if {"64", "128"} & set(o.split(".")))  # width token anywhere
    return Codegen(kernel.name, regs, spill, kernel.shared_mem, sum(ldg.values()) - vector, vector,
                   sum(c for o, c in ldg.items() if o.startswith("LDGSTS")),
                   sum(c for o, c in ops.items() if o.startswith(("HMMA", "HGMMA"))), sum(ops.values()))


def variants(config: str = "ffhq1024", delta_modes=(0, 1, 2), dtype: str = "fp16", arch: int = 90) -> list[dict]:
    """One entry per distinct kernel compile of the generator: what the tile choice sees.
    op "mod_conv": the fused kernel (every StyledConv: TensorRT's AOT path runs it everywhere); "mod_ready": the
    ready-weight conv of the staged path (every layer runs it; one row per distinct (tiles, upsample, split-K) over
    the layers and the two batch buckets of strategy.TUNED, `batch` naming the bucket; delta_mode None: it never
    reads delta); "mod_weight": the weight kernel (one row per (tiles, upsample, delta mode))."""
    from hyperstyle_trt.plugins.mod_conv import staged as ks
    from hyperstyle_trt.plugins.mod_conv.strategy import select_strategy, split_k

    cfg = get_config(config)
    seen, out = set(), []
    for s in cfg.layers:
        h = s.res // 2 if s.kind == "up" else s.res
        up = int(s.kind == "up")
        if s.kind == "rgb":
            keys = [(("to_rgb", h, s.in_ch, 3, 0, int(s.idx > 1), m), {}) for m in sorted({0, 1} & set(delta_modes))]
        else:
            keys = [(("mod_conv", h, s.in_ch, s.out_ch, up, 0, m), {}) for m in delta_modes]
            for b in (1, 8):
                if select_strategy(b, h, h, s.in_ch, s.out_ch, up, dtype) != "staged":
                    continue
                tiles = ks.ready_config(h, h, s.in_ch, s.out_ch, dtype, arch, up, b)
                split = int(split_k(b, h, h, s.in_ch, s.out_ch, up, dtype) > 1)
                keys.append((("mod_ready", tiles, up, split), dict(h=h, cin=s.in_ch, cout=s.out_ch, upsample=up,
                                                                   has_skip=0, delta_mode=None, batch=b,
                                                                   split=split)))
                wt = ks.weight_tiles(s.in_ch, up)
                keys += [(("mod_weight", wt, up, m), dict(h=0, cin=s.in_ch, cout=0, upsample=up, has_skip=0,
                                                          delta_mode=m)) for m in delta_modes]
        for k, extra in keys:
            if k not in seen:
                seen.add(k)
                v = extra or dict(h=k[1], cin=k[2], cout=k[3], upsample=k[4], has_skip=k[5], delta_mode=k[6])
                out.append(dict(op=k[0], **v, layer=s.name))
    return out


def compile_variant(v: dict, dtype: str = "fp16", arch: int = 90, cfg=None):
    """(AotKernel, TileConfig) of one `variants()` entry, compiled as a JIT launch on torch tensors would be."""
    if v["op"] == "to_rgb":
        from hyperstyle_trt.plugins.to_rgb import kernel as kr

        cfg = cfg or kr.select_config(v["h"], v["h"], v["cin"])
        return kr.aot_compile(v["has_skip"], v["delta_mode"], dtype, cfg, arch, aligned=True), cfg
    from hyperstyle_trt.plugins.mod_conv import kernel as km
    from hyperstyle_trt.plugins.mod_conv import staged as ks

    if v["op"] == "mod_weight":
        wt = cfg or ks.weight_tiles(v["cin"], v["upsample"])
        return ks.aot_compile_weight(v["upsample"], v["delta_mode"], 1, dtype, arch, aligned=True, wcfg=wt), wt
    if v["op"] == "mod_ready":
        cfg = cfg or ks.ready_config(v["h"], v["h"], v["cin"], v["cout"], dtype, arch, v["upsample"], v["batch"])
        return ks.aot_compile_ready(v["upsample"], dtype, cfg, arch, aligned=True, split=bool(v["split"])), cfg
    cfg = cfg or km.select_config(v["h"], v["h"], v["cin"], v["cout"], v["upsample"], dtype, arch)
    return km.aot_compile(v["upsample"], v["delta_mode"], 1, dtype, cfg, arch, aligned=True), cfg


def run_codegen(dtype: str = "fp16", arch: int = 90, delta_modes=(0, 1, 2), config: str = "ffhq1024") -> list[dict]:
    try:
        import triton  # noqa: F401
    except ImportError:
        raise HsError("hs-bench codegen needs triton (pip install 'hyperstyle-trt[kernels]')") from None
    rows = []
    for v in variants(config, delta_modes, dtype, arch):
        k, cfg = compile_variant(v, dtype, arch)
        c = analyze(k, arch)
        tiles = f"{cfg.block_m}x{cfg.block_n}x{cfg.block_k}/w{cfg.num_warps}/s{cfg.num_stages}"
        rows.append({**v, **asdict(c), "tiles": tiles, "dtype": dtype, "arch": arch})
    return rows


def print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    arch = rows[0]["arch"] if rows else "?"
    tab = Table(title=f"kernels compiled for sm_{arch} (static; no GPU involved)")
    for col in ("layer", "op", "shape", "Δ", "tiles", "regs", "spill B", "smem KB", "LDG <=4B", "LDG 8/16B",
                "cp.async", "MMA"):
        tab.add_column(col, justify="left" if col in ("layer", "op", "shape", "tiles") else "right")
    for r in rows:
        shape = "any" + (" up" if r["upsample"] else "") if r["op"] == "mod_weight" else \
            f"{r['cin']}->{r['cout']} @{r['h']}²" + (" up" if r["upsample"] else "") + \
            (" skip" if r["has_skip"] else "")
        dm = "-" if r["delta_mode"] is None else str(r["delta_mode"])
        tab.add_row(r["layer"], r["op"], shape, dm, r["tiles"], str(r["registers"]),
                    str(r["spill_bytes"]), f"{r['shared_bytes'] / 1024:.0f}", str(r["ldg_scalar"]),
                    str(r["ldg_vector"]), str(r["ldgsts"]), str(r["mma"]))
    Console(width=max(Console().width, 160)).print(tab)


@click.command("codegen", cls=GreedyCommand, greedy=("--delta-mode",), help=__doc__.splitlines()[0],
               context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--arch", type=int, default=90, show_default=True, help="SM version (90: H100)")
@click.option("--dtype", type=click.Choice(PRECISION_NAMES), default="fp16", show_default=True)
@click.option("--delta-mode", type=click.IntRange(0, 2), multiple=True,
              help="delta modes to compile, e.g. --delta-mode 0 1 2 (default: all three)")
@click.option("--json", "json_path", default=None, help="also write the rows as JSON here")
@interruptible
def cli(arch, dtype, delta_mode, json_path) -> int:
    rows = run_codegen(dtype, arch, tuple(delta_mode or (0, 1, 2)))
    print_table(rows)
    if json_path:
        write_json_atomic(json_path, {"rows": rows})
    return 0


def main(argv: list[str] | None = None) -> int:
    """`hs-bench codegen` through core.entry.run: 0, or 2 with one `error:` line, 130 on Ctrl-C."""
    return run(cli, argv)


if __name__ == "__main__":
    main()
