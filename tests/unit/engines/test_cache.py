"""Content-hash engine cache: keys, hit / miss / corrupt / stale, and get_or_build statuses (TensorRT-RTX builds on
CPU; each build here takes well under a second)."""

import json

import pytest

from hyperstyle_trt.engines.cache import EngineCache, cache_key
from hyperstyle_trt.export.onnx_io import onnx_data_files
from hyperstyle_trt.core.sidecar import read_sidecar, sidecar_path, write_sidecar
from hyperstyle_trt.core.errors import HsError


TARGET = {"flavor": "tensorrt_rtx", "version": "1.7.1.116", "device": "portable"}


def test_key_depends_on_content_target_and_options(tmp_path, make_onnx):
    a = make_onnx(tmp_path / "a.onnx", seed=0)
    b = make_onnx(tmp_path / "b.onnx", seed=1)
    k, comp = cache_key(a, TARGET, {"profile": 1})
    assert len(k) == 64 and comp["plugins"] == {}
    assert cache_key(a, TARGET, {"profile": 1})[0] == k
    assert cache_key(b, TARGET, {"profile": 1})[0] != k
    assert cache_key(a, {**TARGET, "device": "cc:SM86"}, {"profile": 1})[0] != k
    assert cache_key(a, {**TARGET, "version": "1.8"}, {"profile": 1})[0] != k
    assert cache_key(a, TARGET, {"profile": 2})[0] != k


def test_key_covers_external_data(tmp_path, make_onnx):
    p = make_onnx(tmp_path / "e.onnx", external=True)
    files = onnx_data_files(p)
    assert [f.name for f in files] == ["e.onnx", "e.onnx.data"]
    k = cache_key(p, TARGET, {})[0]
    data = files[1].read_bytes()
    files[1].write_bytes(data[:-2] + bytes([data[-2] ^ 1, data[-1]]))  # same graph file, different weights
    assert cache_key(p, TARGET, {})[0] != k
    files[1].unlink()
    with pytest.raises(HsError, match="external data"):
        cache_key(p, TARGET, {})


def test_cache_hit_miss_corrupt(tmp_path):
    c = EngineCache(tmp_path / "cache")
    assert c.lookup("k" * 64).status == "miss"
    p = c.store("k" * 64, b"engine-bytes", {"note": "x"})
    hit = c.lookup("k" * 64)
    assert hit.status == "hit" and hit.path == p
    p.write_bytes(b"engine-bytez")  # corrupt
    bad = c.lookup("k" * 64)
    assert bad.path is None and "corrupt" in bad.status and not p.exists()  # evicted, never used
    p = c.store("k" * 64, b"engine-bytes", {})
    side = json.loads(sidecar_path(p).read_text())
    side["cache_key"] = "other"
    sidecar_path(p).write_text(json.dumps(side))
    assert "stale" in c.lookup("k" * 64).status
    p = c.store("k" * 64, b"engine-bytes", {})
    sidecar_path(p).write_text("{not json")
    assert "sidecar" in c.lookup("k" * 64).status


def test_sidecar_roundtrip(tmp_path):
    a = tmp_path / "x.engine"
    write_sidecar(a, {"k": 1})
    assert read_sidecar(a)["k"] == 1 and read_sidecar(a)["artifact"] == "x.engine"
    assert read_sidecar(tmp_path / "missing.engine") is None


@pytest.mark.trt
def test_get_or_build_statuses(tmp_path, make_onnx, profile):
    from hyperstyle_trt.engines.builder import BuildOptions, get_or_build

    onnx_path = make_onnx(tmp_path / "conv.onnx")
    eng, cache = tmp_path / "conv.engine", tmp_path / "cache"
    opts = BuildOptions(profile=profile)
    r1 = get_or_build(onnx_path, eng, opts, cache)
    assert r1.status == "built" and r1.size > 0 and eng.is_file()
    side = read_sidecar(eng)
    assert side["cache_key"] == r1.key and side["build_options"]["profile"][0][0] == "x"
    # the key names what the engine was built for: this flavor and version, and (RTX) a portable engine since no
    # compute capability was asked for, or (full TensorRT) this machine's GPU
    from hyperstyle_trt.core.flavor import get_flavor

    fl = get_flavor()
    target = side["key_components"]["target"]
    assert target["flavor"] == fl.name and target["version"] == fl.version
    if fl.is_rtx:
        assert target["device"] == "portable"
    else:
        import torch

        cc = "".join(map(str, torch.cuda.get_device_capability())) if torch.cuda.is_available() else ""
        assert target["device"] == (f"{torch.cuda.get_device_name()} sm_{cc}" if cc else "no-gpu")
    assert side["versions"]["tensorrt"] == fl.version
    assert get_or_build(onnx_path, eng, opts, cache).status == "up-to-date"
    eng.unlink()
    sidecar_path(eng).unlink()
    assert get_or_build(onnx_path, eng, opts, cache).status == "cache-hit"
    # corrupt artifact and corrupt cache entry: both detected, reported, rebuilt
    eng.write_bytes(eng.read_bytes()[:-10] + b"0123456789")
    entry = EngineCache(cache).entry(r1.key)
    entry.write_bytes(b"garbage")
    r = get_or_build(onnx_path, eng, opts, cache)
    assert r.status.startswith("built") and "corrupt" in r.status and "rejected cache entry" in r.status
    assert get_or_build(onnx_path, eng, opts, cache).status == "up-to-date"
    # a changed graph makes the artifact stale
    make_onnx(onnx_path, seed=5)
    r = get_or_build(onnx_path, eng, opts, cache)
    assert r.status.startswith("built") and "stale" in r.status and r.key != r1.key


def test_key_covers_the_plugin_build_code(tmp_path, monkeypatch):
    """Graphs with plugin ops key on the plugin code an engine freezes at build time (workspace size, formats):
    an engine built by other plugin code is a miss, not a hit."""
    from hyperstyle_trt.plugins import registry
    from tests.unit._helpers.onnx_models import single_node_model

    path = tmp_path / "p.onnx"
    path.write_bytes(single_node_model("mod_conv", {"upsample": 1}).SerializeToString())
    k, comp = cache_key(path, TARGET, {})
    assert comp["plugins"] == {"HsModConv": "2"} and len(comp["plugin_build"]) == 16
    assert comp["plugin_build"] == registry.build_digest(["HsModConv"]) != registry.build_digest(["HsToRGB"])
    monkeypatch.setattr(registry, "build_digest", lambda names: "0" * 16)  # other plugin code
    assert cache_key(path, TARGET, {})[0] != k
