"""The one atomic-write helper: every file the project writes goes through `atomic_path`.

A writer gets a temporary path in the target's own directory (same file system, so the final rename is atomic),
writes there, and on success the file is fsynced, given the mode `open()` would give, and renamed over the
target. On any failure the temporary file is removed: a reader sees the old file or the new one, never half of
one, and nothing is left behind. OSError becomes a one-line HsError naming the target.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

from hyperstyle_trt.core.errors import HsError


def file_mode() -> int:
    """0o666 minus the process umask: what open() would give (mkstemp alone gives 0o600)."""
    u = os.umask(0)
    os.umask(u)
    return 0o666 & ~u


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, mkdir: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path`; when the block ends without an exception the file there is fsynced,
    chmodded and renamed onto `path`. `mkdir`: create the parent directory first."""
    path = Path(path)
    tmp: Path | None = None
    try:
        if mkdir:
            path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
        yield tmp
        os.chmod(tmp, file_mode())
        _fsync(tmp)
        os.replace(tmp, path)
        tmp = None
    except IsADirectoryError:
        raise HsError(f"cannot write {path}: it is a directory") from None
    except OSError as e:
        raise HsError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)  # nothing half-written is left behind


def write_bytes_atomic(path: str | os.PathLike, blob: bytes) -> Path:
    """Write `blob` to `path` atomically. Returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(blob)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(path, text.encode())


def write_json_atomic(path: str | os.PathLike, obj) -> Path:
    """JSON (indented, trailing newline; non-JSON values via str) written atomically."""
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
