"""`hs-invert`: photos in; FFHQ-aligned, inverted, edited (and optionally PTI-refined, domain-adapted, interpolated).

    hs-invert photo.jpg photos/ --out out/                     # embedded default weights (untrained: timing only)
    hs-invert photos/ --out out/ --checkpoint hyperstyle_ffhq.pt --w-encoder faces_w_encoder.pt \\
        --edit age.pt:-3,3 --save-weights
    hs-invert photos/ --out out/ --export-dir hs_export --executor tensorrt --batch 8
    hs-invert photos/ --out crops/ --align-only                # FFHQ crops only

Per photo (face), under OUT/<photo stem>/: aligned.png (the FFHQ crop at --align-size), inversion.png,
edit_<name>_<strength>.png, adapted.png (--target-generator), refined.png (--refine-steps), grid.png (input |
aligned | inversion | ... side by side), codes.npz (W+ codes and a per-layer Δ summary), latents.safetensors
(--save-codes: codes and every layer's Δ), generator.safetensors / refined_generator.safetensors (--save-weights:
the per-image generator, rosinality names; runtime.refine.load_generator_weights reads it). OUT/results.json: every
photo's status, timings, outputs and error. --interpolate: OUT/interpolation/<a>__<b>/ frames and a GIF between
consecutive photos. A bad photo (unreadable, no face) is reported and skipped; exit 1 when any failed, 2 on a user
error before any work (one line on stderr), 0 otherwise. Every file is written atomically (core.atomic).
"""

from __future__ import annotations

import io
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import click
import numpy as np

from hyperstyle_trt.core.atomic import atomic_path, write_json_atomic
from hyperstyle_trt.core.entry import interruptible, run
from hyperstyle_trt.core.errors import HsError

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm"}
TILE = 256  # grid tile side (px)


@dataclass
class EditSpec:
    """--edit FILE:STRENGTHS. source: a .npy/.pt path, or 'seed:N' (a unit-norm Gaussian direction in W from seed N,
    for demos and tests); label: the file stem / 'seedN' (output names)."""

    source: str
    strengths: tuple[float, ...]
    label: str
    direction: object = None  # resolved tensor [n_latent, style_dim]


@dataclass
class Item:
    """One face to invert. name: its output folder; photo: the input [H,W,3] uint8; aligned: [A,A,3] uint8."""

    name: str
    source: Path
    photo: np.ndarray
    aligned: np.ndarray
    record: dict
    quad: np.ndarray | None = None


@dataclass
class Run:
    out: Path
    records: list[dict] = field(default_factory=list)
    interpolations: list[dict] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)
    t0: float = field(default_factory=time.perf_counter)

    def write(self) -> None:
        ok = sum(r["status"] == "ok" for r in self.records)
        write_json_atomic(self.out / "results.json", {
            "config": self.config, "model": self.model, "ok": ok, "failed": len(self.records) - ok,
            "seconds": round(time.perf_counter() - self.t0, 3), "ignored": self.ignored, "images": self.records,
            "interpolations": self.interpolations})


# -------------------------------------------------------------------------------------------------- parsing


def parse_edit(spec: str) -> EditSpec:
    """'FILE:S1,S2,...' (split at the last ':'); FILE may be 'seed:N'."""
    src, sep, vals = spec.rpartition(":")
    if not sep or not src:
        raise HsError(f"--edit {spec!r}: expected FILE:STRENGTHS, e.g. age.pt:-3,3 or seed:0:-2,2")
    try:
        strengths = tuple(float(v) for v in vals.split(",") if v.strip() != "")
    except ValueError:
        raise HsError(f"--edit {spec!r}: strengths must be comma-separated numbers, got {vals!r}") from None
    if not strengths or not all(np.isfinite(strengths)):
        raise HsError(f"--edit {spec!r}: give at least one finite strength after the ':'")
    if src == "seed":
        raise HsError(f"--edit {spec!r}: a seed direction is seed:N:STRENGTHS, e.g. seed:0:-2,2")
    m = re.fullmatch(r"seed:(\d+)", src)
    if m:
        return EditSpec(src, strengths, f"seed{m.group(1)}")
    p = Path(src)
    if not p.is_file():
        raise HsError(f"--edit {spec!r}: direction file not found: {p}")
    return EditSpec(src, strengths, re.sub(r"[^A-Za-z0-9_.-]", "_", p.stem))


