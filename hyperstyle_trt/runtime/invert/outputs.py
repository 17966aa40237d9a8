"""hs-invert's files: PNG / npz / safetensors writers (all atomic, core.atomic), the side-by-side grid, and the run's
report (OUT/results.json).

results.json: {"config": InvertJob.to_dict(), "model": {config, size, input_size, weights, runtime} ({} with
--align-only), "state": running | complete | interrupted | stopped, "ok": n, "failed": n, "seconds": s, "ignored":
[paths], "images": [one record per finished face / failed photo: input, status, name, timings, outputs, error,
face / aligned, transform, faces_found, delta_summary, refine, pasted], "done": [inputs whose every face is
finished], "remaining": [inputs not finished yet], "interpolations": [{from, to, frames, gif, seconds}], "files":
[every file the run wrote, relative to OUT: its manifest], "previous_run_removed": n, "resumed": n (photos a
--resume run took from the results.json it resumed)}. Written (atomically) after every photo and every batch, and
when the run ends in any way.

Nothing half-written: each file is written atomically (core.atomic), and a face's folder is assembled under
OUT/.hs-invert-partial/ and renamed into place once all its files are written (`commit`), so an interrupted run
leaves every photo folder complete or absent; the staging folder is removed when the run ends and before one starts.
A file that cannot be written stops the run (`OutputError`, one line): a full or read-only disk is not a property
of one photo.

The manifest is what a run owns: a later run into the same OUT deletes the files the previous manifest lists (and
folders left empty) before it writes anything (`clear_previous`), so OUT never holds photo folders that its
results.json does not list. Files a person put there are never touched.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hyperstyle_trt.core.atomic import atomic_path, write_json_atomic
from hyperstyle_trt.core.errors import HsError

TILE = 256  # grid tile side (px)
STAGE = ".hs-invert-partial"  # OUT/<STAGE>/<name>/: a face's folder while its files are written


class OutputError(HsError):
    """A file under OUT could not be written (read-only, full disk, a file where a folder must go): the run stops."""


def _out(fn):
    """Writer decorator: a failed write (HsError from core.atomic) becomes OutputError."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except OutputError:
            raise
        except HsError as e:
            raise OutputError(str(e)) from None
    return wrapper


def commit(out: Path, rel: str) -> None:
    """Move OUT/.hs-invert-partial/<rel> (a folder or a file) to OUT/<rel>: one rename, or, where OUT/<rel> is a
    folder already (files a person put there, or the face of a resumed photo), each file renamed into it (each
    rename atomic). OutputError when that fails."""
    src, dst = out / STAGE / rel, out / rel
    if not src.exists():
        return
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir() and dst.is_dir() and not dst.is_symlink():
            for f in sorted(src.iterdir()):
                os.replace(f, dst / f.name)
            src.rmdir()
        else:
            os.replace(src, dst)
    except OSError as e:
        raise OutputError(f"cannot write {dst}: {e.strerror or e}") from None


def clear_stage(out: Path) -> None:
    """Remove OUT/.hs-invert-partial (what an unfinished face had written; a killed run's leftovers)."""
    shutil.rmtree(out / STAGE, ignore_errors=True)


@dataclass
class InvertReport:
    """What a run did, written as OUT/results.json by `write` (after each batch and at the end)."""

    out: Path
    records: list[dict] = field(default_factory=list)
    interpolations: list[dict] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)
    done: list[str] = field(default_factory=list)
    remaining: list[str] = field(default_factory=list)
    state: str = "running"
    previous_run_removed: int = 0
    resumed: int = 0
    t0: float = field(default_factory=time.perf_counter)

    @property
    def failed(self) -> list[dict]:
        """The records of photos / faces that failed (each has an `error`)."""
        return [r for r in self.records if r["status"] != "ok"]

    @property
    def path(self) -> Path:
        return self.out / "results.json"

    @property
    def files(self) -> list[str]:
        """The manifest: every file written so far, relative to `out` (the finished records' outputs, interpolation
        frames and GIFs), sorted. A face still being worked on has its files under OUT/.hs-invert-partial only."""
        fs = {f for r in self.records for f in r.get("outputs", ())}
        for it in self.interpolations:
            fs.update(it["frames"])
            fs.add(it["gif"])
        return sorted(fs)

    @_out
    def write(self) -> None:
        ok = sum(r["status"] == "ok" for r in self.records)
        write_json_atomic(self.path, {
            "config": self.config, "model": self.model, "state": self.state, "ok": ok,
            "failed": len(self.records) - ok, "seconds": round(time.perf_counter() - self.t0, 3),
            "ignored": self.ignored, "images": self.records, "done": self.done, "remaining": self.remaining,
            "interpolations": self.interpolations, "files": self.files,
            "previous_run_removed": self.previous_run_removed, "resumed": self.resumed})


