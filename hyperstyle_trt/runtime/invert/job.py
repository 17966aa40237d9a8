"""What one hs-invert run does, as a frozen config validated once: `InvertJob`, its `EditSpec`s and the photo list.

    job = InvertJob(photos=("photos/",), out="out", source=ModelSource(config="tiny", device="cpu"),
                    edits=("seed:0:-3,3",), save_codes=True)
    report = InvertWorkflow(job).run()          # runtime.invert.workflow

Every check that needs no model runs in `InvertJob.__post_init__` (one-line HsError naming the flag and what it
expects); the model-source fields are a core.source.ModelSource, validated on its own construction.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.core.source import ModelSource

MIN_ALIGN_SIZE = 64  # --align-size floor: the smallest model input (the tiny preset's); a smaller crop holds no face
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm"}


@dataclass(frozen=True)
class EditSpec:
    """--edit FILE:STRENGTHS. source: a .npy/.pt path, or 'seed:N' (a unit-norm Gaussian direction in W from seed N,
    for demos and tests); strengths: the multiples of the direction added to the codes; label: the file stem /
    'seedN' (output names)."""

    source: str
    strengths: tuple[float, ...]
    label: str

    def __str__(self) -> str:
        """The FILE:STRENGTHS form results.json records."""
        return f"{self.source}:{','.join(map(str, self.strengths))}"

    def direction(self, n_latent: int, style_dim: int):
        """The direction as a tensor [n_latent, style_dim] (runtime.edit.load_direction)."""
        from hyperstyle_trt.runtime.edit import load_direction

        src = seed_direction(int(self.source[5:]), style_dim) if self.source.startswith("seed:") else self.source
        return load_direction(src, n_latent, style_dim)


def parse_edit(spec: str) -> EditSpec:
    """'FILE:S1,S2,...' (split at the last ':'); FILE may be 'seed:N'. A FILE is read here (runtime.edit.
    read_direction_file: needs no model), so a Git LFS pointer, a text file or a damaged file is one HsError line
    before any model loads; its shape is checked against the model later."""
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
    from hyperstyle_trt.runtime.edit import read_direction_file  # torch: not imported for --help

    try:
        read_direction_file(p)
    except HsError as e:
        raise HsError(f"--edit {spec!r}: {e}") from None
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
                if f.suffix.lower() in IMAGE_EXTS:
                    files.append(f)
                else:
                    ignored.append(str(f))
        elif p.exists():
            files.append(p)
        else:
            raise HsError(f"no such photo or directory: {p}")
    if not files:
        raise HsError(f"no photos found in {', '.join(paths)} (looked for {', '.join(sorted(IMAGE_EXTS))})")
    return files, ignored


@dataclass(frozen=True)
class InvertJob:
    """One hs-invert run. photos: files and directories; out: the output directory; source: where the model comes
    from and how it runs (ignored with align_only); align: FFHQ-align each photo (False: resize only);
    align_only: write the aligned crops and stop; align_size: side of aligned.png (>= MIN_ALIGN_SIZE); all_faces:
    every detected face, not only the best; paste_back: warp the inversion and each edit back into the photo
    (runtime.paste; None: the input kind's default, see `pastes`); batch: photos per inversion batch; iters:
    HyperStyle iterations T;
    edits: EditSpecs (or their FILE:STRENGTHS strings, parsed here); save_codes / save_weights: latents / generator
    safetensors;
    target_generator: a rosinality g_ema file rendered with the predicted Δ; refine_steps / refine_lr: PTI after
    HyperStyle; interpolate / frames: frames + GIF between consecutive photos (at least two photos, or
    all_faces: InvertWorkflow checks once it has listed them); resume: continue the run whose results.json is in
    `out` (skip the photos it finished; its options must equal these: outputs.resume_from)."""

    photos: tuple[str, ...]
    out: str
    source: ModelSource = dataclasses.field(default_factory=ModelSource)
    align: bool = True
    align_only: bool = False
    align_size: int = 1024
    all_faces: bool = False
    paste_back: bool | None = None
    batch: int = 8
    iters: int = 5
    edits: tuple[EditSpec, ...] = ()
    save_codes: bool = False
    save_weights: bool = False
    target_generator: str | None = None
    refine_steps: int = 0
    refine_lr: float = 3e-4
    interpolate: bool = False
    frames: int = 8
    resume: bool = False
    # videos (runtime.video.workflow): a frames directory (+ its rate), --temporal-window / --no-smoothing of the
    # alignment, --latent-window (causal mean of codes and Δ over N frames; 1 = off)
    frames_dir: str | None = None
    fps: float | None = None
    temporal_window: int = 9
    smoothing: bool = True
    latent_window: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.photos, (str, Path)):
            object.__setattr__(self, "photos", (str(self.photos),))
        object.__setattr__(self, "photos", tuple(str(p) for p in self.photos))
        object.__setattr__(self, "out", str(self.out))
        if not isinstance(self.source, ModelSource):
            raise HsError(f"InvertJob.source must be a core.source.ModelSource, got {type(self.source).__name__}")
        object.__setattr__(self, "edits", tuple(e if isinstance(e, EditSpec) else parse_edit(e) for e in self.edits))
        for k, lo in (("batch", 1), ("iters", 1), ("frames", 2)):
            if getattr(self, k) < lo:
                raise HsError(f"--{k.replace('_', '-')} must be >= {lo}, got {getattr(self, k)}")
        if self.temporal_window < 1 or self.temporal_window % 2 == 0 or self.latent_window < 1:
            raise HsError(f"--temporal-window must be an odd number of frames >= 1 and --latent-window >= 1, got "
                          f"{self.temporal_window}, {self.latent_window}")
        if self.fps is not None and not (0 < self.fps <= 1000):
            raise HsError(f"--fps must be in (0, 1000] frames per second, got {self.fps}")
        if self.align_size < MIN_ALIGN_SIZE:
            raise HsError(f"--align-size must be >= {MIN_ALIGN_SIZE} (the smallest model input; FFHQ crops are "
                          f"1024), got {self.align_size}")
        if self.refine_steps < 0 or not self.refine_lr > 0:
            raise HsError(f"--refine-steps must be >= 0 and --refine-lr > 0, got {self.refine_steps}, "
                          f"{self.refine_lr}")
        if self.align_only and not self.align:
            raise HsError("--align-only and --no-align contradict each other")
        if self.all_faces and not self.align:
            raise HsError("--all-faces needs the alignment (drop --no-align)")
        if self.resume and self.interpolate:
            raise HsError("--resume cannot continue --interpolate (the frames blend consecutive photos' codes and Δ, "
                          "which a finished photo does not keep); run without --resume")
        if self.paste_back and (self.align_only or not self.align):
            raise HsError("--paste-back needs the alignment and an inversion (drop --no-align / --align-only)")
        if self.target_generator is not None and not Path(self.target_generator).is_file():
            raise HsError(f"target generator not found: {self.target_generator}")
        if not self.align_only:  # a wrong checkpoint file is one line now, not after the aligner has loaded
            from hyperstyle_trt.models.checkpoint import check_torch_file  # torch: not imported for --help

            for what, p in (("HyperStyle checkpoint", self.source.checkpoint),
                            ("W-encoder checkpoint", self.source.w_encoder),
                            ("target generator", self.target_generator)):
                if p is not None:
                    check_torch_file(p, what)

    @property
    def pastes(self) -> bool:
        """Whether photos are pasted back: only when asked (paste_back True). Off by default for photos because a
        pasted PNG is written at the photo's own resolution for the inversion and for every edit strength (a 12 MP
        camera photo: ~20 MB and ~1 s to encode each), while the crops are what the model made; a video's output
        is its frames, so videos paste by default."""
        return bool(self.paste_back) and self.align and not self.align_only

    def to_dict(self) -> dict:
        """The `config` entry of results.json (the flags' names, the model-source fields flattened; not `resume`, so
        a resumed run's config equals the run it continues)."""
        s = self.source
        return {"align": self.align, "align_only": self.align_only, "align_size": self.align_size,
                "all_faces": self.all_faces, "paste_back": self.paste_back, "checkpoint": s.checkpoint,
                "w_encoder": s.w_encoder,
                "config": s.config, "export_dir": s.export_dir, "executor": s.executor, "device": s.device,
                "precision": s.precision if s.export_dir else s.precision or "fp32", "batch": self.batch,
                "iters": self.iters, "edits": [str(e) for e in self.edits], "save_codes": self.save_codes,
                "save_weights": self.save_weights, "target_generator": self.target_generator,
                "refine_steps": self.refine_steps, "refine_lr": self.refine_lr, "interpolate": self.interpolate,
                "frames": self.frames} | ({"frames_dir": self.frames_dir, "fps": self.fps,
                                           "temporal_window": self.temporal_window, "smoothing": self.smoothing,
                                           "latent_window": self.latent_window} if self.is_video else {})

    @property
    def is_video(self) -> bool:
        """A video run (runtime.video.workflow): --frames-dir, or a file argument with a video suffix."""
        from hyperstyle_trt.runtime.video.io import is_video_file

        return self.frames_dir is not None or any(is_video_file(p) for p in self.photos)
