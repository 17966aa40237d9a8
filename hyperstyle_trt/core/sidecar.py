"""JSON sidecars (`<artifact>.json`) and the version/environment record every artifact carries.

A sidecar is written atomically (core.atomic) next to its artifact and holds: the export config, software
versions (torch, onnx, onnxruntime, TensorRT flavor, CUDA, GPU), content hashes (sha256), I/O shapes and timings.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import Any, Iterable

from hyperstyle_trt.core.atomic import write_json_atomic

SCHEMA = 1


def sha256_files(paths: Iterable[Path], chunk: int = 1 << 24) -> str:
    """sha256 over the files' names (basename) and contents, in the given order."""
    h = hashlib.sha256()
    for p in paths:
        p = Path(p)
        h.update(p.name.encode() + b"\0")
        with open(p, "rb") as f:
            while True:
                b = f.read(chunk)
                if not b:
                    break
                h.update(b)
        h.update(b"\0")
    return h.hexdigest()


def sha256_file(path: Path) -> str:
    """Plain sha256 of one file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(1 << 24):
            h.update(b)
    return h.hexdigest()


def software_versions(trt_flavor: Any | None = None) -> dict[str, str | None]:
    """Versions of the stack and the GPU; `trt_flavor` is an core.flavor.Flavor (or None when no TensorRT is
    used). `gpu` is torch's current device (name and compute capability), or None without CUDA."""
    import numpy
    import torch

    out: dict[str, str | None] = {"python": platform.python_version(), "torch": torch.__version__,
                                  "numpy": numpy.__version__, "cuda": torch.version.cuda}
    for mod in ("onnx", "onnxruntime", "onnxscript", "onnx_graphsurgeon"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            out[mod] = None
    out["gpu"] = None
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(torch.cuda.current_device())
        out["gpu"] = f"{p.name} sm_{p.major}{p.minor}"
    if trt_flavor is not None:
        out["tensorrt_flavor"] = trt_flavor.name
        out["tensorrt"] = trt_flavor.version
    return out


def sidecar_path(artifact: Path) -> Path:
    return Path(artifact).with_name(Path(artifact).name + ".json")


def write_sidecar(artifact: Path, record: dict) -> Path:
    """Write `<artifact>.json` = {"schema", "artifact", **record}. Returns its path."""
    p = sidecar_path(artifact)
    write_json_atomic(p, {"schema": SCHEMA, "artifact": Path(artifact).name, **record})
    return p


def read_sidecar(artifact: Path) -> dict | None:
    """The sidecar of `artifact`, or None if it is missing or unreadable/corrupt (the caller treats that as stale)."""
    p = sidecar_path(artifact)
    try:
        obj = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) and obj.get("schema") == SCHEMA else None


def keyed_sidecar(artifact: Path, key_field: str, key: str) -> tuple[dict | None, str | None]:
    """(sidecar, None) when `artifact` exists and its sidecar's `key_field` is `key`; else (None, why not): "missing",
    "sidecar missing or unreadable", "stale (made from different inputs)". The first check of every content-keyed
    reuse (engines.cache, export.reuse); each then checks its own hashes."""
    if not Path(artifact).is_file():
        return None, "missing"
    side = read_sidecar(artifact)
    if side is None:
        return None, "sidecar missing or unreadable"
    if side.get(key_field) != key:
        return None, "stale (made from different inputs)"
    return side, None
