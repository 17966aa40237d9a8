"""`hs-invert`: photos in; FFHQ-aligned, inverted, edited (and optionally PTI-refined, domain-adapted, interpolated).

    hs-invert photo.jpg photos/ --out out/                     # embedded default weights (untrained: timing only)
    hs-invert photos/ --out out/ --checkpoint hyperstyle_ffhq.pt --w-encoder faces_w_encoder.pt \\
        --edit age.pt:-3,3 --save-weights
    hs-invert photos/ --out out/ --export-dir hs_export --executor tensorrt --batch 8
    hs-invert photos/ --out crops/ --align-only                # FFHQ crops only
    hs-invert clip.mp4 --out out/ --edit seed:0:-10,10         # a video (.mp4/.mov/.webm/.gif/...): OUT/clip/*.mp4
    hs-invert --frames-dir frames/ --fps 30 --out out/         # a directory of frames as a video

A shell over the library: flags -> core.source.ModelSource + runtime.invert.InvertJob (frozen, validated once) ->
runtime.invert.InvertWorkflow -> progress on stderr (photos aligned, faces inverted with images/s, one line per
inversion batch, a failed photo when it fails, notices) and a summary. The workflow module's docstring lists the
files written under OUT/<photo stem>/ and OUT/results.json. Video files (by suffix: runtime.video.io.VIDEO_EXTS) or
--frames-dir run runtime.video.workflow.VideoWorkflow instead (its docstring lists the videos written; paste-back is
always on for videos); photos and videos in one call are refused (one line). A bad photo (unreadable, no face) is
reported and skipped; exit 1 when any failed, 2 on a user error before any work (one line on stderr), 0 otherwise.
Every file is written atomically (core.atomic).

Interrupted (Ctrl-C, SIGTERM) or stopped by an unwritable --out, a run leaves only finished photo folders and a
results.json saying which photos are done and which remain; `--resume` with the same options does the rest (the
options must match so that OUT holds what one run would have written; a mismatch is one error line).

--paste-back writes OUT/<stem>/pasted.png and pasted_<edit>_<strength>.png at the photo's own resolution (every
face of the photo in one image with --all-faces; runtime.paste). Off by default for photos: each is a full-resolution
PNG per edit strength (tens of MB and ~1 s apiece on camera photos) and the crops are the model's output; on by
default for videos, whose output is the frames. The photo -> crop transform of each face is in results.json anyway.

Executor when --executor is not given (core.source.ModelSource.default_executor): tensorrt with --export-dir; on a CPU
onnxruntime when it is installed (its plain graphs are exported once into the per-user graph cache, no --export-dir
needed: export.graph_cache); torch otherwise.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hyperstyle_trt.core.entry import interruptible, run
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.core.source import ModelSource, model_source_options
from hyperstyle_trt.runtime.invert.events import RunEvents
from hyperstyle_trt.runtime.invert.job import InvertJob
from hyperstyle_trt.runtime.invert.workflow import InvertWorkflow


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("photos", nargs=-1, required=False)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option("--no-align", "no_align", is_flag=True, help="Inputs are FFHQ-aligned crops already (resized only).")
@click.option("--align-only", is_flag=True, help="Write the aligned crops and stop.")
@click.option("--align-size", type=int, default=1024, show_default=True, help="Side of aligned.png (FFHQ: 1024).")
@click.option("--all-faces", is_flag=True, help="Every detected face (best first), not only the best one.")
@click.option("--paste-back/--no-paste-back", default=None,
              help="Warp the inversion and edits back into the photo: pasted*.png at its own size [photos: off].")
@model_source_options(export_dir=True, executor=True, device="auto", precision=None)
@click.option("--batch", type=int, default=8, show_default=True, help="Photos (videos: frames) per inversion batch.")
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
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run into --out: keep and skip the photos its results.json lists as done "
                   "(same options required).")
@click.option("--frames-dir", "frames_dir", default=None, type=click.Path(file_okay=False),
              help="Video: a directory of frames (image files, sorted by name).")
@click.option("--fps", type=float, default=None, help="Video: the --frames-dir frame rate [default: 25].")
@click.option("--temporal-window", "temporal_window", type=int, default=9, show_default=True,
              help="Video: frames (odd) the alignment is smoothed over.")
@click.option("--no-smoothing", "no_smoothing", is_flag=True, help="Video: no temporal smoothing of the alignment.")
@click.option("--latent-window", "latent_window", type=int, default=1, show_default=True,
              help="Video: mean of codes and Δ over this frame and the N-1 before it (1: off).")
@interruptible
def cli(photos, out, no_align, no_smoothing, **kw):
    """Align, invert and edit face photos (files or directories) or videos with HyperStyle."""
    if not photos and not kw["frames_dir"]:
        raise HsError("give photos, photo directories or videos (or --frames-dir DIR)")
    source = ModelSource.from_options(kw)
    job = InvertJob(photos=photos, out=out, source=source, align=not no_align, smoothing=not no_smoothing, **kw)
    if job.is_video:
        return _video(job, source)
    wf = InvertWorkflow(job)  # collects the photos: HsError before any work
    console = _load(wf, job, source)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[rate]}"), console=console, transient=False) as prog:
        report = wf.run(events=ConsoleEvents(prog, len(wf.todo), job.align_only))
    bad = report.failed
    if job.interpolate and not report.interpolations and len(report.records) - len(bad) < 2:
        console.print("no interpolation: fewer than two faces were inverted")
    names = ", ".join(Path(r["input"]).name for r in bad[:5]) + (" ..." if len(bad) > 5 else "")
    kept = f" ({report.resumed} photo(s) from the run resumed)" if report.resumed else ""
    console.print(f"{len(report.records) - len(bad)} ok, {len(bad)} failed{f' ({names})' if bad else ''}{kept}; "
                  f"results in {report.path}", highlight=False)
    return 1 if bad else 0


def _load(wf, job: InvertJob, source: ModelSource) -> Console:
    """wf.load() (aligner, Inverter, edits) under a status line, then "ready in ..." and, on the embedded default
    weights, the notice that they are untrained. Returns the stderr console (logs: no 80-column wrapping)."""
    console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
    t = time.perf_counter()
    with console.status("loading the landmark model and the inverter ..."):
        wf.load()
    console.print(f"ready in {time.perf_counter() - t:.1f} s ({wf.report.model.get('weights', 'alignment only')})")
    if source.embedded and not job.align_only:
        from hyperstyle_trt.models.checkpoint import DEFAULT_NOTICE

        console.print(DEFAULT_NOTICE, highlight=False)
    return console


def _video(job: InvertJob, source: ModelSource) -> int:
    """hs-invert on videos: runtime.video.workflow.VideoWorkflow with a bar over frames (frames/s)."""
    from hyperstyle_trt.runtime.video.workflow import VideoEvents, VideoWorkflow

    wf = VideoWorkflow(job)  # probes every clip: HsError before any work
    console = _load(wf, job, source)

    class Bar(VideoEvents):
        def video_start(self, path, info):
            self.task = prog.add_task(f"{Path(path).name}: frames", total=info.frames, rate="")

        def frames_done(self, n, seconds):
            done = prog.tasks[self.task].completed + n
            prog.update(self.task, advance=n, rate=f"{done / max(seconds, 1e-9):.2f} frames/s")

        def failed(self, record):
            console.print(f"[red]failed[/] {escape(record['input'])}: {escape(record['error'])}", highlight=False)

        def notice(self, text):
            console.print(f"notice: {escape(text)}", highlight=False)

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[rate]}"), console=console, transient=False) as prog:
        report = wf.run(events=Bar())
    for r in report.records:
        if r["status"] == "ok":
            tp = ", ".join(f"{k} {v['frames_per_s']}" for k, v in r.get("throughput", {}).items()
                           if v["frames_per_s"] is not None)
            console.print(f"{r['name']}: {r['frames_written']} frames, {len(r['no_face_frames'])} without a face; "
                          f"frames/s: {tp}", highlight=False)
            if f"{r['name']}/pasted.mp4" in r["outputs"]:
                console.print(f"pasted video: {report.out / r['name'] / 'pasted.mp4'}", highlight=False)
    bad = report.failed
    console.print(f"{len(report.records) - len(bad)} video(s) ok, {len(bad)} failed; results in {report.path}",
                  highlight=False)
    return 1 if bad else 0


class ConsoleEvents(RunEvents):
    """hs-invert's progress: a bar of photos aligned, a bar of faces inverted (images/s over the inversion
    batches), one line per batch, a failed photo's line when it fails, notices as they come."""

    def __init__(self, prog, n_photos: int, align_only: bool):
        self.prog, self.n_photos, self.photos, self.faces = prog, n_photos, 0, 0
        self.done, self.seconds, self.batches = 0, 0.0, 0
        self.aligned = prog.add_task("photos aligned", total=n_photos, rate="")
        self.inverted = None if align_only else prog.add_task("faces inverted", total=n_photos, rate="")

    def photo_done(self, path, n_faces):
        self.photos += 1
        self.faces += n_faces
        self.prog.advance(self.aligned)
        if self.inverted is not None:  # faces so far + one per photo still to align
            self.prog.update(self.inverted, total=self.faces + self.n_photos - self.photos)

    def batch_start(self, names):
        self.batches += 1
        if self.inverted is not None:
            self.prog.update(self.inverted, description=f"inverting batch {self.batches} ({len(names)} faces)")

    def batch_done(self, names, seconds):
        self.done += len(names)
        self.seconds += seconds
        rate = f"{self.done / self.seconds:.2f} images/s" if self.seconds > 0 else ""
        self.prog.update(self.inverted, advance=len(names), description="faces inverted", rate=rate)
        self.prog.console.print(f"batch {self.batches}: {len(names)} face(s) ({', '.join(names)}) in {seconds:.1f} s, "
                                f"{len(names) / max(seconds, 1e-9):.2f} images/s", highlight=False)

    def failed(self, record):
        self.prog.console.print(f"[red]failed[/] {escape(record['input'])}: {escape(record['error'])}",
                                highlight=False)

    def notice(self, text):
        self.prog.console.print(f"notice: {escape(text)}", highlight=False)


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 all photos ok, 1 some failed, 2 user error (one line on stderr, before any work)."""
    return run(cli, argv)


if __name__ == "__main__":
    main()
