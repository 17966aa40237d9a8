"""Golden verification against the official implementation: `python -m hyperstyle_trt.models.golden verify DIR`.

DIR holds any of generator.npz / hypernet.npz / w_encoder.npz / inversion.npz in the format of
tests/data/golden (README there). Every seed, the batch, the delta scale, the stride prime, the tuned layers and
the fill constants come from each file's `meta`; nothing of a particular set is assumed. Each case is rebuilt with our
models and the documented fill, and every stored array is compared with the README's tolerances.
"""

from __future__ import annotations

import gc
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import click
import numpy as np
import torch
import torch.nn.functional as F

from hyperstyle_trt.core.config import GeneratorConfig, HypernetConfig, HyperStyleConfig
from hyperstyle_trt.core.entry import interruptible, run
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.models.fill import DEFAULT_CONSTANTS, fill_module_

# README "Suggested checks": (kind, atol, rtol)
TOL = {"image": (1e-4, 0.0), "feature": (1e-4, 0.0), "code": (1e-5, 0.0), "delta": (1e-5, 0.0),
       "sum": (1e-2, 0.0), "sumsq": (0.0, 1e-5), "f16": (2e-3, 0.0), "input": (0.0, 0.0)}
CASES = ("generator", "hypernet", "w_encoder", "inversion")


@dataclass
class Check:
    name: str
    kind: str
    err: float
    ok: bool


@dataclass
class CaseResult:
    case: str
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def max_err(self) -> float:
        return max((c.err for c in self.checks if c.kind not in ("sum", "sumsq", "input")), default=0.0)

    def add(self, name: str, kind: str, got, want) -> None:
        got = torch.as_tensor(np.asarray(got) if not isinstance(got, torch.Tensor) else got).double()
        want = torch.as_tensor(np.asarray(want)).double()
        if got.shape != want.shape:
            self.checks.append(Check(name, kind, float("inf"), False))
            return
        atol, rtol = TOL[kind]
        diff = (got - want).abs()
        if kind == "sumsq":  # relative to the largest value (README)
            err = float(diff.max() / want.abs().max())
            ok = err <= rtol
        else:
            err = float(diff.max()) if diff.numel() else 0.0
            ok = bool((diff <= atol + rtol * want.abs()).all())
        self.checks.append(Check(name, kind, err, ok))


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def load_case(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    try:
        z = np.load(path, allow_pickle=False)
        arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays.pop("meta")))
    except (OSError, ValueError, KeyError) as e:
        raise HsError(f"{path} is not a golden file (npz with a JSON 'meta' entry): {e}") from None
    return meta, arrays


def config_for(meta: dict, size: int) -> HyperStyleConfig:
    tuned = tuple(int(i) for i in meta["tuned_layers"])
    return HyperStyleConfig(name=f"golden{size}", generator=GeneratorConfig(size=size),
                            hypernet=HypernetConfig(layers_to_tune=tuned))


def _constants(meta: dict) -> dict:
    return {**DEFAULT_CONSTANTS, **meta.get("fill_constants", {})}


def check_delta_summary(res: CaseResult, prefix: str, deltas: list[torch.Tensor], arrays: dict, meta: dict) -> None:
    """README "Delta summary format": sum, sumsq, first64, strided (+ the strided indices themselves)."""
    b = deltas[0].shape[0]
    sums = np.zeros((len(deltas), b))
    sumsq = np.zeros((len(deltas), b))
    first = np.zeros((len(deltas), b, 64), np.float32)
    strided = np.zeros((len(deltas), b, 256), np.float32)
    idx_all = np.zeros((len(deltas), 256), np.int64)
    for i, d in enumerate(deltas):
        flat = d.reshape(b, -1)
        n = flat.shape[1]
        idx = (torch.arange(256, dtype=torch.int64) * int(meta["stride_prime"])) % n
        idx_all[i] = idx.numpy()
        for s in range(b):
            f = flat[s]
            sums[i, s] = f.double().sum().item()
            sumsq[i, s] = (f.double() ** 2).sum().item()
            first[i, s] = f[:64].numpy()
            strided[i, s] = f[idx].numpy()
    res.add(f"{prefix}_strided_idx", "input", idx_all, arrays[f"{prefix}_strided_idx"])
    res.add(f"{prefix}_sum", "sum", sums, arrays[f"{prefix}_sum"])
    res.add(f"{prefix}_sumsq", "sumsq", sumsq, arrays[f"{prefix}_sumsq"])
    res.add(f"{prefix}_first64", "delta", first, arrays[f"{prefix}_first64"])
    res.add(f"{prefix}_strided", "delta", strided, arrays[f"{prefix}_strided"])


