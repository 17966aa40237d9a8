"""export.graph_cache: the plain graphs `--executor onnxruntime` runs without an --export-dir, exported once per
content key. One real tiny export (the miss, with its message); the other cases copy that entry (a content-keyed
entry is valid under any root) or use a stand-in exporter that writes the real entry's files with this run's keys,
so the cache's own logic is what they test: a hit never calls the exporter, a corrupt / partial entry is rebuilt,
changed weights or exporter sources give a new entry."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.export import graph_cache as GC
from hyperstyle_trt.export import pipeline, reuse


@pytest.fixture(scope="module")
def tiny_entry(tmp_path_factory, tiny_model):
    """(entry path, messages) of a real miss: the tiny plain fp32 graphs exported into an empty cache."""
    root = tmp_path_factory.mktemp("graph_cache")
    msgs: list[str] = []
    entry = GC.plain_graphs(None, None, "tiny", root=root, model=tiny_model, notify=msgs.append)
    return entry, msgs


@pytest.fixture
def calls(monkeypatch, tiny_entry):
    """Replaces the exporter with a stand-in that writes the real entry's graphs with the keys of the config it is
    given (what run_onnx_export would write for it); records each call."""
    ref, _ = tiny_entry
    seen: list = []

    def fake_export(cfg, step=None, model=None, **kw):
        seen.append(cfg)
        for f in ref.iterdir():
            if f.name != GC.MARKER:
                shutil.copy(f, cfg.out / f.name)
        for name, key in GC.graph_keys(cfg).items():
            side = json.loads((cfg.out / f"{name}.json").read_text())
            (cfg.out / f"{name}.json").write_text(json.dumps(side | {"reuse_key": key}))
        return SimpleNamespace(failed=[])

    monkeypatch.setattr(pipeline, "run_onnx_export", fake_export)
    return seen


def _copy_entry(entry: Path, root: Path) -> Path:
    dst = root / "graphs" / entry.name
    shutil.copytree(entry, dst)
    return dst


def test_miss_exports_with_a_message(tiny_entry):
    entry, msgs = tiny_entry
    assert len(msgs) == 2 and "exporting the plain ONNX graphs" in msgs[0] and str(entry) in msgs[0]
    assert msgs[1].startswith("graph cache: exported in")
    names = sorted(p.name for p in entry.glob("*.onnx"))
    assert names == ["generator_plain_fp32.onnx", "hypernet_plain_fp32.onnx", "w_encoder_fp32.onnx"]
    marker = json.loads((entry / GC.MARKER).read_text())
    assert marker["key"] == entry.name and marker["graphs"] == GC.graph_keys(GC.export_config(
        None, None, "tiny", "fp32", entry))
    assert not list(entry.parent.glob(".tmp-*"))  # the build directory was renamed into place


def test_hit_does_not_export(tiny_entry, calls):
    entry, _ = tiny_entry
    msgs: list[str] = []
    assert GC.plain_graphs(None, None, "tiny", root=entry.parent.parent, notify=msgs.append) == entry
    assert calls == [] and msgs == []


def test_root_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HS_CACHE_DIR", str(tmp_path / "hs"))
    assert GC.cache_root() == tmp_path / "hs"
    monkeypatch.delenv("HS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert GC.cache_root() == tmp_path / "xdg" / "hyperstyle-trt"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert GC.cache_root() == tmp_path / "home" / ".cache" / "hyperstyle-trt"


@pytest.mark.parametrize("damage", ["truncate", "marker", "sidecar"])
def test_corrupt_or_partial_entry_is_rebuilt(tiny_entry, calls, tmp_path, damage):
    """A truncated graph, a missing completion marker (a build that never finished) or a sidecar naming other
    inputs: the entry is removed and exported again, never used."""
    entry = _copy_entry(tiny_entry[0], tmp_path)
    if damage == "truncate":
        p = entry / "hypernet_plain_fp32.onnx"
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    elif damage == "marker":
        (entry / GC.MARKER).unlink()
    else:
        side = entry / "w_encoder_fp32.onnx.json"
        side.write_text(json.dumps(json.loads(side.read_text()) | {"reuse_key": "0" * 64}))
    msgs: list[str] = []
    assert GC.plain_graphs(None, None, "tiny", root=tmp_path, notify=msgs.append) == entry
    assert len(calls) == 1 and "unusable" in msgs[0]
    assert {"truncate": "corrupt", "marker": "incomplete", "sidecar": "stale"}[damage] in msgs[0]
    key = entry.name
    assert GC.check_entry(entry, key, json.loads((entry / GC.MARKER).read_text())["graphs"]) is None
    assert (entry / "hypernet_plain_fp32.onnx").read_bytes() == \
        (tiny_entry[0] / "hypernet_plain_fp32.onnx").read_bytes()


def test_changed_weights_or_exporter_give_a_new_entry(tiny_model, calls, tmp_path, monkeypatch):
    """Keys follow the weights' bytes (a checkpoint pair, then the same pair with one tensor changed) and the
    exporter's sources: each change is a new entry; an unchanged input is a hit."""
    import torch

    from tests.unit._helpers.checkpoints import save_checkpoint, save_w_encoder_checkpoint

    save_checkpoint(tiny_model, tmp_path / "a.pt")
    save_w_encoder_checkpoint(tiny_model, tmp_path / "w.pt")
    root = tmp_path / "cache"
    a = GC.plain_graphs(str(tmp_path / "a.pt"), str(tmp_path / "w.pt"), None, root=root, notify=lambda m: None)
    assert len(calls) == 1 and calls[0].checkpoint == str(tmp_path / "a.pt")
    assert GC.plain_graphs(str(tmp_path / "a.pt"), str(tmp_path / "w.pt"), None, root=root) == a and len(calls) == 1
    changed = __import__("copy").deepcopy(tiny_model)
    with torch.no_grad():
        next(changed.decoder.parameters()).add_(1.0)
    save_checkpoint(changed, tmp_path / "b.pt")
    b = GC.plain_graphs(str(tmp_path / "b.pt"), str(tmp_path / "w.pt"), None, root=root, notify=lambda m: None)
    assert b != a and len(calls) == 2 and a.is_dir()
    monkeypatch.setattr(reuse, "exporter_digest", lambda plugin=False: "another exporter")
    c = GC.plain_graphs(str(tmp_path / "b.pt"), str(tmp_path / "w.pt"), None, root=root, notify=lambda m: None)
    assert c not in (a, b) and len(calls) == 3


