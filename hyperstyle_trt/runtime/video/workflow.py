"""hs-invert on videos: a clip (or a directory of frames) in; aligned, inverted, edited and pasted-back videos out.

    wf = VideoWorkflow(job)         # job: runtime.invert.InvertJob with video inputs; probes them: HsError first
    wf.load()                       # aligner, Inverter (Inverter.from_source), edit directions (InvertWorkflow.load)
    report = wf.run(events=None)    # every video, streamed; OUT/results.json (runtime.invert.outputs.InvertReport)

Per video, streamed frame by frame (only O(temporal window + batch) frames in memory at any time):
decode (video.io.read_frames) -> track the face (video.track.FaceTracker: landmarks every frame, the detector
re-run when the tracked face is lost) -> smooth the FFHQ quads over time (video.smooth.QuadSmoother, holding back
window // 2 frames; --no-smoothing: off) -> warp the aligned crops (runtime.align.warp_ffhq) -> invert them in
batches of job.batch (one Inverter.invert call per batch) -> optional causal mean of the W+ codes and Δ over the
last --latent-window frames (re-rendered through runtime.edit.render) -> edits (Inverter.edit) -> paste back
(runtime.paste.paste_back, the face mask from the crop's landmarks) -> encoders (video.io.VideoWriter).

Files under OUT/<video stem>/ (all .mp4, H.264, whatever the input container; the input's frame count, frame rate
and size, an odd width / height padded by one pixel: video.io): aligned.mp4 (the crops, align_size), inversion.mp4
(the generator's output), pasted.mp4 (the inversion pasted into each frame), pasted_<edit>_<strength>.mp4 per edit
strength, preview.gif (input | pasted side by side, the first <= 3 s, <= 36 frames). --align-only writes
aligned.mp4 only; --no-paste-back (paste-back is on by default for videos) writes edit_<edit>_<strength>.mp4 (the
edited crops) instead of the pasted videos. A frame where no face is found is passed through unchanged into the
pasted videos (a grey frame in aligned.mp4 / inversion.mp4 / edit_*.mp4) and listed in its record's
`no_face_frames`; the video still completes.

The video's record in results.json (`images`): input, status, name, outputs, video (frames, fps, width, height,
codec), frames_written, no_face_frames, tracking (detections, lost), smoothing, latent_window, metrics (jitter_px
of the aligned crops, flicker of pasted.mp4 inside the face mask: video.metrics), throughput ({stage: seconds,
frames_per_s} for decode, align (track + smooth + warp), invert, edit, paste, encode, metrics, and total).
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.runtime.invert.events import RunEvents
from hyperstyle_trt.runtime.invert.job import InvertJob
from hyperstyle_trt.runtime.invert.outputs import InvertReport, clear_previous, fmt_strength, unique_name
from hyperstyle_trt.runtime.video.io import VideoInfo, VideoWriter, is_video_file, probe, read_frames

STAGES = ("decode", "align", "invert", "edit", "paste", "encode", "metrics")
PREVIEW_SECONDS, PREVIEW_FRAMES, PREVIEW_HEIGHT = 3.0, 36, 160  # preview.gif: the first 3 s, <= 36 frames, 160 px
GREY = 128  # aligned.mp4 / inversion.mp4 frame where no face was found
_PHOTO_ONLY = (("all_faces", "--all-faces"), ("interpolate", "--interpolate"), ("save_codes", "--save-codes"),
               ("save_weights", "--save-weights"), ("target_generator", "--target-generator"),
               ("refine_steps", "--refine-steps"), ("resume", "--resume"))


class VideoEvents(RunEvents):
    """RunEvents plus what a video run reports: video_start (a clip begins: its VideoInfo), frames_done (n more
    frames written to every output, `seconds` since the clip began)."""

    def video_start(self, path: Path, info: VideoInfo) -> None:
        pass

    def frames_done(self, n: int, seconds: float) -> None:
        pass


@dataclass
class _Frame:
    """One frame on its way through: idx, the decoded frame [H,W,3] uint8, and for a face: the aligned crop [A,A,3],
    the paste transform (runtime.paste.CropTransform) and the crop's face mask [A,A] float32."""

    idx: int
    frame: np.ndarray
    crop: np.ndarray | None = None
    transform: object = None
    mask: np.ndarray | None = None