def _image_input(meta: dict, seed_key: str, channels: int) -> torch.Tensor:
    """README "Inputs": torch.rand((B,C,256,256), generator=g(seed)) * 2 - 1."""
    return torch.rand((int(meta["batch"]), channels, 256, 256), generator=_gen(meta["seeds"][seed_key])) * 2 - 1


def _pool(img: torch.Tensor, size: int = 256) -> torch.Tensor:
    return F.adaptive_avg_pool2d(img, (size, size))


@torch.no_grad()
def run_generator(meta: dict, arrays: dict) -> CaseResult:
    from hyperstyle_trt.models.stylegan2 import Generator

    res = CaseResult("generator")
    size = arrays["img_full_s0_f16"].shape[-1]
    cfg = config_for(meta, size)
    b = int(meta["batch"])
    g = fill_module_(Generator(cfg.generator).eval(), "decoder.", _constants(meta))
    lat = torch.randn((b, cfg.generator.n_latent, cfg.generator.style_dim), generator=_gen(meta["seeds"]["gen_latent"]))
    res.add("latents (regenerated)", "input", lat, arrays["latents"])
    base, scale = int(meta["seeds"]["gen_delta_base"]), float(meta["delta_scale"])
    deltas = {s.name: torch.randn((b, *s.delta_shape), generator=_gen(base + s.idx)) * scale for s in cfg.tuned}
    check_delta_summary(res, "in_delta", list(deltas.values()), arrays, meta)
    img = g(lat, deltas)
    res.add("img_pool256", "image", _pool(img), arrays["img_pool256"])
    res.add("img_full_s0_f16", "f16", img[0].half().float(), arrays["img_full_s0_f16"].astype(np.float32))
    del img, deltas
    res.add("img_pool256_nodelta", "image", _pool(g(lat)), arrays["img_pool256_nodelta"])
    return res


@torch.no_grad()
def run_hypernet(meta: dict, arrays: dict, size: int) -> CaseResult:
    from hyperstyle_trt.models.hypernet import SharedWeightsHyperNetResNet

    res = CaseResult("hypernet")
    cfg = config_for(meta, size)
    h = fill_module_(SharedWeightsHyperNetResNet(cfg).eval(), "hypernet.", _constants(meta))
    x = _image_input(meta, "hyper_in", 6)
    res.add("x (regenerated)", "input", x, arrays["x"])
    f = h.features(x)
    res.add("features", "feature", f, arrays["features"])
    blocks = {s.idx: blk for s, blk in zip(h.specs, h.refinement_blocks) if blk is not None}
    shared = [i for i in cfg.hypernet.layers_to_tune if i in h.shared_layers]
    other = [i for i in cfg.hypernet.layers_to_tune if i not in h.shared_layers]
    res.add("shared_codes", "code", torch.stack([blocks[i].code(f) for i in shared]), arrays["shared_codes"])
    res.add("head_pooled", "feature",
            torch.stack([blocks[i].output[0](blocks[i].convs(f)).flatten(1) for i in other]), arrays["head_pooled"])
    deltas = h(x)
    names = {s.idx: s.name for s in cfg.layers}
    for i in (24, 23):
        key = f"delta_L{i}_full"
        if key in arrays and i in names:
            res.add(key, "delta", deltas[names[i]], arrays[key])
    check_delta_summary(res, "delta", [deltas[s.name] for s in cfg.tuned], arrays, meta)
    return res


@torch.no_grad()
def run_w_encoder(meta: dict, arrays: dict, size: int) -> CaseResult:
    from hyperstyle_trt.models.w_encoder import WEncoder

    res = CaseResult("w_encoder")
    cfg = config_for(meta, size)
    enc = fill_module_(WEncoder(cfg).eval(), "encoder.", _constants(meta))
    x = _image_input(meta, "enc_in", 3)
    res.add("x (regenerated)", "input", x, arrays["x"])
    res.add("pooled", "feature", enc.pooled(x), arrays["pooled"])
    res.add("codes", "code", enc(x), arrays["codes"])
    return res


