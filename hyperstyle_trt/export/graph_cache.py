"""The per-user cache of plain ONNX graphs: what `--executor onnxruntime` (and `Inverter.from_checkpoint(...,
executor="onnxruntime")`) runs when no `--export-dir` is given.

    path = plain_graphs(checkpoint=None, w_encoder=None, config="tiny")   # an hs-export directory, made once

Root: `$HS_CACHE_DIR`, else `$XDG_CACHE_HOME/hyperstyle-trt`, else `~/.cache/hyperstyle-trt`. Each entry is
`<root>/graphs/<key>/`: an hs-export directory of the plain set (w_encoder, hypernet_plain, generator_plain; one
precision; plain generator at batch 1; no engines; not verified, as `hs-export --no-verify`: the exporter is the one
hs-export runs and the tests verify) plus `entry.json`, the completion marker (key and what it hashes), written last.

key = sha256 over the three graphs' reuse keys (export/reuse.py: weights bytes, config, precision / variant, export
settings, exporter sources and versions). A lookup re-checks every graph's sha256 against its sidecar; a corrupt,
partial or stale entry is removed and exported again, never used. A build exports into `graphs/.tmp-<key>-...` and
renames the finished directory into place (atomic on one file system): a reader never sees half an entry, and when
two processes build the same entry the first rename wins and the other's copy is discarded.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from hyperstyle_trt.core.atomic import write_json_atomic
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.export import reuse
from hyperstyle_trt.export.config import ExportConfig

CACHE_ENV = "HS_CACHE_DIR"
MARKER = "entry.json"
PLAIN_BATCH = 1  # the plain generator's fixed batch: the Inverter runs it row by row (padded chunks of 1)
MAX_BATCH = 64  # the exporter's traced batch range for the dynamic graphs (onnxruntime accepts any batch)


def cache_root() -> Path:
    """$HS_CACHE_DIR, else $XDG_CACHE_HOME/hyperstyle-trt, else ~/.cache/hyperstyle-trt."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "hyperstyle-trt"


def export_config(checkpoint: str | None, w_encoder: str | None, config: str | None, precision: str,
                  out: Path) -> ExportConfig:
    """The ExportConfig of a cache entry (plain set, one precision, no engines, no verification)."""
    return ExportConfig(config=config, checkpoint=checkpoint, w_encoder=w_encoder, precisions=(precision,),
                        variants=("plain",), plain_batch=PLAIN_BATCH, max_batch=MAX_BATCH, build_engines=False,
                        verify=False, out=Path(out))


def graph_keys(cfg: ExportConfig) -> dict[str, str]:
    """{onnx file name: reuse key} of the entry's graphs."""
    from hyperstyle_trt.export.pipeline import artifact_name, graph_list

    weights = reuse.weights_digest(cfg.checkpoint, cfg.w_encoder, cfg.config)
    prec = cfg.precisions[0]
    return {f"{artifact_name(g, v, prec)}.onnx": reuse.reuse_key(cfg, weights, g, v, prec, dyn)[0]
            for g, v, dyn in graph_list(cfg.variants)}


def entry_key(keys: dict[str, str]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()


def check_entry(entry: Path, key: str, keys: dict[str, str]) -> str | None:
    """None when `entry` is complete and intact for `key`; else why not."""
    try:
        marker = json.loads((entry / MARKER).read_text())
    except (OSError, ValueError):
        return "incomplete (no readable entry.json)"
    if marker.get("key") != key or marker.get("graphs") != keys:
        return "stale (made from different inputs)"
    for name, k in keys.items():
        why = reuse.unusable(entry / name, k, need_verified=False)
        if why is not None:
            return f"{name}: {why}"
    return None


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def plain_graphs(checkpoint: str | None = None, w_encoder: str | None = None, config: str | None = None,
                 precision: str = "fp32", root: Path | None = None, model=None,
                 notify: Callable[[str], None] = _say) -> Path:
    """The cache entry (an hs-export directory) holding the plain graphs of these weights at `precision`, exported
    now when it is missing, incomplete, corrupt or stale (`notify` says so before and after; `model`: the loaded
    HyperStyle, else it is loaded from the checkpoint / preset). HsError (one line) when the export fails."""
    root = Path(root) if root is not None else cache_root()
    graphs_dir = root / "graphs"
    probe = export_config(checkpoint, w_encoder, config, precision, graphs_dir)
    keys = graph_keys(probe)
    key = entry_key(keys)
    entry = graphs_dir / key
    if entry.exists():
        why = check_entry(entry, key, keys)
        if why is None:
            return entry
        notify(f"graph cache: entry {entry} is unusable ({why}); exporting it again")
        shutil.rmtree(entry, ignore_errors=True)
    try:
        graphs_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key[:16]}-", dir=graphs_dir))
    except OSError as e:
        raise HsError(f"cannot create the graph cache {graphs_dir}: {e.strerror or e} (set ${CACHE_ENV})") from None
    try:
        _build(probe, tmp, key, keys, model, entry, notify)
        try:
            os.rename(tmp, entry)
        except OSError:  # another process renamed its copy first: use it when intact
            if check_entry(entry, key, keys) is not None:
                raise HsError(f"graph cache entry {entry} appeared but is unusable; remove it and retry") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return entry


def _build(probe: ExportConfig, tmp: Path, key: str, keys: dict, model, entry: Path,
           notify: Callable[[str], None]) -> None:
    from hyperstyle_trt.export.pipeline import run_onnx_export

    what = probe.checkpoint or f"embedded default weights ({probe.config or 'ffhq1024'})"
    notify(f"graph cache: exporting the plain ONNX graphs of {what} ({probe.precisions[0]}) for onnxruntime, once, "
           f"into {entry} (minutes at full size; later runs reuse them)")
    t0 = time.perf_counter()
    rep = run_onnx_export(probe.replace(out=tmp), model=model)
    if rep.failed:
        a = rep.failed[0]
        raise HsError(f"graph cache: exporting {a.path.name} failed ({a.status})")
    write_json_atomic(tmp / MARKER, {"key": key, "graphs": keys, "export_config": probe.replace(out=entry).to_dict(),
                                     "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    notify(f"graph cache: exported in {time.perf_counter() - t0:.1f} s")
