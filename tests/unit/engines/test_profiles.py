"""Optimization profiles per batch bucket (engines.profiles, BuildOptions.batch_buckets) and the timing cache keyed by
GPU (engines.builder.timing_cache_path). Engines are built with TensorRT-RTX on CPU; they cannot be deserialized
here, so the profile count is read from the builder config the engine was built with."""

import json

import pytest

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.core.sidecar import sidecar_path
from hyperstyle_trt.engines.builder import BuildOptions, foreign_timing_caches, timing_cache_path
from hyperstyle_trt.engines.profiles import batch_buckets, engine_profiles, pick_profile, profile_batches

BUCKETS8 = ((1, 1, 1), (2, 2, 2), (3, 4, 4), (5, 8, 8))


def test_batch_buckets():
    assert batch_buckets(8) == BUCKETS8
    assert batch_buckets(1) == ((1, 1, 1),)
    assert batch_buckets(6) == ((1, 1, 1), (2, 2, 2), (3, 4, 4), (5, 6, 6))
    assert batch_buckets(8, opt_batch=6) == ((1, 1, 1), (2, 2, 2), (3, 4, 4), (5, 6, 6), (7, 8, 8))
    assert batch_buckets(8, opt_batch=4) == BUCKETS8  # already an edge
    for b in range(1, 33):  # every batch 1..max is covered exactly once, tuned for at most twice its size
        buckets = batch_buckets(32)
        (hit,) = [k for k in buckets if k[0] <= b <= k[2]]
        assert hit[1] == hit[2] and b <= hit[2] < 2 * b
    with pytest.raises(HsError, match="opt_batch must be in 1..8, got 9"):
        batch_buckets(8, 9)
    with pytest.raises(HsError, match="max_batch must be >= 1, got 0"):
        batch_buckets(0)


def test_pick_profile():
    assert [pick_profile(BUCKETS8, b) for b in range(1, 9)] == [0, 1, 2, 2, 3, 3, 3, 3]
    assert pick_profile(((1, 8, 8),), 5) == 0  # an engine from before the buckets
    assert pick_profile(((1, 8, 8), (3, 4, 4)), 3) == 1  # the narrowest wins
    assert pick_profile(((1, 1, 1), (5, 8, 8)), 3) is None


def test_engine_profiles_reads_every_index():
    class Engine:
        num_optimization_profiles = 2

        def get_tensor_profile_shape(self, name, p):
            lo, opt, hi = [(1, 1, 2), (3, 4, 4)][p]
            extra = 1 if name == "b" else 0  # b accepts a narrower range: the profile is the intersection
            return [(lo + extra * (p == 0), 7), (opt, 7), (hi, 7)]

    assert engine_profiles(Engine(), ["a", "b"]) == ((2, 1, 2), (3, 4, 4))


def test_build_options_buckets(profile):
    opts = BuildOptions(profile=profile, batch_buckets=BUCKETS8)
    assert len(opts.all_profiles) == 4
    assert opts.all_profiles[2] == (("x", (3, 3, 16, 16), (4, 3, 16, 16), (4, 3, 16, 16)),)
    assert [profile_batches(p) for p in opts.all_profiles] == [{"min": lo, "opt": o, "max": hi}
                                                               for lo, o, hi in BUCKETS8]
    assert opts.to_dict()["batch_buckets"] == [list(b) for b in BUCKETS8]
    # options without the new fields serialize as before (the cache keys of earlier engines stay valid)
    assert set(BuildOptions(profile=profile).to_dict()) == {"profile", "compute_capabilities", "optimization_level",
                                                            "workspace_bytes", "aot_plugins", "strongly_typed"}
    assert BuildOptions(profile=profile).all_profiles == (profile,) and BuildOptions().all_profiles == ()
    with pytest.raises(HsError, match="batch buckets need a profile"):
        BuildOptions(batch_buckets=BUCKETS8)


