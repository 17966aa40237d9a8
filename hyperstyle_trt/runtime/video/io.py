"""Video files in and out, streamed, through PyAV (`av`: its wheels bundle FFmpeg; the `video` extra).

    info = probe("clip.mp4")                     # VideoInfo(frames, fps=Fraction(30000, 1001), width, height, codec)
    for frame in read_frames("clip.mp4"):        # [H,W,3] uint8 RGB, one at a time (never the whole clip)
        ...
    with VideoWriter("out.mp4", info.fps, (info.width, info.height)) as w:
        w.write(frame)                           # atomic: a temp name beside out.mp4, renamed on close
    write_clip("clip.mp4", frames, fps=25)       # any iterable of frames

Inputs: any container / codec the bundled FFmpeg decodes (.mp4, .mov, .mkv, .webm, .avi, .gif, ...), or a directory
of frames (image files sorted by name, all of one size; no frame rate of their own: `fps` says it, default 25).
The frame rate is kept as a Fraction (the stream's average rate; a variable-rate input is written at that constant
rate, one output frame per decoded frame).

Outputs by suffix: .mp4 / .mov / .mkv: H.264 (libx264, yuv420p, crf 18), what every player reads; .webm: VP9;
.gif: FFmpeg's GIF encoder (rgb8). yuv420p needs an even width and height: an odd-sized frame is padded by
repeating its last column / row (the file is then 1 px wider / taller; `VideoWriter.padded` says so).
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from hyperstyle_trt.core.atomic import atomic_path
from hyperstyle_trt.core.errors import HsError, one_line

VIDEO_EXTS = {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".gif"}  # a file argument with one of these: a video
DEFAULT_FPS = Fraction(25)  # a frames directory's rate unless given
VIDEO_EXTRA_HINT = "pip install 'hyperstyle-trt[video]' (PyAV)"
# suffix -> (container format, encoder, pixel format, encoder options)
_WRITERS = {".mp4": ("mp4", "libx264", "yuv420p", {"crf": "18", "preset": "fast"}),
            ".mov": ("mov", "libx264", "yuv420p", {"crf": "18", "preset": "fast"}),
            ".mkv": ("matroska", "libx264", "yuv420p", {"crf": "18", "preset": "fast"}),
            ".webm": ("webm", "libvpx-vp9", "yuv420p", {"crf": "32", "b": "0", "deadline": "realtime"}),
            ".gif": ("gif", "gif", "rgb8", {})}


@dataclass(frozen=True)
class VideoInfo:
    """frames: frame count (decoded count where the container does not record it); fps: frames per second (Fraction);
    width, height: pixels; codec: the decoder's name ('frames' for a directory of images)."""

    frames: int
    fps: Fraction
    width: int
    height: int
    codec: str

    def to_dict(self) -> dict:
        return {"frames": self.frames, "fps": str(self.fps), "fps_float": round(float(self.fps), 4),
                "width": self.width, "height": self.height, "codec": self.codec}


def _av():
    try:
        import av
    except ImportError:
        raise HsError(f"video input needs PyAV: {VIDEO_EXTRA_HINT}") from None
    return av


def is_video_file(path: str | os.PathLike) -> bool:
    """A file (not a directory) whose suffix is a video container's (VIDEO_EXTS)."""
    p = Path(path)
    return p.suffix.lower() in VIDEO_EXTS and not p.is_dir()


