"""TensorRT flavor selection and the libtensorrt_rtx.so fix (without it the RTX parser aborts with exit 134)."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hyperstyle_trt.core import flavor as F
from hyperstyle_trt.core.errors import HsError

ROOT = Path(__file__).resolve().parents[3]


def test_symlink_is_created_idempotently(tmp_path, monkeypatch):
    (tmp_path / "libtensorrt_rtx.so.1").write_bytes(b"\x7fELF")
    monkeypatch.setattr(F, "rtx_library_dir", lambda: tmp_path)
    link = F.ensure_rtx_library_symlink()
    assert link == tmp_path / "libtensorrt_rtx.so" and link.is_symlink()
    assert os.readlink(link) == "libtensorrt_rtx.so.1"
    assert F.ensure_rtx_library_symlink() == link
    assert sorted(p.name for p in tmp_path.iterdir()) == ["libtensorrt_rtx.so", "libtensorrt_rtx.so.1"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions, so a read-only dir can't be made")
def test_unwritable_library_dir_is_a_one_line_error(tmp_path, monkeypatch):
    (tmp_path / "libtensorrt_rtx.so.1").write_bytes(b"\x7fELF")
    tmp_path.chmod(0o555)
    monkeypatch.setattr(F, "rtx_library_dir", lambda: tmp_path)
    try:
        with pytest.raises(HsError, match="create it once by hand"):
            F.ensure_rtx_library_symlink()
    finally:
        tmp_path.chmod(0o755)


def test_no_rtx_library_is_not_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(F, "rtx_library_dir", lambda: tmp_path)
    assert F.ensure_rtx_library_symlink() is None


def test_unknown_flavor():
    with pytest.raises(HsError, match="unknown TensorRT flavor 'tensorrt9'"):
        F.get_flavor("tensorrt9")


def _private_rtx_libs(tmp_path) -> Path:
    """A private copy of the tensorrt_rtx_libs package without the libtensorrt_rtx.so link: __init__.py and the
    parser copied (the parser finds libtensorrt_rtx.so through RPATH $ORIGIN, so it must live here), the 230 MB
    runtime library symlinked. Returns the directory to put first on PYTHONPATH; the shared venv is not touched."""
    real = F.rtx_library_dir()
    pkg = tmp_path / "pkgs" / "tensorrt_rtx_libs"
    pkg.mkdir(parents=True)
    for f in real.iterdir():
        if f.name == "libtensorrt_rtx.so" or f.name == "__pycache__":
            continue
        if f.name == "libtensorrt_rtx.so.1":
            (pkg / f.name).symlink_to(f.resolve())
        else:
            shutil.copy2(f, pkg / f.name)
    assert not (pkg / "libtensorrt_rtx.so").exists()
    return pkg.parent


@pytest.mark.trt
@pytest.mark.skipif("tensorrt_rtx" not in F.available_flavors(), reason="needs tensorrt_rtx (the flavor with the bug)")
def test_plugin_graph_parses_after_the_link_was_removed(tmp_path):
    """A fresh process whose RTX wheel lacks the link (a private copy of the library package, first on PYTHONPATH):
    get_flavor() recreates it there and parsing a plugin node works (instead of `terminate called without an active
    exception`, exit 134). The shared venv's own link is left as it was."""
    shared_link = F.rtx_library_dir() / "libtensorrt_rtx.so"
    shared_before = shared_link.is_symlink()
    pkgs = _private_rtx_libs(tmp_path)
    link = pkgs / "tensorrt_rtx_libs" / "libtensorrt_rtx.so"
    code = textwrap.dedent(f"""
        import onnx
        from hyperstyle_trt.core.flavor import get_flavor, rtx_library_dir
        from hyperstyle_trt.plugins import register_plugins
        from tests.unit._helpers.onnx_models import single_node_model
        print("libs", rtx_library_dir())
        trt = get_flavor("tensorrt_rtx").module
        register_plugins()
        onnx.save(single_node_model("mod_conv"), {str(tmp_path / "m.onnx")!r})
        logger = trt.Logger(trt.Logger.ERROR)
        net = trt.Builder(logger).create_network(0)
        parser = trt.OnnxParser(net, logger)
        assert parser.parse_from_file({str(tmp_path / "m.onnx")!r}), parser.get_error(0)
        n = sum(net.get_layer(i).type == trt.LayerType.PLUGIN_V3 for i in range(net.num_layers))
        print("plugin layers", n)
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(pkgs), str(ROOT)]))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert f"libs {pkgs / 'tensorrt_rtx_libs'}" in r.stdout  # the child used the private copy
    assert "plugin layers 1" in r.stdout
    assert link.is_symlink() and os.readlink(link) == "libtensorrt_rtx.so.1"
    assert shared_link.is_symlink() == shared_before  # the shared venv was not touched