def seed_direction(seed: int, style_dim: int):
    """A unit-norm direction in W [style_dim] from torch's CPU generator with `seed` (deterministic)."""
    import torch

    d = torch.randn(style_dim, generator=torch.Generator().manual_seed(seed))
    return d / d.norm()


def collect_photos(paths: tuple[str, ...]) -> tuple[list[Path], list[str]]:
    """Files given, and the image files (by extension, sorted, not hidden) of directories given; plus the names
    of directory entries that were ignored (not an image extension)."""
    files, ignored = [], []
    for s in paths:
        p = Path(s)
        if p.is_dir():
            for f in sorted(p.iterdir()):
                if f.name.startswith(".") or not f.is_file():
                    continue
                (files if f.suffix.lower() in IMAGE_EXTS else ignored).append(f if f.suffix.lower() in IMAGE_EXTS
                                                                              else str(f))
        elif p.exists():
            files.append(p)
        else:
            raise HsError(f"no such photo or directory: {p}")
    if not files:
        raise HsError(f"no photos found in {', '.join(paths)} (looked for {', '.join(sorted(IMAGE_EXTS))})")
    return files, ignored


def _unique(name: str, used: set[str]) -> str:
    base, k = re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "photo", 1
    out = base
    while out in used:
        k += 1
        out = f"{base}_{k}"
    used.add(out)
    return out


# -------------------------------------------------------------------------------------------------- writing


def _png(arr: np.ndarray, path: Path) -> None:
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")


def _npz(path: Path, **arrays) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())


def _safetensors(path: Path, tensors: dict) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().float().contiguous() for k, v in tensors.items()}, str(tmp))


def _tile(arr: np.ndarray, caption: str, quad: np.ndarray | None = None) -> "object":
    """An image letterboxed into a TILE x TILE square (white), a caption strip below; the alignment quad drawn."""
    from PIL import Image, ImageDraw, ImageFont

    im = Image.fromarray(arr)
    s = TILE / max(im.size)
    small = im.resize((max(1, round(im.size[0] * s)), max(1, round(im.size[1] * s))), Image.Resampling.LANCZOS)
    tile = Image.new("RGB", (TILE, TILE + 20), (255, 255, 255))
    ox, oy = (TILE - small.size[0]) // 2, (TILE - small.size[1]) // 2
    tile.paste(small, (ox, oy))
    draw = ImageDraw.Draw(tile)
    if quad is not None:
        pts = [(ox + (x + 0.5) * s, oy + (y + 0.5) * s) for x, y in quad]
        draw.line(pts + pts[:1], fill=(255, 0, 0), width=2)
    draw.text((4, TILE + 2), caption, fill=(0, 0, 0), font=ImageFont.load_default(size=14))
    return tile


def grid(tiles: list[tuple[np.ndarray, str, np.ndarray | None]]) -> np.ndarray:
    """Tiles side by side -> [TILE+20, n*TILE, 3] uint8."""
    from PIL import Image

    ims = [_tile(a, c, q) for a, c, q in tiles]
    out = Image.new("RGB", (TILE * len(ims), TILE + 20), (255, 255, 255))
    for k, t in enumerate(ims):
        out.paste(t, (k * TILE, 0))
    return np.asarray(out)


def _fmt_strength(v: float) -> str:
    return f"{v:+g}"


# ----------------------------------------------------------------------------------------------------- steps