@dataclass
class _Clip:
    """The state of the clip being processed: its writers, timers, meters and the preview's frames."""

    name: str
    info: VideoInfo
    record: dict
    writers: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    no_face: list = field(default_factory=list)
    preview: list = field(default_factory=list)
    written: int = 0
    t0: float = field(default_factory=time.perf_counter)


def video_inputs(job: InvertJob) -> list[Path]:
    """The job's video inputs: its video files, then --frames-dir. A photo or photo directory mixed in is refused
    (photos and videos write different outputs, batch differently and default paste-back differently: one kind per
    run, one line before any work)."""
    photos = [p for p in job.photos if not is_video_file(p)]
    if photos:
        raise HsError(f"give photos and videos in separate hs-invert runs (videos: "
                      f"{', '.join(p for p in job.photos if is_video_file(p)) or job.frames_dir}; photos: "
                      f"{', '.join(photos[:3])}{' ...' if len(photos) > 3 else ''})")
    return [Path(p) for p in job.photos] + ([Path(job.frames_dir)] if job.frames_dir else [])


class VideoWorkflow:
    """One InvertJob over videos: `load()` builds the aligner, Inverter and edits; `run()` processes every clip and
    returns the InvertReport (OUT/results.json). `frame_hook(output_name, idx, frame)`, when set, sees every frame
    just before it is encoded (tests compare raw frames with it)."""

    frame_hook: Callable[[str, int, np.ndarray], None] | None = None

    def __init__(self, job: InvertJob):
        from hyperstyle_trt.runtime.invert.workflow import InvertWorkflow

        self.job = job
        self.paths = video_inputs(job)
        if not job.align:
            raise HsError("--no-align: a video is aligned frame by frame (drop --no-align)")
        for k, flag in _PHOTO_ONLY:
            if getattr(job, k):
                raise HsError(f"{flag} is for photos, not videos")
        self.infos = [probe(p, job.fps) for p in self.paths]  # an unreadable clip: one line, before any work
        # the photo workflow's set-up (aligner, Inverter.from_source, edit directions, report.model) at job.batch
        self.base = InvertWorkflow(dataclasses.replace(job, photos=tuple(map(str, self.paths)), frames_dir=None))
        self.base.batch = job.batch
        self.report: InvertReport = self.base.report
        self.report.ignored = []
        self.used: set[str] = set()
        self.events = VideoEvents()

    def load(self) -> None:
        """Landmark model, Inverter, edit directions (idempotent; InvertWorkflow.load)."""
        self.base.load()

    @property
    def total_frames(self) -> int:
        return sum(i.frames for i in self.infos)

    def run(self, events: RunEvents | None = None) -> InvertReport:
        """Every clip in turn; results.json after each and at the end (also when interrupted)."""
        self.load()
        self.events = ev = events or VideoEvents()
        report = self.report
        removed = clear_previous(report.out)
        if removed:
            report.previous_run_removed = len(removed)
            ev.notice(f"removed {len(removed)} file(s) of the previous run into {report.out} (listed in its "
                      "results.json) before writing this run's")
        try:
            for path, info in zip(self.paths, self.infos):
                rec = self.clip(path, info)
                report.records.append(rec)
                if rec["status"] != "ok":
                    ev.failed(rec)
                report.write()
        finally:
            report.write()
        return report

    # ---- one clip -------------------------------------------------------------------------------------------------
    def clip(self, path: Path, info: VideoInfo) -> dict:
        """Process one clip, streamed; returns its record (status failed with the error on a decode / write error,
        nothing half-written left: the writers are atomic)."""
        from hyperstyle_trt.runtime.video.smooth import QuadSmoother
        from hyperstyle_trt.runtime.video.track import FaceTracker

        job = self.job
        name = unique_name(path.stem if path.is_file() else path.name, self.used)
        rec = {"input": str(path), "status": "ok", "name": name, "video": info.to_dict(), "outputs": []}
        c = _Clip(name, info, rec)
        self.events.video_start(path, info)
        tracker = FaceTracker(self.base.aligner)
        smoother = QuadSmoother(job.temporal_window, enabled=job.smoothing)
        self._codes: deque = deque(maxlen=job.latent_window)  # the last frames' (codes [L,D], raw Δ) for the mean
        self._last_idx = -2  # frame index of the last row pushed into _codes
        held: deque = deque()  # frames waiting for their smoothed quad: (idx, frame, face)
        pending: list[_Frame] = []  # aligned frames waiting for their inversion batch
        from hyperstyle_trt.runtime.video.metrics import FlickerMeter, JitterMeter

        self._jit, self._flick = JitterMeter(), FlickerMeter()
        try:
            frames = read_frames(path)
            idx = 0
            while True:
                t = time.perf_counter()
                frame = next(frames, None)
                c.seconds["decode"] += time.perf_counter() - t
                if frame is None:
                    break
                if frame.shape[:2] != (info.height, info.width):
                    raise HsError(f"frame {idx} is {frame.shape[1]}x{frame.shape[0]}, the clip "
                                  f"{info.width}x{info.height}")
                t = time.perf_counter()
                face = tracker.update(frame)
                held.append((idx, frame, face))
                quads = smoother.push(None if face is None else self._quad(face))
                c.seconds["align"] += time.perf_counter() - t
                for q in quads:
                    self._aligned(c, pending, held.popleft(), q)
                idx += 1
            t = time.perf_counter()
            quads = smoother.flush()
            c.seconds["align"] += time.perf_counter() - t
            for q in quads:
                self._aligned(c, pending, held.popleft(), q)
            self._flush(c, pending)
            rec["frames_written"] = c.written
            rec["no_face_frames"] = c.no_face
            rec["tracking"] = {"detections": int(tracker.detections), "lost": int(tracker.lost)}
            rec["smoothing"] = {"enabled": job.smoothing, "window": job.temporal_window, "delay": smoother.delay}
            rec["latent_window"] = job.latent_window
            self._close(c)
        except HsError as e:
            for w in c.writers.values():
                w.abort()
            rec.update(status="failed", error=str(e), outputs=[])
            return rec
        except BaseException:
            for w in c.writers.values():
                w.abort()
            raise
        if c.no_face:
            self.events.notice(f"{name}: no face in {len(c.no_face)} of {c.written} frame(s), passed through "
                               "unchanged (results.json: no_face_frames)")
        return rec

    @staticmethod
    def _quad(face) -> np.ndarray:
        from hyperstyle_trt.runtime.align import ffhq_quad

        return ffhq_quad(face.landmarks)[0]

    def _aligned(self, c: _Clip, pending: list[_Frame], held, quad) -> None:
        """A frame whose smoothed quad is final: warp its crop, build its paste transform and mask; queue it; run a
        batch when job.batch faces wait (or 2 x batch frames, so a long faceless stretch does not pile up)."""
        idx, frame, face = held
        it = _Frame(idx, frame)
        if quad is not None:
            from hyperstyle_trt.runtime.align import Alignment, source_to_aligned, warp_ffhq
            from hyperstyle_trt.runtime.paste import CropTransform, face_mask

            t = time.perf_counter()
            a = self.base.aligner
            qsize = float(np.hypot(*(quad[3] - quad[0])))
            crop, padded = warp_ffhq(frame, quad, qsize, a.output_size, a.transform_size, a.enable_padding)
            al = Alignment(crop, quad, qsize, padded, face)
            it.crop, it.transform = crop, CropTransform.from_alignment(al, frame.shape[:2])
            it.mask = face_mask(source_to_aligned(face.landmarks, quad, a.output_size), a.output_size)
            c.seconds["align"] += time.perf_counter() - t
        pending.append(it)
        n_faces = sum(p.crop is not None for p in pending)
        if n_faces >= self.job.batch or len(pending) >= 2 * self.job.batch or (n_faces == 0 and pending):
            self._flush(c, pending)

    def _flush(self, c: _Clip, pending: list[_Frame]) -> None:
        """Invert the queued faces as one batch, edit, paste, encode every queued frame in order; empties `pending`."""
        if not pending:
            return
        job, inv = self.job, self.base.inv
        faces = [p for p in pending if p.crop is not None]
        inv_u8, edits = {}, []
        if faces and inv is not None:
            names = [f"{c.name}#{p.idx}" for p in faces]
            self.events.batch_start(names)
            t = t0 = time.perf_counter()
            res = inv.invert(np.stack([p.crop for p in faces]), n_iters=job.iters, copy=True)
            if job.latent_window > 1:
                res = self._latent_mean(res, [p.idx for p in faces])
            u8 = res.to_uint8()
            c.seconds["invert"] += time.perf_counter() - t
            t = time.perf_counter()
            from hyperstyle_trt.runtime.invert.workflow import _u8

            for e, direction in zip(job.edits, self.base.directions):
                imgs = inv.edit(res, direction, list(e.strengths))  # [K,B,3,S,S]
                arr = _u8(imgs.flatten(0, 1)).reshape(len(e.strengths), len(faces), *u8.shape[1:])
                edits += [(f"pasted_{e.label}_{fmt_strength(s)}", {p.idx: arr[k, i] for i, p in enumerate(faces)})
                          for k, s in enumerate(e.strengths)]
            c.seconds["edit"] += time.perf_counter() - t
            inv_u8 = {p.idx: u8[i] for i, p in enumerate(faces)}
            self.events.batch_done(names, time.perf_counter() - t0)
        for p in pending:
            self._write(c, p, inv_u8.get(p.idx), [(n, d.get(p.idx)) for n, d in edits])
        pending.clear()

    def _latent_mean(self, res, idxs: list[int] | None = None):
        """Replace each row's codes and Δ by their mean over this frame and the previous latent_window - 1 frames
        with a face (causal: no extra delay), and re-render the images; an InverterResult edits work on. `idxs`:
        the rows' frame indices; the window restarts after a gap (a frame without a face)."""
        import torch

        from hyperstyle_trt.runtime.edit import render
        from hyperstyle_trt.runtime.result import InverterResult

        codes, raw = [], {k: [] for k in res.raw_deltas}
        for i in range(len(res)):
            if idxs is not None:
                if idxs[i] != self._last_idx + 1:
                    self._codes.clear()
                self._last_idx = idxs[i]
            self._codes.append((res.codes[i], {k: v[i] for k, v in res.raw_deltas.items()}))
            codes.append(torch.stack([cd for cd, _ in self._codes]).mean(0))
            for k in raw:
                raw[k].append(torch.stack([d[k] for _, d in self._codes]).mean(0))
        codes = torch.stack(codes)
        raw = {k: torch.stack(v) for k, v in raw.items()}
        images = render(self.base.inv, codes, raw)
        return InverterResult(images, res.images_pooled, codes, {}, raw, res.n_iters, True)

    def _write(self, c: _Clip, p: _Frame, inv: np.ndarray | None, edits: list) -> None:
        """Paste and encode one frame into every output (the input frame unchanged where no face / no inversion)."""
        from PIL import Image

        a = self.base.aligner.output_size
        out = {}
        t = time.perf_counter()
        if p.crop is None:
            c.no_face.append(p.idx)
            out["aligned"] = np.full((a, a, 3), GREY, np.uint8)
        else:
            out["aligned"] = p.crop
        if self.base.inv is not None:
            from hyperstyle_trt.runtime.paste import paste_back

            s = self.base.inv.size
            grey = np.full((s, s, 3), GREY, np.uint8)
            out["inversion"] = inv if inv is not None else grey
            if self.job.paste_back is False:  # --no-paste-back: the edited crops, edit_<label>_<strength>.mp4
                out.update((n.replace("pasted_", "edit_", 1), grey if img is None else img) for n, img in edits)
            else:
                out["pasted"] = p.frame if inv is None else paste_back(p.frame, inv, p.transform, p.mask)
                for n, img in edits:
                    out[n] = p.frame if img is None else paste_back(p.frame, img, p.transform, p.mask)
        c.seconds["paste"] += time.perf_counter() - t
        t = time.perf_counter()
        self._jit.add(p.crop)
        if "pasted" in out:
            fm = None
            if p.crop is not None:  # the face mask in frame pixels, as paste_back warps it
                from hyperstyle_trt.runtime.paste import photo_box, warp_to_photo

                fm = np.zeros(p.frame.shape[:2], np.float32)
                box = photo_box(p.transform, p.mask)
                if box is not None:
                    fm[box[1]:box[3], box[0]:box[2]] = warp_to_photo(p.mask, p.transform, box)
            self._flick.add(p.frame, out["pasted"], fm)
        if len(c.preview) < PREVIEW_FRAMES and p.idx < PREVIEW_SECONDS * float(c.info.fps):
            step = max(1, int(np.ceil(PREVIEW_SECONDS * float(c.info.fps) / PREVIEW_FRAMES)))
            if p.idx % step == 0:
                right = out.get("pasted", out["aligned"])
                h = PREVIEW_HEIGHT
                tiles = [Image.fromarray(f).resize((max(1, round(f.shape[1] * h / f.shape[0])), h),
                                                   Image.Resampling.LANCZOS) for f in (p.frame, right)]
                c.preview.append(np.concatenate([np.asarray(x) for x in tiles], axis=1))
        c.seconds["metrics"] += time.perf_counter() - t
        t = time.perf_counter()
        for n, img in out.items():
            if self.frame_hook is not None:
                self.frame_hook(f"{n}.mp4", p.idx, img)
            if n not in c.writers:
                c.writers[n] = VideoWriter(self.report.out / c.name / f"{n}.mp4", c.info.fps,
                                           (img.shape[1], img.shape[0]))
            c.writers[n].write(img)
        c.written += 1
        c.seconds["encode"] += time.perf_counter() - t
        self.events.frames_done(1, time.perf_counter() - c.t0)

    def _close(self, c: _Clip) -> None:
        """Finish every writer (renamed into place), the preview GIF, and the record's metrics and throughput."""
        from hyperstyle_trt.runtime.interpolate import write_gif

        t = time.perf_counter()
        for n, w in c.writers.items():
            w.close()
            c.record["outputs"].append(f"{c.name}/{n}.mp4")
        if c.preview:
            step = max(1, int(np.ceil(PREVIEW_SECONDS * float(c.info.fps) / PREVIEW_FRAMES)))
            write_gif(np.stack(c.preview), self.report.out / c.name / "preview.gif",
                      fps=float(c.info.fps) / step, bounce=False)
            c.record["outputs"].append(f"{c.name}/preview.gif")
        c.seconds["encode"] += time.perf_counter() - t
        total = time.perf_counter() - c.t0
        n = c.written
        c.record["metrics"] = {"jitter_px": _num(self._jit.value), "jitter_pairs": self._jit.count,
                               "flicker": _num(self._flick.value), "flicker_pairs": self._flick.count}
        ran = {k for k, v in c.seconds.items() if v > 0} - ({"edit"} if not self.job.edits else set())
        c.record["throughput"] = {k: {"seconds": round(v, 4), "frames_per_s": round(n / v, 3) if k in ran else None}
                                  for k, v in c.seconds.items()}  # None: the stage did not run (no edits, ...)
        c.record["throughput"]["total"] = {"seconds": round(total, 4), "frames_per_s": round(n / total, 3)}


def _num(v: float) -> float | None:
    return None if not np.isfinite(v) else round(float(v), 5)