@torch.no_grad()
def run_inversion(meta: dict, arrays: dict, size: int) -> CaseResult:
    from hyperstyle_trt.models.checkpoint import fill_default_
    from hyperstyle_trt.models.hyperstyle import HyperStyle

    res = CaseResult("inversion")
    m = fill_default_(HyperStyle(config_for(meta, size)).eval(), _constants(meta))
    cfg = m.cfg
    res.add("latent_avg", "code", m.latent_avg, arrays["latent_avg"])
    x = _image_input(meta, "inv_in", 3)
    res.add("x (regenerated)", "input", x, arrays["x"])
    n_iters = sum(1 for k in arrays if k.startswith("y") and k.endswith("_pool256")) - 1
    out = m.invert(x, n_iters=n_iters, return_iterations=True, return_iteration_deltas=True)
    res.add("enc_raw", "code", m.w_encoder(x), arrays["enc_raw"])
    res.add("codes", "code", out.codes, arrays["codes"])
    res.add("latent_out", "code", out.codes, arrays["latent_out"])
    for t, y in enumerate(out.iterations):
        res.add(f"y{t}_pool256", "image", m.pool(y), arrays[f"y{t}_pool256"])
    res.add("final image_pooled", "image", out.image_pooled, arrays[f"y{n_iters}_pool256"])
    tuned = [s.name for s in cfg.tuned]
    for t, acc in enumerate(out.iteration_deltas, start=1):  # acc{t}: accumulated deltas after iteration t
        if f"acc{t}_sum" in arrays:
            check_delta_summary(res, f"acc{t}", [acc[k] for k in tuned], arrays, meta)
        if f"acc{t}_L24_full" in arrays:
            res.add(f"acc{t}_L24_full", "delta", acc[cfg.layers[24].name], arrays[f"acc{t}_L24_full"])
    return res


def verify_dir(d: str | Path, cases=CASES, size: int | None = None, log=print) -> list[CaseResult]:
    d = Path(d)
    if not d.is_dir():
        raise HsError(f"golden directory not found: {d}")
    found = [c for c in cases if (d / f"{c}.npz").is_file()]
    if not found:
        raise HsError(f"no golden files ({', '.join(c + '.npz' for c in cases)}) in {d}")
    results = []
    for case in found:
        meta, arrays = load_case(d / f"{case}.npz")
        sz = size or _size_from(arrays, meta)
        t = time.perf_counter()
        try:
            if case == "generator":
                r = run_generator(meta, arrays)
            else:
                r = {"hypernet": run_hypernet, "w_encoder": run_w_encoder, "inversion": run_inversion}[case](
                    meta, arrays, sz)
        except KeyError as e:
            raise HsError(f"{d / (case + '.npz')} lacks array or meta field {e}") from None
        r.seconds = time.perf_counter() - t
        results.append(r)
        log(format_case(r))
        gc.collect()
    return results


def _size_from(arrays: dict, meta: dict) -> int:
    for k in ("latents", "codes", "latent_out"):
        if k in arrays:
            return 2 ** ((arrays[k].shape[1] + 2) // 2)
    return int(meta.get("output_size", 1024))


def format_case(r: CaseResult) -> str:
    lines = [f"{r.case}: {'PASS' if r.ok else 'FAIL'}  max abs error {r.max_err:.3g}  ({r.seconds:.1f} s)"]
    for c in r.checks:
        tol = TOL[c.kind]
        lines.append(f"  {'ok  ' if c.ok else 'FAIL'} {c.name:<24} {c.kind:<7} err {c.err:.3g} "
                     f"(atol {tol[0]:g}, rtol {tol[1]:g})")
    return "\n".join(lines)


DEFAULT_DIR = Path(__file__).resolve().parents[2] / "tests" / "data" / "golden"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """Golden verification against the official implementation."""


@cli.command("verify")
@click.argument("dir", default=str(DEFAULT_DIR), metavar="[DIR]")
@click.option("--cases", default=",".join(CASES), show_default=True, help="Comma list of " + ",".join(CASES) + ".")
@click.option("--threads", type=int, default=0, show_default=True, help="Torch threads (0 = torch default).")
@interruptible
def verify_cmd(dir, cases, threads):
    """Verify our fp32 reference against a golden directory DIR (default: the repository's tests/data/golden).
    Exit 0 when every case passes, 1 when one fails, 2 on a user error."""
    if threads:
        torch.set_num_threads(threads)
    names = tuple(c.strip() for c in cases.split(",") if c.strip())
    bad = [c for c in names if c not in CASES]
    if bad:
        raise HsError(f"unknown golden cases {bad}; expected some of {list(CASES)}")
    results = verify_dir(dir, names)
    ok = all(r.ok for r in results)
    click.echo(f"golden: {sum(r.ok for r in results)}/{len(results)} cases PASS" + ("" if ok else "  -> FAIL"))
    return 0 if ok else 1


def main(argv=None) -> int:
    """`python -m hyperstyle_trt.models.golden verify [DIR]`: the exit code (0 pass, 1 fail, 2 user error)."""
    return run(cli, argv)


if __name__ == "__main__":
    main()
