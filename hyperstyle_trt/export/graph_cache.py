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

Bound. The cache keeps the `$HS_GRAPH_CACHE_ENTRIES` (default 3; 0: no bound) most recently used entries (an FFHQ-1024
entry is about 1.5 GB). A hit marks its entry used (the marker's mtime); after an entry is inserted the others are
pruned, least recently used first. An entry in use is never removed: `plain_graphs` holds a shared `flock` on the
entry's `.lock` for the rest of the process (the executor reads the graphs after it returns), and pruning removes
only an entry it can lock exclusively without waiting (it renames it to `graphs/.del-*` under that lock, then
deletes it), so entries held by this or any other live process stay. Without fcntl (Windows) nothing is pruned.
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
ENTRIES_ENV = "HS_GRAPH_CACHE_ENTRIES"  # how many entries to keep (most recently used); 0: no bound
DEFAULT_ENTRIES = 3
MARKER = "entry.json"
LOCK = ".lock"  # flock'ed shared by each process using the entry, exclusively by pruning
PLAIN_BATCH = 1  # the plain generator's fixed batch: the Inverter runs it row by row (padded chunks of 1)
MAX_BATCH = 64  # the exporter's traced batch range for the dynamic graphs (onnxruntime accepts any batch)


def cache_root() -> Path:
    """$HS_CACHE_DIR, else $XDG_CACHE_HOME/hyperstyle-trt, else ~/.cache/hyperstyle-trt."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "hyperstyle-trt"


def max_entries() -> int:
    """$HS_GRAPH_CACHE_ENTRIES (an integer >= 0; 0: no bound), else DEFAULT_ENTRIES. HsError on anything else."""
    raw = os.environ.get(ENTRIES_ENV, "").strip()
    if not raw:
        return DEFAULT_ENTRIES
    try:
        n = int(raw)
    except ValueError:
        n = -1
    if n < 0:
        raise HsError(f"${ENTRIES_ENV}={raw!r}: expected how many graph cache entries to keep, an integer >= 0 "
                      f"(0: no bound)")
    return n


_held: dict[str, object] = {}  # entry path -> the open .lock file this process holds a shared flock on


def _flock(entry: Path, exclusive: bool):
    """The entry's .lock opened and flock'ed (shared: waits; exclusive: does not wait), or None when it cannot be
    (no fcntl, a read-only cache, or, exclusive, another holder)."""
    try:
        import fcntl
    except ImportError:
        return None
    try:
        f = open(entry / LOCK, "a+b")
    except OSError:
        return None
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB if exclusive else fcntl.LOCK_SH)
    except OSError:
        f.close()
        return None
    return f


def hold(entry: Path) -> bool:
    """Mark `entry` in use by this process until it exits (a shared flock on its .lock, kept open) and as the most
    recently used (its marker's mtime). True when the lock is held."""
    key = str(entry)
    if key not in _held:
        f = _flock(entry, exclusive=False)
        if f is None:
            return False
        _held[key] = f
    try:
        os.utime(entry / MARKER)
    except OSError:
        pass
    return True


def _entries(graphs_dir: Path) -> list[tuple[float, Path]]:
    """(last use, path) of every complete entry (a 64-hex directory with a marker), most recent first."""
    out = []
    for d in graphs_dir.iterdir() if graphs_dir.is_dir() else ():
        if len(d.name) == 64 and all(c in "0123456789abcdef" for c in d.name):
            try:
                out.append((os.stat(d / MARKER).st_mtime, d))
            except OSError:
                continue
    return sorted(out, key=lambda t: t[0], reverse=True)


def prune(graphs_dir: Path, keep: Path | None = None, limit: int | None = None,
          notify: Callable[[str], None] = lambda m: None) -> list[Path]:
    """Remove the least recently used entries beyond `limit` (default `max_entries()`; 0: none removed), never
    `keep` nor an entry another holder has locked (see "Bound" in the module docstring). Returns the removed."""
    limit = max_entries() if limit is None else limit
    if limit <= 0:
        return []
    entries = [p for _, p in _entries(graphs_dir)]
    if keep is not None and keep in entries:
        entries.remove(keep)
        entries.insert(0, keep)
    removed = []
    for d in entries[limit:]:
        if str(d) in _held:
            continue
        f = _flock(d, exclusive=True)
        if f is None:
            continue
        try:
            gone = Path(tempfile.mkdtemp(prefix=".del-", dir=graphs_dir))
            os.rename(d, gone / d.name)
        except OSError:
            continue
        finally:
            f.close()
        shutil.rmtree(gone, ignore_errors=True)
        removed.append(d)
        notify(f"graph cache: removed the least recently used entry {d} (keeping {limit}; ${ENTRIES_ENV})")
    return removed


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
    max_entries()  # a bad $HS_GRAPH_CACHE_ENTRIES fails before any work
    probe = export_config(checkpoint, w_encoder, config, precision, graphs_dir)
    keys = graph_keys(probe)
    key = entry_key(keys)
    entry = graphs_dir / key
    if entry.exists():
        held = hold(entry)  # in use from here on: pruning by another process leaves it
        why = check_entry(entry, key, keys) if entry.exists() else "removed meanwhile"
        if why is None:
            return entry
        if held:
            _held.pop(str(entry)).close()
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
    hold(entry)
    prune(graphs_dir, keep=entry, notify=notify)
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