class Workflow:
    """The resolved run: aligner, Inverter, edits, target generator, LPIPS; `photo()` aligns one file into Items,
    `batch()` inverts Items and writes their outputs."""

    def __init__(self, o: dict, run: Run):
        import torch

        self.o, self.run, self.torch = o, run, torch
        self.aligner = None
        if o["align"]:
            from hyperstyle_trt.runtime.align import Aligner

            self.aligner = Aligner(output_size=o["align_size"])
        self.inv = None
        self.prev = None  # (name, owned one-row InverterResult) for --interpolate
        self.used: set[str] = set()
        if o["align_only"]:
            return
        from hyperstyle_trt.runtime import Inverter

        if o["export_dir"]:
            self.inv = Inverter.from_export(o["export_dir"], executor=o["executor"] or "tensorrt",
                                            max_batch=o["batch"], n_iters=o["iters"],
                                            device=None if o["device"] == "auto" else o["device"])
        else:
            self.inv = Inverter.from_checkpoint(o["checkpoint"], w_encoder=o["w_encoder"], config=o["config"],
                                                executor=o["executor"] or "torch", device=_device(o["device"]),
                                                precision=o["precision"], max_batch=o["batch"], n_iters=o["iters"])
        cfg = self.inv.cfg.generator
        run.model = {"config": self.inv.cfg.name, "size": cfg.size, "input_size": self.inv.input_size,
                     "weights": o["checkpoint"] or ("export " + o["export_dir"] if o["export_dir"] else
                                                    "embedded default (untrained)"),
                     "runtime": self.inv.describe()}
        from hyperstyle_trt.runtime.edit import load_direction

        for e in o["edits"]:
            src = seed_direction(int(e.source[5:]), cfg.style_dim) if e.source.startswith("seed:") else e.source
            e.direction = load_direction(src, cfg.n_latent, cfg.style_dim)
        self.target = None
        if o["target_generator"]:
            from hyperstyle_trt.runtime.refine import load_target_generator

            self.target = load_target_generator(o["target_generator"], cfg).state_dict()
        self.lpips = None
        if o["refine_steps"]:
            from hyperstyle_trt.models.lpips import LPIPS

            self.lpips = LPIPS("alex").to(self.inv.device)
        if o["save_weights"] or o["save_codes"]:
            try:
                import safetensors.torch  # noqa: F401
            except ImportError:
                raise HsError("--save-weights / --save-codes need safetensors: pip install "
                              "'hyperstyle-trt[invert]'") from None

    # ---- photos -> aligned items ----------------------------------------------------------------------------------
    def photo(self, path: Path) -> list[Item]:
        from hyperstyle_trt.runtime.align import load_photo

        o, rec = self.o, {"input": str(path), "status": "ok", "timings": {}}
        t = time.perf_counter()
        try:
            img = load_photo(path)
            rec["timings"]["load_s"] = round(time.perf_counter() - t, 4)
            rec["input_size"] = [int(img.shape[1]), int(img.shape[0])]
            t = time.perf_counter()
            if self.aligner is not None:
                als = self.aligner.align(img, all_faces=o["all_faces"], name=path.name)
            else:
                als = [None]
            rec["timings"]["align_s"] = round(time.perf_counter() - t, 4)
        except HsError as e:
            rec.update(status="failed", error=str(e), name=_unique(path.stem, self.used))
            self.run.records.append(rec)
            return []
        items = []
        for k, al in enumerate(als):
            r = dict(rec, timings=dict(rec["timings"]))
            r["name"] = _unique(path.stem if k == 0 else f"{path.stem}_face{k + 1}", self.used)
            if al is None:
                from PIL import Image

                a = o["align_size"]
                crop = np.asarray(Image.fromarray(img).resize((a, a), Image.Resampling.LANCZOS))
                r["aligned"] = "resized (--no-align)" + ("" if img.shape[0] == img.shape[1] else ", not square")
                quad = None
            else:
                crop, quad = al.image, al.quad
                r["face"] = {"box": list(al.face.box), "score": round(al.face.score, 4), "quad": al.quad.round(2)
                             .tolist(), "padded": al.padded}
            d = self.run.out / r["name"]
            t = time.perf_counter()
            _png(crop, d / "aligned.png")
            r["outputs"] = [f"{r['name']}/aligned.png"]
            r["timings"]["write_s"] = round(time.perf_counter() - t, 4)
            items.append(Item(r["name"], path, img, crop, r, quad))
        return items

    # ---- items -> inversion and everything after ------------------------------------------------------------------
    def batch(self, items: list[Item]) -> None:
        torch, inv, o = self.torch, self.inv, self.o
        t = time.perf_counter()
        try:
            res = inv.invert(np.stack([it.aligned for it in items]), n_iters=o["iters"], copy=True)
            if inv.device.type == "cuda":
                torch.cuda.synchronize(inv.device)
        except HsError as e:
            for it in items:
                it.record.update(status="failed", error=f"inversion: {e}")
                self.run.records.append(it.record)
            return
        share = (time.perf_counter() - t) / len(items)
        inv_u8 = res.to_uint8()
        edits = []
        t = time.perf_counter()
        for e in o["edits"]:
            imgs = inv.edit(res, e.direction, list(e.strengths))  # [K,B,3,S,S]
            edits.append((e, _u8(imgs.flatten(0, 1)).reshape(len(e.strengths), len(items), *inv_u8.shape[1:])))
        edit_share = (time.perf_counter() - t) / len(items)
        for i, it in enumerate(items):
            try:
                self._one(it, res, i, inv_u8[i], edits, share, edit_share)
            except HsError as e:
                it.record.update(status="failed", error=str(e))
            self.run.records.append(it.record)

    def _one(self, it: Item, res, i: int, inv_u8, edits, share: float, edit_share: float) -> None:
        inv, o, r = self.inv, self.o, it.record
        d, out = self.run.out / it.name, r["outputs"]
        r["timings"].update(invert_s=round(share, 4), edit_s=round(edit_share, 4))
        t = time.perf_counter()
        tiles = [(it.photo, "input", it.quad), (it.aligned, "aligned", None), (inv_u8, "inversion", None)]
        _png(inv_u8, d / "inversion.png")
        out.append(f"{it.name}/inversion.png")
        for e, arr in edits:
            for k, s in enumerate(e.strengths):
                fn = f"edit_{e.label}_{_fmt_strength(s)}.png"
                _png(arr[k, i], d / fn)
                out.append(f"{it.name}/{fn}")
                tiles.append((arr[k, i], f"{e.label} {_fmt_strength(s)}", None))
        codes = res.codes[i].detach().float().cpu()
        names = sorted(res.deltas)
        absd = [res.deltas[n][i].detach().float().abs() for n in names]
        summary = {n: {"mean_abs": float(a.mean()), "max_abs": float(a.max())} for n, a in zip(names, absd)}
        r["delta_summary"] = summary
        _npz(d / "codes.npz", codes=codes.numpy(), layers=np.array(names),
             delta_mean_abs=np.array([v["mean_abs"] for v in summary.values()], np.float32),
             delta_max_abs=np.array([v["max_abs"] for v in summary.values()], np.float32))
        out.append(f"{it.name}/codes.npz")
        if o["save_codes"]:
            _safetensors(d / "latents.safetensors", {"codes": codes, **{f"delta.{n}": res.deltas[n][i] for n in names}})
            out.append(f"{it.name}/latents.safetensors")
        r["timings"]["write_s"] += round(time.perf_counter() - t, 4)
        folded = None
        if o["save_weights"] or o["refine_steps"]:
            t = time.perf_counter()
            folded = inv.fine_tuned_weights(res, i)
            if o["save_weights"]:
                _safetensors(d / "generator.safetensors", folded)
                out.append(f"{it.name}/generator.safetensors")
            r["timings"]["weights_s"] = round(time.perf_counter() - t, 4)
        if self.target is not None:
            from hyperstyle_trt.runtime.refine import adapt_generator, render

            t = time.perf_counter()
            g = adapt_generator(self.target, {n: res.deltas[n][i] for n in names}, inv.cfg.generator, inv.device)
            ad = _u8(render(g, res.codes[i:i + 1]))[0]
            _png(ad, d / "adapted.png")
            out.append(f"{it.name}/adapted.png")
            tiles.append((ad, "target generator", None))
            r["timings"]["adapt_s"] = round(time.perf_counter() - t, 4)
        if o["refine_steps"]:
            self._refine(it, res, i, folded, tiles)
        t = time.perf_counter()
        _png(grid(tiles), d / "grid.png")
        out.append(f"{it.name}/grid.png")
        r["timings"]["write_s"] += round(time.perf_counter() - t, 4)
        if o["interpolate"]:
            self._interpolate(it, res, i)

    def _refine(self, it: Item, res, i: int, folded, tiles) -> None:
        from hyperstyle_trt.runtime.refine import generator_from_state_dict, refine_pti, resize_square

        torch, inv, o, r = self.torch, self.inv, self.o, it.record
        d = self.run.out / it.name
        t = time.perf_counter()
        target = torch.from_numpy(it.aligned.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
        g = generator_from_state_dict(inv.cfg.generator, folded, inv.device)
        rr = refine_pti(g, res.codes[i:i + 1].float(), target, o["refine_steps"], self.lpips, lr=o["refine_lr"])
        with torch.no_grad():
            side = min(256, inv.cfg.generator.size)
            tg = resize_square(target.to(inv.device), side)
            before = float(self.lpips(resize_square(g(res.codes[i:i + 1].float()), side), tg))
            after = float(self.lpips(resize_square(rr.image, side), tg))
        img = _u8(rr.image)[0]
        _png(img, d / "refined.png")
        r["outputs"].append(f"{it.name}/refined.png")
        tiles.append((img, f"PTI {o['refine_steps']} steps", None))
        if o["save_weights"]:
            _safetensors(d / "refined_generator.safetensors", rr.generator.state_dict())
            r["outputs"].append(f"{it.name}/refined_generator.safetensors")
        r["refine"] = {"steps": o["refine_steps"], "lr": o["refine_lr"], "lpips_alex_before": round(before, 5),
                       "lpips_alex_after": round(after, 5), "loss_per_step": [round(v, 5) for v in rr.losses]}
        r["timings"]["refine_s"] = round(time.perf_counter() - t, 4)

    def _interpolate(self, it: Item, res, i: int) -> None:
        from hyperstyle_trt.runtime.interpolate import interpolate, to_uint8_frames, write_gif
        from hyperstyle_trt.runtime.result import InverterResult

        one = InverterResult(res.images[i:i + 1], res.images_pooled[i:i + 1], res.codes[i:i + 1],
                             {k: v[i:i + 1] for k, v in res.deltas.items()},
                             {k: v[i:i + 1] for k, v in res.raw_deltas.items()}, res.n_iters, False).copy()
        # copy(): owned, and each official Δ a view over its cloned raw Δ (per-channel layers stay [1,O,I])
        if self.prev is not None:
            pname, pres = self.prev
            t = time.perf_counter()
            frames = to_uint8_frames(interpolate(self.inv, pres, 0, 0, self.o["frames"], res_b=one))
            sub = self.run.out / "interpolation" / f"{pname}__{it.name}"
            files = []
            for k, f in enumerate(frames):
                _png(f, sub / f"frame_{k:03d}.png")
                files.append(str((sub / f"frame_{k:03d}.png").relative_to(self.run.out)))
            gif = write_gif(frames, sub.with_suffix(".gif"))
            self.run.interpolations.append({"from": pname, "to": it.name, "frames": files,
                                            "gif": str(gif.relative_to(self.run.out)),
                                            "seconds": round(time.perf_counter() - t, 3)})
        self.prev = (it.name, one)


def _u8(x) -> np.ndarray:
    """[N,3,H,W] in [-1,1] -> [N,H,W,3] uint8."""
    from hyperstyle_trt.runtime.interpolate import to_uint8_frames

    return to_uint8_frames(x)


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise HsError(f"--device {name} requested but CUDA is not available")
    return name


# ------------------------------------------------------------------------------------------------------- CLI


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("photos", nargs=-1, required=True)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option("--no-align", "no_align", is_flag=True, help="Inputs are FFHQ-aligned crops already (resized only).")
@click.option("--align-only", is_flag=True, help="Write the aligned crops and stop.")
@click.option("--align-size", type=int, default=1024, show_default=True, help="Side of aligned.png (FFHQ: 1024).")
@click.option("--all-faces", is_flag=True, help="Every detected face (best first), not only the best one.")
@click.option("--checkpoint", default=None, help="hyperstyle_ffhq.pt (default: embedded deterministic weights).")
@click.option("--w-encoder", "w_encoder", default=None, help="faces_w_encoder.pt (required with --checkpoint).")
@click.option("--config", default=None, help="Model preset without a checkpoint: ffhq1024 (default), ..., tiny.")
@click.option("--export-dir", default=None, type=click.Path(), help="Run an hs-export directory instead.")
@click.option("--executor", type=click.Choice(["torch", "tensorrt", "onnxruntime"]), default=None,
              help="Executor (default: torch; tensorrt with --export-dir).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N.")
@click.option("--precision", type=click.Choice(["fp32", "fp16"]), default="fp32", show_default=True,
              help="Executor precision (torch executor from a checkpoint).")
@click.option("--batch", type=int, default=8, show_default=True, help="Photos per inversion batch.")
@click.option("--iters", type=int, default=5, show_default=True, help="HyperStyle iterations T.")
@click.option("--edit", "edits", multiple=True, metavar="FILE:STRENGTHS",
              help="Latent direction (.npy/.pt, or seed:N for a random one) and comma-separated strengths.")
@click.option("--save-codes", is_flag=True, help="latents.safetensors: W+ codes and every layer's Δ.")
@click.option("--save-weights", is_flag=True, help="generator.safetensors: the per-image generator (Δ folded).")
@click.option("--target-generator", default=None, type=click.Path(),
              help="rosinality g_ema file of the same architecture: render with the predicted Δ applied to it.")
@click.option("--refine-steps", type=int, default=0, show_default=True, help="PTI steps after HyperStyle.")
@click.option("--refine-lr", type=float, default=3e-4, show_default=True, help="PTI learning rate (Adam).")
@click.option("--interpolate", is_flag=True, help="Frames + GIF between consecutive photos (codes and Δ).")
@click.option("--frames", type=int, default=8, show_default=True, help="Frames per interpolation.")
@interruptible
def cli(photos, out, no_align, align_only, align_size, all_faces, checkpoint, w_encoder, config, export_dir,
        executor, device, precision, batch, iters, edits, save_codes, save_weights, target_generator, refine_steps,
        refine_lr, interpolate, frames):
    """Align, invert and edit face photos (files or directories) with HyperStyle."""
    o = dict(align=not no_align, align_only=align_only, align_size=align_size, all_faces=all_faces,
             checkpoint=checkpoint, w_encoder=w_encoder, config=config, export_dir=export_dir, executor=executor,
             device=device, precision=precision, batch=batch, iters=iters,
             edits=[parse_edit(e) for e in edits], save_codes=save_codes, save_weights=save_weights,
             target_generator=target_generator, refine_steps=refine_steps, refine_lr=refine_lr,
             interpolate=interpolate, frames=frames)
    _validate(o)
    files, ignored = collect_photos(photos)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)  # logs: no 80-column wrapping
    run = Run(out=Path(out), ignored=ignored,
              config={k: ([f"{e.source}:{','.join(map(str, e.strengths))}" for e in v] if k == "edits" else v)
                      for k, v in o.items()})
    if not all_faces:  # one face per photo: no need for buffers (Δ for every row) larger than the run
        o["batch"] = batch = min(batch, len(files))
    t = time.perf_counter()
    with console.status("loading the landmark model and the inverter ..."):
        wf = Workflow(o, run)
    console.print(f"ready in {time.perf_counter() - t:.1f} s ({run.model.get('weights', 'alignment only')})")
    if o["checkpoint"] is None and o["export_dir"] is None and not align_only:
        from hyperstyle_trt.models.checkpoint import DEFAULT_NOTICE

        console.print(DEFAULT_NOTICE)
    pending: list[Item] = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as prog:
        task = prog.add_task("photos", total=len(files))
        for k, f in enumerate(files):
            items = wf.photo(f)
            if align_only:
                run.records.extend(it.record for it in items)
            else:
                pending.extend(items)
                while len(pending) >= batch or (k == len(files) - 1 and pending):
                    wf.batch(pending[:batch])
                    pending = pending[batch:]
                    run.write()
            prog.advance(task)
    run.write()
    bad = [r for r in run.records if r["status"] != "ok"]
    for r in bad:
        console.print(f"[red]failed[/] {r['input']}: {r['error']}")
    console.print(f"{len(run.records) - len(bad)} ok, {len(bad)} failed; results in {run.out / 'results.json'}")
    return 1 if bad else 0