def test_failed_export_is_one_line_and_leaves_no_entry(monkeypatch, tmp_path):
    bad = SimpleNamespace(path=Path("hypernet_plain_fp32.onnx"), status="FAIL export: boom")
    monkeypatch.setattr(pipeline, "run_onnx_export", lambda cfg, **kw: SimpleNamespace(failed=[bad]))
    with pytest.raises(HsError, match=r"exporting hypernet_plain_fp32.onnx failed \(FAIL export: boom\)"):
        GC.plain_graphs(None, None, "tiny", root=tmp_path, notify=lambda m: None)
    assert list((tmp_path / "graphs").iterdir()) == []


def test_unverified_graph_is_not_reused_when_verification_is_asked(tiny_entry):
    entry, _ = tiny_entry
    path = entry / "w_encoder_fp32.onnx"
    key = json.loads((entry / GC.MARKER).read_text())["graphs"][path.name]
    assert reuse.unusable(path, key, need_verified=False) is None
    assert reuse.unusable(path, key, need_verified=True) == "not verified"
    assert reuse.unusable(entry / "nope.onnx", key, need_verified=False) == "missing"


def _fake_entries(graphs: Path, n: int) -> list[Path]:
    """n complete-looking entries (64-hex names, a marker), last used 1000 s apart: [0] the most recent."""
    import os
    import time

    out = []
    for i in range(n):
        d = graphs / (f"{i:x}" * 64)[:64]
        d.mkdir(parents=True)
        (d / GC.MARKER).write_text("{}")
        t = time.time() - 1000 * (i + 1)
        os.utime(d / GC.MARKER, (t, t))
        out.append(d)
    return out


def test_prune_keeps_the_most_recently_used_and_never_a_held_entry(tmp_path):
    import fcntl
    import os

    e = _fake_entries(tmp_path / "graphs", 5)
    (tmp_path / "graphs" / ".tmp-building").mkdir()  # a build in progress is not an entry
    with open(e[3] / GC.LOCK, "a+b") as other:  # another holder (its own open file description)
        fcntl.flock(other, fcntl.LOCK_SH)
        assert GC.hold(e[4])  # this process uses it (which also makes it the most recent) ...
        os.utime(e[4] / GC.MARKER, (0, 0))  # ... put back last: held, it still stays
        msgs: list[str] = []
        assert GC.prune(tmp_path / "graphs", limit=2, notify=msgs.append) == [e[2]]
    assert [d.is_dir() for d in e] == [True, True, False, True, True] and len(msgs) == 1
    assert (tmp_path / "graphs" / ".tmp-building").is_dir() and not list((tmp_path / "graphs").glob(".del-*"))
    assert GC.prune(tmp_path / "graphs", limit=0) == []  # 0: no bound
    assert GC.prune(tmp_path / "graphs", limit=2) == [e[3]]  # no longer held by the other


def test_insert_prunes_to_the_env_bound(calls, tmp_path, monkeypatch):
    """A miss inserts its entry and prunes the others to $HS_GRAPH_CACHE_ENTRIES, least recently used first; a hit
    makes its entry the most recently used. A bad value is refused before any work."""
    old = _fake_entries(tmp_path / "graphs", 3)
    monkeypatch.setenv(GC.ENTRIES_ENV, "x")
    with pytest.raises(HsError, match=GC.ENTRIES_ENV):
        GC.plain_graphs(None, None, "tiny", root=tmp_path, notify=lambda m: None)
    assert calls == []
    GC.hold(old[2])  # the least recently used is touched: now the most recent
    monkeypatch.setenv(GC.ENTRIES_ENV, "2")
    new = GC.plain_graphs(None, None, "tiny", root=tmp_path, notify=lambda m: None)
    assert len(calls) == 1 and new.is_dir() and old[2].is_dir()
    assert not old[0].exists() and not old[1].exists()
    assert GC.max_entries() == 2 and (monkeypatch.delenv(GC.ENTRIES_ENV) or GC.max_entries()) == GC.DEFAULT_ENTRIES