def previous_manifest(out: Path) -> list[str] | None:
    """The files an earlier run into `out` owns: its results.json's "files" (or, from a results.json written before
    the manifest existed, its records' outputs and interpolation files); None without a readable results.json."""
    try:
        old = json.loads((out / "results.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(old, dict):
        return None
    if isinstance(old.get("files"), list):
        return [f for f in old["files"] if isinstance(f, str)]
    fs = [f for r in old.get("images") or () if isinstance(r, dict) for f in r.get("outputs") or ()]
    for it in old.get("interpolations") or ():
        if isinstance(it, dict):
            fs += [*(it.get("frames") or ()), *([it["gif"]] if it.get("gif") else [])]
    return [f for f in fs if isinstance(f, str)]


def clear_previous(out: Path) -> list[str]:
    """Delete the files of the previous run into `out` (previous_manifest), then the folders inside `out` they
    leave empty; entries that are absolute, climb out of `out` or are not files are skipped. Returns the deleted
    paths (relative)."""
    listed = previous_manifest(out)
    if not listed:
        return []
    root, removed, dirs = out.resolve(), [], set()
    for rel in listed:
        p = (out / rel).resolve()
        if Path(rel).is_absolute() or root not in p.parents or not p.is_file():
            continue
        p.unlink()
        removed.append(rel)
        dirs.update(d for d in p.parents if root in d.parents)
    for d in sorted(dirs, key=lambda d: -len(d.parts)):  # deepest first
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()
    return removed


def resume_from(out: Path, config: dict) -> dict | None:
    """The results.json a --resume run continues (its dict), None when OUT has none (the run starts afresh). HsError
    (one line) when it cannot be read, has no "done" list (written before --resume existed) or was made with other
    options: every key of its "config" (InvertJob.to_dict: model source, alignment, edits, batch, ...) must equal
    this run's, so that the finished folders and the ones still to come are what one run would have written, and
    the results.json's config describes them all."""
    p = out / "results.json"
    if not p.is_file():
        return None
    try:
        old = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise HsError(f"--resume: cannot read {p} ({type(e).__name__}); run without --resume to start over") from None
    if not isinstance(old, dict) or not isinstance(old.get("done"), list) or not isinstance(old.get("images"), list):
        raise HsError(f"--resume: {p} has no list of finished photos (written before --resume existed?); run "
                      "without --resume to start over")
    mine, theirs = json.loads(json.dumps(config, default=str)), old.get("config") or {}
    diff = [k for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k)]
    if diff:
        what = ", ".join(f"{k}: {theirs.get(k)!r} there, {mine.get(k)!r} now" for k in diff[:4])
        raise HsError(f"--resume: {p} was made with other options ({what}); resume with the same options, or run "
                      "without --resume to start over")
    return old


def unique_name(name: str, used: set[str]) -> str:
    """`name` made file-safe and distinct from every name in `used` (suffix _2, _3, ...); added to `used`."""
    base, k = re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "photo", 1
    out = base
    while out in used:
        k += 1
        out = f"{base}_{k}"
    used.add(out)
    return out


@_out
def write_png(arr: np.ndarray, path: Path) -> None:
    """uint8 [H,W,3] -> PNG."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")


@_out
def write_npz(path: Path, **arrays) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())


@_out
def write_safetensors(path: Path, tensors: dict) -> None:
    """{name: tensor} -> safetensors, as contiguous fp32 CPU tensors."""
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().float().contiguous() for k, v in tensors.items()}, str(tmp))


def _tile(arr: np.ndarray, caption: str, quad: np.ndarray | None = None):
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
    """Tiles (image uint8 [H,W,3], caption, alignment quad or None) side by side -> [TILE+20, n*TILE, 3] uint8."""
    from PIL import Image

    ims = [_tile(a, c, q) for a, c, q in tiles]
    out = Image.new("RGB", (TILE * len(ims), TILE + 20), (255, 255, 255))
    for k, t in enumerate(ims):
        out.paste(t, (k * TILE, 0))
    return np.asarray(out)


def fmt_strength(v: float) -> str:
    """Edit strength in file names and captions: sign always shown (+2, -1.5)."""
    return f"{v:+g}"