def frame_files(folder: str | os.PathLike) -> list[Path]:
    """The image files of a frames directory (runtime.invert.job.IMAGE_EXTS, not hidden), sorted by name."""
    from hyperstyle_trt.runtime.invert.job import IMAGE_EXTS

    d = Path(folder)
    if not d.is_dir():
        raise HsError(f"--frames-dir {d}: not a directory")
    files = sorted(f for f in d.iterdir() if f.is_file() and not f.name.startswith(".")
                   and f.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise HsError(f"--frames-dir {d}: no image files (looked for {', '.join(sorted(IMAGE_EXTS))})")
    return files


def _open(path: Path):
    av = _av()
    if not path.is_file():
        raise HsError(f"no such video: {path}")
    try:
        c = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as e:
        raise HsError(f"cannot read video {path}: {one_line(e, 120)} (expected a video file FFmpeg decodes: "
                      f"{', '.join(sorted(VIDEO_EXTS))})") from None
    if not c.streams.video:
        c.close()
        raise HsError(f"cannot read video {path}: it holds no video stream")
    return c


def probe(path: str | os.PathLike, fps: float | Fraction | None = None) -> VideoInfo:
    """Frame count, rate, size and codec of a video file or a frames directory, before any work. The first frame is
    decoded too, so a file whose header reads but whose data does not is refused here (one HsError line). `fps`:
    a frames directory's rate (default DEFAULT_FPS); for a file it overrides nothing."""
    p = Path(path)
    if p.is_dir():
        from PIL import Image, UnidentifiedImageError

        files = frame_files(p)
        try:
            with Image.open(files[0]) as im:
                w, h = im.size
        except (OSError, UnidentifiedImageError) as e:
            raise HsError(f"--frames-dir {p}: cannot read {files[0].name}: {one_line(e, 100)}") from None
        return VideoInfo(len(files), Fraction(fps if fps is not None else DEFAULT_FPS).limit_denominator(100000),
                         int(w), int(h), "frames")
    av = _av()
    with _open(p) as c:
        s = c.streams.video[0]
        rate = s.average_rate or s.guessed_rate or s.base_rate
        n = int(s.frames or 0)
        try:
            first = next(c.decode(s), None)
            if first is None:
                raise HsError(f"cannot read video {p}: no frame decodes")
            if n <= 0:  # not recorded (webm, gif, ...): count the packets that carry a frame (no decoding)
                c.seek(0)
                n = sum(1 for pkt in c.demux(s) if pkt.size > 0)
        except av.FFmpegError as e:
            raise HsError(f"cannot read video {p}: {one_line(e, 120)}") from None
        fps_ = Fraction(rate).limit_denominator(100000) if rate else DEFAULT_FPS
        return VideoInfo(n, fps_, int(first.width), int(first.height), s.codec_context.name)


def read_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Decode a video file (or read a frames directory) frame by frame: [H,W,3] uint8 RGB, one in memory at a time.
    A frames directory's images must all have the first one's size (HsError naming the file otherwise)."""
    p = Path(path)
    if p.is_dir():
        from hyperstyle_trt.runtime.align import load_photo

        size = None
        for f in frame_files(p):
            img = load_photo(f)
            if size is None:
                size = img.shape
            elif img.shape != size:
                raise HsError(f"--frames-dir {p}: {f.name} is {img.shape[1]}x{img.shape[0]}, the first frame "
                              f"{size[1]}x{size[0]}; every frame must have one size")
            yield img
        return
    av = _av()
    with _open(p) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        try:
            for fr in c.decode(s):
                yield fr.to_ndarray(format="rgb24")
        except av.FFmpegError as e:
            raise HsError(f"cannot decode {p}: {one_line(e, 120)}") from None


class VideoWriter:
    """Encode frames [H,W,3] uint8 (all of `size` = (width, height)) to `path` at `fps`, streamed; the encoder is
    picked by the suffix (module docstring). Atomic: written to a temp name in the same folder and renamed when
    `close()` (or the `with` block) ends without an error; on an error nothing is left. `padded`: the frames were
    padded to an even size for yuv420p. `frames`: frames written so far."""

    def __init__(self, path: str | os.PathLike, fps: float | Fraction, size: tuple[int, int]):
        av = _av()
        self.path = Path(path)
        if self.path.suffix.lower() not in _WRITERS:
            raise HsError(f"cannot write {self.path}: expected one of {', '.join(sorted(_WRITERS))}")
        fmt, codec, self.pix_fmt, opts = _WRITERS[self.path.suffix.lower()]
        self.width, self.height = int(size[0]), int(size[1])
        if self.width < 2 or self.height < 2:
            raise HsError(f"cannot write {self.path}: frame size {self.width}x{self.height} is too small")
        even = self.pix_fmt == "yuv420p"
        self.padded = even and bool(self.width % 2 or self.height % 2)
        self.fps = Fraction(fps).limit_denominator(100000)
        self.frames = 0
        self._stack = contextlib.ExitStack()
        tmp = self._stack.enter_context(atomic_path(self.path))
        try:
            self._c = av.open(str(tmp), mode="w", format=fmt)
            self._stack.callback(self._c.close)
            self._s = self._c.add_stream(codec, rate=self.fps, options=dict(opts))
            self._s.width, self._s.height = self.width + self.width % 2 * even, self.height + self.height % 2 * even
            self._s.pix_fmt = self.pix_fmt
            self._s.codec_context.time_base = 1 / self.fps
        except BaseException:
            self._stack.__exit__(*sys.exc_info())
            raise

    def write(self, frame: np.ndarray) -> None:
        """Encode one frame [height,width,3] uint8 RGB."""
        av = _av()
        f = np.asarray(frame)
        if f.shape != (self.height, self.width, 3) or f.dtype != np.uint8:
            raise HsError(f"{self.path.name}: expected a uint8 frame [{self.height},{self.width},3], got {f.dtype} "
                          f"{f.shape}")
        if self.padded:
            f = np.pad(f, ((0, self.height % 2), (0, self.width % 2), (0, 0)), mode="edge")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
        vf.pts = self.frames
        vf.time_base = 1 / self.fps
        for pkt in self._s.encode(vf):
            self._c.mux(pkt)
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder, close the file and rename it into place (nothing with no frame written)."""
        if self._stack is None:
            return
        stack, self._stack = self._stack, None
        with stack:
            if self.frames == 0:
                raise HsError(f"{self.path}: no frame was written")
            for pkt in self._s.encode():
                self._c.mux(pkt)

    def abort(self) -> None:
        """Drop the partial file (the temp name is removed; `path` is untouched)."""
        if self._stack is not None:
            stack, self._stack = self._stack, None
            err = HsError(f"{self.path}: aborted")
            stack.__exit__(HsError, err, None)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, et, ev, tb) -> None:
        if et is None:
            self.close()
        else:
            self.abort()


def write_clip(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float | Fraction = 25) -> Path:
    """Encode an iterable of [H,W,3] uint8 frames (size from the first) to `path` (VideoWriter); returns the path."""
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise HsError(f"{path}: no frames to write")
    with VideoWriter(path, fps, (first.shape[1], first.shape[0])) as w:
        w.write(first)
        for f in it:
            w.write(f)
    return Path(path)
