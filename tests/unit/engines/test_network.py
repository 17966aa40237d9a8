"""Parsing through Polygraphy (engines/network.py) with the importable flavor (TensorRT-RTX on CPU machines):
in-memory models (the external-weights path: test_aot.py), the flavor binding, a silent log, the RTX target
keywords, and the full-TensorRT config path."""

import os
import subprocess
import sys
import textwrap

import onnx
import pytest

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.engines.builder import BuildOptions, _compute_capabilities, build_network
from hyperstyle_trt.engines.network import parse_onnx

pytestmark = pytest.mark.trt


def test_in_memory_model_parses_strongly_typed_and_builds(conv_onnx, profile):
    model = onnx.load(str(conv_onnx))
    with parse_onnx(model) as net:
        assert net.name == "the in-memory model" and net.network.num_layers >= 2
        assert net.network.get_output(0).dtype == net.flavor.module.DataType.HALF
        assert len(build_network(net, BuildOptions(profile=profile))) > 1000
    assert net.network is None and net.parser is None and net.builder is None  # closed


def test_polygraphy_prints_nothing_and_its_logger_is_restored(conv_onnx, profile, capfd):
    from polygraphy.logger import G_LOGGER

    before = (G_LOGGER.use_python_logging_system, G_LOGGER.letter, G_LOGGER.colors, G_LOGGER.module_severity.get())
    with parse_onnx(conv_onnx) as net:
        build_network(net, BuildOptions(profile=profile))
    out, err = capfd.readouterr()
    assert out == "" and "[I]" not in err
    assert (G_LOGGER.use_python_logging_system, G_LOGGER.letter, G_LOGGER.colors,
            G_LOGGER.module_severity.get()) == before


def _run(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300)


def test_polygraphy_follows_the_flavor_not_the_env_var(conv_onnx, profile):
    """POLYGRAPHY_USE_TENSORRT_RTX says the other flavor: the builder sets Polygraphy's switch before importing it;
    if Polygraphy was already imported for the other flavor, the build stops with one line saying what to set."""
    from hyperstyle_trt.core.flavor import get_flavor

    fl = get_flavor()
    other = {"POLYGRAPHY_USE_TENSORRT_RTX": "0" if fl.is_rtx else "1"}
    build = f"""
        from pathlib import Path
        from hyperstyle_trt.engines.builder import BuildOptions, build_serialized
        print(len(build_serialized(Path({str(conv_onnx)!r}), BuildOptions(profile={profile!r}))))
    """
    ok = _run(build, other)
    assert ok.returncode == 0 and int(ok.stdout.strip()) > 1000, ok.stderr[-2000:]
    pre = _run("import polygraphy.backend.trt\n" + textwrap.dedent(build).replace("print(len(", "(("), other)
    wanted = "tensorrt_rtx" if fl.is_rtx else "tensorrt"
    assert pre.returncode != 0 and f"but engines are built with {wanted}" in pre.stderr, pre.stderr[-2000:]
    assert f"POLYGRAPHY_USE_TENSORRT_RTX={int(fl.is_rtx)}" in pre.stderr.strip().splitlines()[-1]


def test_rtx_targets_map_to_create_config_rtx():
    from hyperstyle_trt.core.flavor import get_flavor

    trt = get_flavor().module
    if not hasattr(trt, "ComputeCapability"):
        pytest.skip("compute-capability targets are TensorRT-RTX's")
    assert _compute_capabilities(trt, ()) == {}
    assert _compute_capabilities(trt, ("SM86", "SM120")) == {"compute_capabilities": [(8, 6), (12, 0)]}
    assert _compute_capabilities(trt, ("CURRENT",)) == {"use_gpu": True}
    for bad in (("SM90",), ("NONE",), ("CURRENT", "SM86")):
        with pytest.raises(HsError, match="unknown compute capability") as e:
            _compute_capabilities(trt, bad)
        assert "\n" not in str(e.value)


def test_full_tensorrt_config_path_runs_on_the_rtx_module(conv_onnx, profile, tmp_path):
    """The full-TensorRT branch (CreateConfig(tf32=True), timing cache loaded with ignore_mismatch=False, saved
    through EngineBytesFromNetwork and written atomically) driven by the TensorRT-RTX module, whose timing-cache
    calls are no-ops: the code runs, the cache file is written and read back, and the engine is unchanged."""
    from hyperstyle_trt.core.flavor import Flavor, get_flavor
    from hyperstyle_trt.engines.builder import build_serialized

    rtx = get_flavor()
    if not rtx.is_rtx:
        pytest.skip("full TensorRT is installed: test_builder.test_timing_cache runs this path for real")
    full_path = Flavor("tensorrt", rtx.module, rtx.version)
    tc = tmp_path / "tc" / "timing.cache"
    first = build_serialized(conv_onnx, BuildOptions(profile=profile), full_path, timing_cache=tc)
    assert tc.is_file() and tc.stat().st_size > 0
    assert not list(tc.parent.glob("*.lock")) and not list(tc.parent.glob(".*tmp"))  # nothing left beside it
    second = build_serialized(conv_onnx, BuildOptions(profile=profile), full_path, timing_cache=tc)
    assert first == second == build_serialized(conv_onnx, BuildOptions(profile=profile), rtx)
