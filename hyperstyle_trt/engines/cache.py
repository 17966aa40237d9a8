"""Content-hash engine cache.

key = sha256 of {ONNX graph + external data bytes, TensorRT flavor + version, build target (GPU name + compute
capability, or "portable" / the target CCs for TensorRT-RTX), versions of the plugin ops the graph uses (from their
spec.json) and a digest of the plugin code an engine freezes at build time (`plugins.registry.build_digest`: formats,
output shapes, workspace size), build options (profile shapes, strong typing, optimization level)}.

Layout: `<cache_dir>/<key>.engine` + `<key>.engine.json` (sidecar with the key and the engine's sha256). `lookup`
re-hashes the engine and compares it with the sidecar: a corrupt or stale entry is reported, removed and never used.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from hyperstyle_trt.core.atomic import write_bytes_atomic
from hyperstyle_trt.core.sidecar import keyed_sidecar, sha256_file, sha256_files, write_sidecar
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.export.onnx_io import graph_meta, plugin_versions_of


def cache_key(onnx_path: Path, target: dict, build_options: dict) -> tuple[str, dict]:
    """(hex key, the components hashed). `target`: flavor/version/device (engines.builder.build_target)."""
    files, ops = graph_meta(onnx_path)
    comp = {"onnx_sha256": sha256_files(files), "target": target, "plugins": plugin_versions_of(ops),
            "build": build_options}
    if ops:  # the plugin code an engine freezes at build time (e.g. HsModConv's workspace size)
        from hyperstyle_trt.plugins.registry import build_digest

        comp["plugin_build"] = build_digest(ops)
    key = hashlib.sha256(json.dumps(comp, sort_keys=True).encode()).hexdigest()
    return key, comp


@dataclass(frozen=True)
class Lookup:
    """Result of a cache probe: path to a verified engine (or None) and what happened ("hit", "miss", or
    "corrupt: <why>" when an entry existed but was rejected)."""

    path: Path | None
    status: str


def verify_engine(engine: Path, key: str) -> str | None:
    """None if `engine` exists, its sidecar names `key` and the sha256 matches; else the reason it is not usable."""
    side, why = keyed_sidecar(engine, "cache_key", key)
    if side is None:
        return why
    if side.get("engine_sha256") != sha256_file(engine):
        return "corrupt (sha256 mismatch)"
    return None


class EngineCache:
    """Directory of engines keyed by content hash."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def entry(self, key: str) -> Path:
        return self.root / f"{key}.engine"

    def lookup(self, key: str) -> Lookup:
        p = self.entry(key)
        if not p.exists():
            return Lookup(None, "miss")
        why = verify_engine(p, key)
        if why is None:
            return Lookup(p, "hit")
        self.evict(key)
        return Lookup(None, f"rejected cache entry: {why}")

    def evict(self, key: str) -> None:
        for p in (self.entry(key), self.entry(key).with_name(f"{key}.engine.json")):
            if p.exists():
                p.unlink()

    def store(self, key: str, blob: bytes, record: dict) -> Path:
        """Write the engine + sidecar atomically; returns the engine path."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise HsError(f"cannot create engine cache {self.root}: {e.strerror}") from None
        p = self.entry(key)
        write_bytes_atomic(p, blob)
        write_sidecar(p, {**record, "cache_key": key, "engine_sha256": hashlib.sha256(blob).hexdigest()})
        return p