@pytest.mark.trt
@pytest.mark.filterwarnings("ignore:Use Deprecated in TensorRT-RTX:DeprecationWarning")  # CreateConfig's timing cache
def test_rtx_engine_with_one_profile_per_bucket(conv_onnx, profile, tmp_path):
    """An RTX build with the buckets of max_batch 8: the builder config carries 4 optimization profiles in bucket
    order, the engine builds, its key differs from the one-profile engine's, and its sidecar lists the profiles."""
    from hyperstyle_trt.core.flavor import get_flavor
    from hyperstyle_trt.engines.builder import _config, get_or_build
    from hyperstyle_trt.engines.network import parse_onnx, polygraphy_trt

    fl = get_flavor()
    opts = BuildOptions(profile=profile, batch_buckets=BUCKETS8)
    with parse_onnx(conv_onnx, fl) as net:
        config = _config(polygraphy_trt(fl), fl, opts, None)(net.builder, net.network)
        assert config.num_optimization_profiles == 4
    res = get_or_build(conv_onnx, tmp_path / "b.engine", opts, tmp_path / "cache")
    one = get_or_build(conv_onnx, tmp_path / "one.engine", BuildOptions(profile=profile), tmp_path / "cache")
    assert res.status == one.status == "built" and res.key != one.key and res.size > 1000
    side = json.loads(sidecar_path(res.path).read_text())
    assert side["profiles"] == [{"min": 1, "opt": 1, "max": 1}, {"min": 2, "opt": 2, "max": 2},
                                {"min": 3, "opt": 4, "max": 4}, {"min": 5, "opt": 8, "max": 8}]
    assert side["build_options"]["batch_buckets"] == [list(b) for b in BUCKETS8]
    assert side["build_options"]["profile"][0][1][0] == 1  # the shapes over 1..max_batch, as before
    assert json.loads(sidecar_path(one.path).read_text())["profiles"] == [{"min": 1, "opt": 4, "max": 8}]


# ---- the timing cache is keyed by GPU ------------------------------------------------------------------------------
H200 = {"flavor": "tensorrt", "version": "10.9.0.34", "device": "NVIDIA H200 sm_90"}
H100 = {**H200, "device": "NVIDIA H100 80GB HBM3 sm_90"}


def test_timing_cache_path_keys_flavor_version_and_gpu(tmp_path):
    assert timing_cache_path(tmp_path, H200) == tmp_path / "timing_tensorrt_10.9.0.34_NVIDIA_H200_sm_90.cache"
    assert timing_cache_path(tmp_path, H100).name == "timing_tensorrt_10.9.0.34_NVIDIA_H100_80GB_HBM3_sm_90.cache"
    assert timing_cache_path(tmp_path, {**H200, "device": "NVIDIA H200 sm_100"}) != timing_cache_path(tmp_path, H200)
    assert timing_cache_path(tmp_path, {**H200, "version": "10.8.0"}) != timing_cache_path(tmp_path, H200)
    rtx = {"flavor": "tensorrt_rtx", "version": "1.7.1.116", "device": "cc:SM86,SM89"}
    assert timing_cache_path(tmp_path, rtx).name == "timing_tensorrt_rtx_1.7.1.116_cc_SM86_SM89.cache"


def test_foreign_timing_caches(tmp_path):
    for t in (H200, H100, {**H200, "version": "10.8.0"}, {**H200, "flavor": "tensorrt_rtx"}):
        timing_cache_path(tmp_path, t).write_bytes(b"x")
    (tmp_path / "timing_tensorrt_10.9.0.34.cache").write_bytes(b"x")  # the GPU-less name of earlier builds
    assert foreign_timing_caches(tmp_path, H200) == ["timing_tensorrt_10.9.0.34.cache",
                                                     "timing_tensorrt_10.9.0.34_NVIDIA_H100_80GB_HBM3_sm_90.cache"]
    assert foreign_timing_caches(tmp_path / "none", H200) == []


def test_get_or_build_never_loads_another_gpus_timing_cache(conv_onnx, tmp_path, monkeypatch, profile):
    """A full-TensorRT build on an H200 (build target and build faked: no full TensorRT here) gets the H200's cache
    path; an H100's cache beside it is not loaded, and the status says so."""
    from hyperstyle_trt.core.flavor import Flavor, get_flavor
    from hyperstyle_trt.engines import builder

    cache = tmp_path / "cache"
    cache.mkdir()
    timing_cache_path(cache, H100).write_bytes(b"h100 tactics")
    seen = []

    def fake_build(onnx_path, options, flavor=None, timing_cache=None):
        seen.append(timing_cache)
        return b"engine" * 300

    monkeypatch.setattr(builder, "build_target", lambda fl, ccs=(): dict(H200))
    monkeypatch.setattr(builder, "build_serialized", fake_build)
    full = Flavor("tensorrt", get_flavor().module, H200["version"])
    res = builder.get_or_build(conv_onnx, tmp_path / "e.engine", BuildOptions(profile=profile), cache, flavor=full)
    assert seen == [timing_cache_path(cache, H200)]
    assert res.status == ("built (timing cache timing_tensorrt_10.9.0.34_NVIDIA_H100_80GB_HBM3_sm_90.cache not "
                          "loaded: another GPU than NVIDIA H200 sm_90)")
