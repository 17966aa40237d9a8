"""Which TensorRT is importable: full `tensorrt` (preferred) or `tensorrt_rtx`. Nothing here imports either at load.

TensorRT-RTX's ONNX parser dlopens the unversioned `libtensorrt_rtx.so` when it adds a plugin layer; the PyPI wheel
ships only `libtensorrt_rtx.so.1`, and a missing library aborts the process (exit 134, no traceback).
`ensure_rtx_library_symlink()` creates the symlink next to the `.so.1` (the parser's RPATH is `$ORIGIN`, searched
first), so users never hit that abort.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from hyperstyle_trt.core.errors import HsError

FLAVORS = ("tensorrt", "tensorrt_rtx")


@dataclass(frozen=True)
class Flavor:
    name: str  # "tensorrt" | "tensorrt_rtx"
    module: ModuleType
    version: str

    @property
    def is_rtx(self) -> bool:
        return self.name == "tensorrt_rtx"


def available_flavors() -> list[str]:
    """Names of the flavors whose module can be found (without importing them)."""
    return [f for f in FLAVORS if importlib.util.find_spec(f) is not None]


@functools.lru_cache(maxsize=None)
def get_flavor(name: str | None = None) -> Flavor:
    """Import a TensorRT flavor: `name`, or `tensorrt` if importable, else `tensorrt_rtx`. HsError if none."""
    names = [name] if name else list(FLAVORS)
    if name and name not in FLAVORS:
        raise HsError(f"unknown TensorRT flavor {name!r}; expected one of {FLAVORS}")
    errors = []
    for n in names:
        if importlib.util.find_spec(n) is None:
            errors.append(f"{n}: not installed")
            continue
        try:
            mod = importlib.import_module(n)
        except Exception as e:  # a broken install (e.g. the tensorrt-cu13-libs stub) must not hide the other flavor
            errors.append(f"{n}: {type(e).__name__}: {e}")
            continue
        if n == "tensorrt_rtx":
            ensure_rtx_library_symlink()
        return Flavor(n, mod, getattr(mod, "__version__", "unknown"))
    raise HsError("no TensorRT flavor importable (" + "; ".join(errors) + "); install tensorrt or tensorrt-rtx-cu13")


def rtx_library_dir() -> Path | None:
    spec = importlib.util.find_spec("tensorrt_rtx_libs")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def ensure_rtx_library_symlink() -> Path | None:
    """Make `libtensorrt_rtx.so -> libtensorrt_rtx.so.1` beside the wheel's library. Returns the link (or None if the
    library is not found). HsError with the fix if the directory is not writable."""
    d = rtx_library_dir()
    if d is None or not (d / "libtensorrt_rtx.so.1").exists():
        return None
    link = d / "libtensorrt_rtx.so"
    if link.exists():
        return link
    tmp = d / f".libtensorrt_rtx.so.{os.getpid()}.tmp"
    try:
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to("libtensorrt_rtx.so.1")
        os.replace(tmp, link)  # atomic: concurrent processes race harmlessly
    except OSError as e:
        raise HsError(f"TensorRT-RTX needs {link} -> libtensorrt_rtx.so.1 and it could not be created ({e}); "
                      f"create it once by hand") from None
    return link