def _validate(o: dict) -> None:
    """Option checks before any work (one-line HsError)."""
    for k, lo in (("batch", 1), ("iters", 1), ("align_size", 8), ("frames", 2)):
        if o[k] < lo:
            raise HsError(f"--{k.replace('_', '-')} must be >= {lo}, got {o[k]}")
    if o["refine_steps"] < 0 or not o["refine_lr"] > 0:
        raise HsError(f"--refine-steps must be >= 0 and --refine-lr > 0, got {o['refine_steps']}, {o['refine_lr']}")
    if o["align_only"] and not o["align"]:
        raise HsError("--align-only and --no-align contradict each other")
    if o["all_faces"] and not o["align"]:
        raise HsError("--all-faces needs the alignment (drop --no-align)")
    if o["export_dir"] and (o["checkpoint"] or o["w_encoder"] or o["config"]):
        raise HsError("--export-dir carries its own weights and config; drop --checkpoint/--w-encoder/--config")
    if o["export_dir"] and o["executor"] == "torch":
        raise HsError("--executor torch runs from a checkpoint or the embedded default, not an --export-dir")
    for p, what in ((o["checkpoint"], "checkpoint"), (o["w_encoder"], "W-encoder checkpoint"),
                    (o["target_generator"], "target generator")):
        if p is not None and not Path(p).is_file():
            raise HsError(f"{what} not found: {p}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 all photos ok, 1 some failed, 2 user error (one line on stderr, before any work)."""
    return run(cli, argv)


if __name__ == "__main__":
    main()
