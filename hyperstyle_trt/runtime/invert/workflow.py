"""The hs-invert workflow as a library: photos in; FFHQ-aligned, inverted, edited (and optionally PTI-refined,
domain-adapted, interpolated) outputs and OUT/results.json out. `hs-invert` (cli/invert.py) parses flags into an
`InvertJob` and calls this; Python users and tests call the same code.

    wf = InvertWorkflow(job)        # collects the photos: HsError (one line) before any work
    wf.load()                       # aligner, Inverter (Inverter.from_source), edit directions, target generator, LPIPS
    report = wf.run(events=None)    # every photo: align, invert in batches of job.batch, write; results.json
                                    # events: a runtime.invert.events.RunEvents (per photo, per batch, failures)

Per photo (face), under OUT/<photo stem>/: aligned.png, inversion.png, edit_<label>_<strength>.png, pasted.png and
pasted_<label>_<strength>.png (job.pastes: at the photo's resolution, every face of the photo in the first face's
folder; runtime.paste), adapted.png
(target_generator), refined.png (refine_steps), grid.png, codes.npz (W+ codes [n_latent,style_dim] and a per-layer
Δ summary), latents.safetensors (save_codes), generator.safetensors / refined_generator.safetensors (save_weights).
interpolate: OUT/interpolation/<a>__<b>/frame_NNN.png and <a>__<b>.gif. A photo that fails (unreadable, no face,
inversion error) is recorded with its error, reported to `events.failed` at once, and skipped. Before writing,
the files a previous run into OUT listed in its results.json are removed (outputs.clear_previous).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.runtime.invert.events import RunEvents
from hyperstyle_trt.runtime.invert.job import InvertJob, collect_photos
from hyperstyle_trt.runtime.invert.outputs import (InvertReport, clear_previous, fmt_strength, grid, unique_name,
                                                   write_npz, write_png, write_safetensors)


@dataclass
class Item:
    """One face to invert. name: its output folder; photo: the input [H,W,3] uint8; aligned: [A,A,3] uint8;
    quad: the alignment quad [4,2] in photo pixels (None without alignment); transform: its runtime.paste.
    CropTransform; mask: its face_mask [A,A] (job.pastes); group: the photo's faces, pasted together; tiles: its
    grid tiles, held until the group is pasted."""

    name: str
    source: Path
    photo: np.ndarray
    aligned: np.ndarray
    record: dict
    quad: np.ndarray | None = None
    transform: object = None
    mask: np.ndarray | None = None
    group: list | None = None
    tiles: list | None = None
    pasted: list | None = None  # [(file suffix, crop [s,s,3] uint8)]: inversion, then every edit
    settled: bool = False  # inverted and written, or failed


def _u8(x) -> np.ndarray:
    """[N,3,H,W] in [-1,1] -> [N,H,W,3] uint8 numpy (models.images.unit_to_uint8)."""
    from hyperstyle_trt.models.images import unit_to_uint8

    return unit_to_uint8(x).cpu().numpy()


class InvertWorkflow:
    """One InvertJob: `load()` resolves the aligner, Inverter, edits, target generator and LPIPS; `run()` aligns,
    inverts (in batches) and writes every photo, and returns the InvertReport (also OUT/results.json)."""

    def __init__(self, job: InvertJob):
        self.job = job
        self.files, ignored = collect_photos(job.photos)
        if job.interpolate and not job.align_only and len(self.files) < 2 and not job.all_faces:
            raise HsError(f"--interpolate blends consecutive photos: give at least two (got {len(self.files)}: "
                          f"{self.files[0]}), or --all-faces for the faces of one photo")
        self.report = InvertReport(out=Path(job.out), ignored=ignored, config=job.to_dict())
        # one face per photo: no need for buffers (Δ for every row) larger than the run
        self.batch = job.batch if job.all_faces else min(job.batch, len(self.files))
        self.aligner = self.inv = self.target = self.lpips = None
        self.directions: list = []
        self.prev = None  # (name, owned one-row InverterResult) for interpolate
        self.used: set[str] = set()
        self.events = RunEvents()
        self.told_faces = False  # the several-faces notice is said once per run
        self.n_batches = 0
        self.loaded = False

    # ---- set-up ---------------------------------------------------------------------------------------------------
    def load(self) -> None:
        """Build what the run needs (the slow part: landmark model, Inverter, LPIPS). Idempotent."""
        if self.loaded:
            return
        job, src = self.job, self.job.source
        if job.align:
            from hyperstyle_trt.runtime.align import Aligner

            self.aligner = Aligner(output_size=job.align_size)
        self.loaded = True
        if job.align_only:
            return
        from hyperstyle_trt.core.device import torch_device
        from hyperstyle_trt.runtime import Inverter

        if src.device != "auto":
            torch_device(src.device)  # HsError (one line) when this machine lacks that device
        self.inv = Inverter.from_source(src, max_batch=self.batch, n_iters=job.iters)
        cfg = self.inv.cfg.generator
        self.report.model = {"config": self.inv.cfg.name, "size": cfg.size, "input_size": self.inv.input_size,
                             "weights": src.checkpoint or ("export " + src.export_dir if src.export_dir else
                                                           "embedded default (untrained)"),
                             "runtime": self.inv.describe()}
        self.directions = [e.direction(cfg.n_latent, cfg.style_dim) for e in job.edits]
        if job.target_generator:
            from hyperstyle_trt.runtime.refine import load_target_generator

            self.target = load_target_generator(job.target_generator, cfg).state_dict()
        if job.refine_steps:
            from hyperstyle_trt.models.lpips import LPIPS

            self.lpips = LPIPS("alex").to(self.inv.device)
        if job.save_weights or job.save_codes:
            try:
                import safetensors.torch  # noqa: F401
            except ImportError:
                raise HsError("--save-weights / --save-codes need safetensors: pip install "
                              "'hyperstyle-trt[invert]'") from None

    def run(self, on_photo: Callable[[Path], None] | None = None, events: RunEvents | None = None) -> InvertReport:
        """Every photo: align, invert in batches, write; results.json after each batch and at the end (also when
        interrupted). `on_photo(path)` is called after each photo is aligned; `events` (RunEvents) hears of every
        photo, batch, failure and notice as it happens."""
        self.load()
        self.events = ev = events or RunEvents()
        report, pending = self.report, []
        removed = clear_previous(report.out)
        if removed:
            report.previous_run_removed = len(removed)
            ev.notice(f"removed {len(removed)} file(s) of the previous run into {report.out} (listed in its "
                      "results.json) before writing this run's")
        try:
            for k, f in enumerate(self.files):
                items = self.photo(f)
                if self.job.align_only:
                    report.records.extend(it.record for it in items)
                else:
                    pending.extend(items)
                    report.pending = [it.record for it in pending]
                ev.photo_done(f, len(items))
                if on_photo is not None:
                    on_photo(f)
                if not self.job.align_only:
                    while len(pending) >= self.batch or (k == len(self.files) - 1 and pending):
                        self.invert(pending[:self.batch])
                        pending = pending[self.batch:]
                        report.pending = [it.record for it in pending]
                        report.write()
        finally:
            report.write()  # an interrupted run still lists every file it wrote
        return report

    # ---- photos -> aligned items ----------------------------------------------------------------------------------
    def photo(self, path: Path) -> list[Item]:
        """Load and align one photo (every face with all_faces); writes aligned.png per face. A failure is recorded
        (status failed) and gives no items."""
        from hyperstyle_trt.runtime.align import align_face, load_photo

        job, rec = self.job, {"input": str(path), "status": "ok", "timings": {}}
        t = time.perf_counter()
        try:
            img = load_photo(path)
            rec["timings"]["load_s"] = round(time.perf_counter() - t, 4)
            rec["input_size"] = [int(img.shape[1]), int(img.shape[0])]
            t = time.perf_counter()
            als: list = [None]
            if self.aligner is not None:
                a = self.aligner
                faces = a.detect(img, path.name)  # best first
                if not faces:
                    a.align(img, name=path.name)  # raises Aligner.align's own "no face found" line
                rec["faces_found"] = len(faces)
                als = [align_face(img, f.landmarks, a.output_size, a.transform_size, a.enable_padding, face=f)
                       for f in (faces if job.all_faces else faces[:1])]
                if len(faces) > 1 and not job.all_faces and not self.told_faces:
                    self.told_faces = True
                    self.events.notice(f"{path.name}: {len(faces)} faces found, inverting the best-scoring one; "
                                       "--all-faces inverts every face (told once; results.json: faces_found)")
            rec["timings"]["align_s"] = round(time.perf_counter() - t, 4)
        except HsError as e:
            rec.update(status="failed", error=str(e), name=unique_name(path.stem, self.used))
            self.report.records.append(rec)
            self.events.failed(rec)
            return []
        items = []
        for k, al in enumerate(als):
            r = dict(rec, timings=dict(rec["timings"]))
            r["name"] = unique_name(path.stem if k == 0 else f"{path.stem}_face{k + 1}", self.used)
            if al is None:
                from PIL import Image

                a = job.align_size
                crop = np.asarray(Image.fromarray(img).resize((a, a), Image.Resampling.LANCZOS))
                r["aligned"] = "resized (--no-align)" + ("" if img.shape[0] == img.shape[1] else ", not square")
                quad = None
            else:
                from hyperstyle_trt.runtime.paste import CropTransform, face_mask

                crop, quad = al.image, al.quad
                tr = CropTransform.from_alignment(al, img.shape[:2])
                r["face"] = {"box": list(al.face.box), "score": round(al.face.score, 4),
                             "quad": al.quad.round(2).tolist(), "padded": al.padded}
                r["transform"] = tr.to_dict()
            t = time.perf_counter()
            write_png(crop, self.report.out / r["name"] / "aligned.png")
            r["outputs"] = [f"{r['name']}/aligned.png"]
            r["timings"]["write_s"] = round(time.perf_counter() - t, 4)
            items.append(Item(r["name"], path, img, crop, r, quad))
            if al is not None:
                items[-1].transform = tr
                if job.pastes:
                    items[-1].mask = face_mask(tr.to_crop(al.face.landmarks), tr.size)
                    items[-1].group = group = items[0].group or []
                    group.append(items[-1])
        return items

    # ---- items -> inversion and everything after ------------------------------------------------------------------
    def invert(self, items: list[Item]) -> None:
        """Invert `items` as one batch, edit, and write each item's outputs; records appended to the report."""
        import torch

        inv, job = self.inv, self.job
        names = [it.name for it in items]
        self.n_batches += 1
        self.events.batch_start(names)
        t0 = t = time.perf_counter()
        try:
            res = inv.invert(np.stack([it.aligned for it in items]), n_iters=job.iters, copy=True)
            if inv.device.type == "cuda":
                torch.cuda.synchronize(inv.device)
        except HsError as e:
            for it in items:
                it.record.update(status="failed", error=f"inversion: {e}")
                self.report.records.append(it.record)
                self.events.failed(it.record)
                self._paste(it)
            self.events.batch_done(names, time.perf_counter() - t0)
            return
        share = (time.perf_counter() - t) / len(items)
        inv_u8 = res.to_uint8()
        edits = []
        t = time.perf_counter()
        for e, direction in zip(job.edits, self.directions):
            imgs = inv.edit(res, direction, list(e.strengths))  # [K,B,3,S,S]
            edits.append((e, _u8(imgs.flatten(0, 1)).reshape(len(e.strengths), len(items), *inv_u8.shape[1:])))
        edit_share = (time.perf_counter() - t) / len(items)
        for i, it in enumerate(items):
            try:
                self._one(it, res, i, inv_u8[i], edits, share, edit_share)
            except HsError as e:
                it.record.update(status="failed", error=str(e))
                it.pasted = None
                self.events.failed(it.record)
            self.report.records.append(it.record)
            self._paste(it)
        self.events.batch_done(names, time.perf_counter() - t0)

    def _one(self, it: Item, res, i: int, inv_u8, edits, share: float, edit_share: float) -> None:
        inv, job, r = self.inv, self.job, it.record
        d, out = self.report.out / it.name, r["outputs"]
        r["timings"].update(invert_s=round(share, 4), edit_s=round(edit_share, 4))
        t = time.perf_counter()
        tiles = [(it.photo, "input", it.quad), (it.aligned, "aligned", None), (inv_u8, "inversion", None)]
        write_png(inv_u8, d / "inversion.png")
        out.append(f"{it.name}/inversion.png")
        pasted = [("", inv_u8)]
        for e, arr in edits:
            for k, s in enumerate(e.strengths):
                fn = f"edit_{e.label}_{fmt_strength(s)}.png"
                write_png(arr[k, i], d / fn)
                out.append(f"{it.name}/{fn}")
                tiles.append((arr[k, i], f"{e.label} {fmt_strength(s)}", None))
                pasted.append((f"_{e.label}_{fmt_strength(s)}", arr[k, i]))
        codes = res.codes[i].detach().float().cpu()
        names = sorted(res.deltas)
        absd = [res.deltas[n][i].detach().float().abs() for n in names]
        summary = {n: {"mean_abs": float(a.mean()), "max_abs": float(a.max())} for n, a in zip(names, absd)}
        r["delta_summary"] = summary
        write_npz(d / "codes.npz", codes=codes.numpy(), layers=np.array(names),
                  delta_mean_abs=np.array([v["mean_abs"] for v in summary.values()], np.float32),
                  delta_max_abs=np.array([v["max_abs"] for v in summary.values()], np.float32))
        out.append(f"{it.name}/codes.npz")
        if job.save_codes:
            write_safetensors(d / "latents.safetensors",
                              {"codes": codes, **{f"delta.{n}": res.deltas[n][i] for n in names}})
            out.append(f"{it.name}/latents.safetensors")
        r["timings"]["write_s"] += round(time.perf_counter() - t, 4)
        folded = None
        if job.save_weights or job.refine_steps:
            t = time.perf_counter()
            folded = inv.fine_tuned_weights(res, i)
            if job.save_weights:
                write_safetensors(d / "generator.safetensors", folded)
                out.append(f"{it.name}/generator.safetensors")
            r["timings"]["weights_s"] = round(time.perf_counter() - t, 4)
        if self.target is not None:
            from hyperstyle_trt.runtime.refine import adapt_generator, render

            t = time.perf_counter()
            g = adapt_generator(self.target, {n: res.deltas[n][i] for n in names}, inv.cfg.generator, inv.device)
            ad = _u8(render(g, res.codes[i:i + 1]))[0]
            write_png(ad, d / "adapted.png")
            out.append(f"{it.name}/adapted.png")
            tiles.append((ad, "target generator", None))
            r["timings"]["adapt_s"] = round(time.perf_counter() - t, 4)
        if job.refine_steps:
            self._refine(it, res, i, folded, tiles)
        if it.group is not None:  # the grid waits for the photo's pasted image (self._paste)
            it.tiles, it.pasted = tiles, pasted
        else:
            self._grid(it, tiles)
        if job.interpolate:
            self._interpolate(it, res, i)

    def _grid(self, it: Item, tiles) -> None:
        t = time.perf_counter()
        write_png(grid(tiles), self.report.out / it.name / "grid.png")
        it.record["outputs"].append(f"{it.name}/grid.png")
        it.record["timings"]["write_s"] += round(time.perf_counter() - t, 4)

    def _paste(self, it: Item) -> None:
        """Once every face of `it`'s photo is done (ok or failed): paste the inverted faces back into the photo
        (runtime.paste.paste_faces), once for the inversion and once per edit strength, write pasted*.png into the
        first face's folder, then the grids of the ok faces with the pasted tile beside the crops."""
        it.settled = True
        group = it.group
        if group is None or not all(f.settled for f in group):
            return
        from hyperstyle_trt.runtime.paste import paste_faces

        ok = [f for f in group if f.pasted is not None]
        if not ok:
            return
        first, t = group[0], time.perf_counter()
        files = []
        for k, (suffix, _) in enumerate(ok[0].pasted):
            img = paste_faces(first.photo, [(f.pasted[k][1], f.transform, f.mask) for f in ok])
            rel = f"{first.name}/pasted{suffix}.png"
            write_png(img, self.report.out / rel)
            files.append(rel)
            if k == 0:
                tile = (img, "pasted" if len(ok) == 1 else f"pasted ({len(ok)} faces)", None)
        first.record["outputs"] += files
        for f in ok:
            f.record["pasted"] = {"files": files, "faces": [g.name for g in ok]}
            f.record["timings"]["paste_s"] = round((time.perf_counter() - t) / len(ok), 4)
            f.tiles.insert(3, tile)
            self._grid(f, f.tiles)
            f.tiles = f.pasted = None
        for f in group:
            f.group = None

    def _refine(self, it: Item, res, i: int, folded, tiles) -> None:
        import torch

        from hyperstyle_trt.models.images import uint8_to_unit
        from hyperstyle_trt.runtime.refine import generator_from_state_dict, refine_pti, resize_square

        inv, job, r = self.inv, self.job, it.record
        d = self.report.out / it.name
        t = time.perf_counter()
        target = uint8_to_unit(torch.from_numpy(it.aligned.copy()))[None]  # [1,3,A,A] in [-1,1]
        g = generator_from_state_dict(inv.cfg.generator, folded, inv.device)
        rr = refine_pti(g, res.codes[i:i + 1].float(), target, job.refine_steps, self.lpips, lr=job.refine_lr)
        with torch.no_grad():
            side = min(256, inv.cfg.generator.size)
            tg = resize_square(target.to(inv.device), side)
            before = float(self.lpips(resize_square(g(res.codes[i:i + 1].float()), side), tg))
            after = float(self.lpips(resize_square(rr.image, side), tg))
        img = _u8(rr.image)[0]
        write_png(img, d / "refined.png")
        r["outputs"].append(f"{it.name}/refined.png")
        tiles.append((img, f"PTI {job.refine_steps} steps", None))
        if job.save_weights:
            write_safetensors(d / "refined_generator.safetensors", rr.generator.state_dict())
            r["outputs"].append(f"{it.name}/refined_generator.safetensors")
        r["refine"] = {"steps": job.refine_steps, "lr": job.refine_lr, "lpips_alex_before": round(before, 5),
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
            out = self.report.out
            t = time.perf_counter()
            frames = to_uint8_frames(interpolate(self.inv, pres, 0, 0, self.job.frames, res_b=one))
            sub = out / "interpolation" / f"{pname}__{it.name}"
            files = []
            for k, f in enumerate(frames):
                write_png(f, sub / f"frame_{k:03d}.png")
                files.append(str((sub / f"frame_{k:03d}.png").relative_to(out)))
            gif = write_gif(frames, sub.with_suffix(".gif"))
            self.report.interpolations.append({"from": pname, "to": it.name, "frames": files,
                                               "gif": str(gif.relative_to(out)),
                                               "seconds": round(time.perf_counter() - t, 3)})
        self.prev = (it.name, one)


def invert_photos(job: InvertJob, on_photo: Callable[[Path], None] | None = None,
                  events: RunEvents | None = None) -> InvertReport:
    """`InvertWorkflow(job).run(on_photo, events)`: the whole hs-invert run from Python."""
    return InvertWorkflow(job).run(on_photo, events)
