"""Content keys for exported graphs: when an ONNX file may be reused instead of exported again.

One mechanism serves `hs-export` (a graph already in `--out` whose inputs are unchanged is kept, `--force` redoes it)
and the runtime's graph cache (export/graph_cache.py: the plain graphs `--executor onnxruntime` runs without an
`--export-dir`). It follows the engine cache (engines/cache.py): a sha256 over everything that decides the bytes,
recorded in the artifact's sidecar, and the file's own sha256 re-checked before it is trusted.

    key = sha256 {weights: sha256 of the checkpoint + W-encoder files (or the embedded preset's name: its weights
                  are the deterministic fill, whose code the source digest covers),
                  graph, variant, precision, the export settings that shape the graph (preset, opset, dynamic batch
                  range or fixed plain batch, external-data threshold),
                  exporter: the package version and a sha256 of the exporter's own sources (core/, models/,
                  export/, plus plugins/ for the plugin variant), versions of torch / onnx / onnxscript / gs}

A graph is reusable when its sidecar names the same key, every file it lists is there with the recorded sha256, and
(when verification is asked for) the sidecar records a verification that passed.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.core.sidecar import keyed_sidecar, sha256_file, sha256_files

_PKG = Path(__file__).resolve().parents[1]  # hyperstyle_trt/
EXPORTER_DIRS = ("core", "models", "export")  # what decides a graph's bytes (plus plugins/ for plugin graphs)


def package_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("hyperstyle-trt")
    except metadata.PackageNotFoundError:
        return "unknown"


@functools.lru_cache(maxsize=None)
def exporter_digest(plugin: bool = False) -> str:
    """sha256 over the relative paths and bytes of the exporter's sources (*.py, *.json) under core/, models/,
    export/ (and plugins/ when `plugin`), in sorted order."""
    h = hashlib.sha256()
    dirs = (*EXPORTER_DIRS, "plugins") if plugin else EXPORTER_DIRS
    for d in dirs:
        for p in sorted((_PKG / d).rglob("*")):
            if p.suffix in (".py", ".json") and p.is_file() and "__pycache__" not in p.parts:
                h.update(str(p.relative_to(_PKG)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


@functools.lru_cache(maxsize=32)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(Path(path))


def weights_digest(checkpoint: str | None, w_encoder: str | None, config: str | None) -> dict:
    """What the weights are: sha256 of the checkpoint and W-encoder files (hashed once per process while their size
    and mtime hold), or the embedded preset's name."""
    if checkpoint is None:
        return {"embedded": config or "ffhq1024"}
    out = {"config": config}
    for k, p in (("checkpoint_sha256", checkpoint), ("w_encoder_sha256", w_encoder)):
        try:
            st = Path(p).stat()
        except (OSError, TypeError) as e:
            raise HsError(f"cannot read {k.removesuffix('_sha256').replace('_', '-')} {p!r}: "
                          f"{getattr(e, 'strerror', None) or e}") from None
        out[k] = _file_digest(str(Path(p).resolve()), st.st_size, st.st_mtime_ns)
    return out


def _stack_versions() -> dict:
    out = {"hyperstyle_trt": package_version()}
    for mod in ("torch", "onnx", "onnxscript", "onnx_graphsurgeon"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            out[mod] = None
    return out


def reuse_key(cfg, weights: dict, graph: str, variant: str, precision: str, dynamic: bool) -> tuple[str, dict]:
    """(hex key, the components hashed) of one graph of an export.ExportConfig `cfg` (see the module docstring)."""
    shape = {"max_batch": cfg.max_batch} if dynamic else {"plain_batch": cfg.plain_batch}
    comp = {"weights": weights, "graph": graph, "variant": variant, "precision": precision,
            "export": {"config": cfg.config, "opset": cfg.opset, "external_data_threshold": cfg.external_data_threshold,
                       **shape},
            "exporter": {"sources_sha256": exporter_digest(variant == "plugin"), **_stack_versions()}}
    return hashlib.sha256(json.dumps(comp, sort_keys=True).encode()).hexdigest(), comp


def unusable(path: Path, key: str, need_verified: bool) -> str | None:
    """None when the graph at `path` may be reused for `key`; else why not ("missing", "stale", "corrupt", ...)."""
    path = Path(path)
    side, why = keyed_sidecar(path, "reuse_key", key)
    if side is None:
        return why
    if str(side.get("status", "")).startswith(("FAIL", "SKIPPED")):
        return f"failed before ({side.get('status')})"
    if need_verified and not (side.get("verification") and all(e.get("ok") for e in side["verification"])):
        return "not verified"
    files = [path.parent / f for f in side.get("files") or []]
    if not files or not all(f.is_file() for f in files):
        return "a file is missing"
    if side.get("sha256") != sha256_files(files):
        return "corrupt (sha256 mismatch)"
    return None
