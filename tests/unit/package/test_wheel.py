"""The installable package: `pip wheel --no-deps .` gives one top-level name, `hyperstyle_trt`, and an install of that
wheel (a fresh venv that sees this venv's third-party packages but not the checkout) imports `Inverter` and runs every
console script's --help from a directory holding unrelated `models/`, `core/` and `runtime/` packages."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPTS = ("hs-export", "hs-invert", "hs-serve", "hs-bench")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                        str(out), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (whl,) = glob.glob(str(out / "*.whl"))
    return Path(whl)


def test_the_wheel_has_one_top_level_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert tops == {"hyperstyle_trt"}
    top_level = [n for n in names if n.endswith(".dist-info/top_level.txt")]
    if top_level:  # setuptools writes it; its content must agree
        assert zipfile.ZipFile(wheel).read(top_level[0]).decode().split() == ["hyperstyle_trt"]
    assert "hyperstyle_trt/plugins/mod_conv/spec.json" in names  # package data travels


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory, wheel) -> Path:
    """A new venv with the wheel installed; this venv's site-packages reach it through a plain path line (a .pth
    line adds the directory but does not run the .pth files inside it, so the editable install of the checkout
    stays invisible)."""
    venv = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "zz_project_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


@pytest.fixture
def user_dir(tmp_path) -> Path:
    """A user's working directory with packages named like our old top-level ones."""
    for name in ("models", "core", "runtime", "cli"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"USERS_OWN = {name!r}\n")
    return tmp_path


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def test_import_next_to_a_users_models_package(fresh_venv, user_dir):
    code = ("import hyperstyle_trt, models, core, runtime\n"
            "from hyperstyle_trt import Inverter\n"
            "assert models.USERS_OWN == 'models' and core.USERS_OWN == 'core' and runtime.USERS_OWN == 'runtime'\n"
            "assert 'site-packages' in hyperstyle_trt.__file__, hyperstyle_trt.__file__\n"
            "assert Inverter.__module__ == 'hyperstyle_trt.runtime.inverter'\n"
            "import hyperstyle_trt.models.stylegan2, hyperstyle_trt.cli.invert\n"
            "assert models.USERS_OWN == 'models'\n"
            "print(hyperstyle_trt.__file__)")
    r = subprocess.run([str(fresh_venv / "bin" / "python"), "-c", code], cwd=user_dir, capture_output=True,
                       text=True, timeout=300, env=_env())
    assert r.returncode == 0, r.stderr[-2000:]
    assert str(ROOT) not in r.stdout  # the wheel's copy, not the checkout


@pytest.mark.parametrize("script", SCRIPTS)
def test_console_script_help_next_to_a_users_models_package(fresh_venv, user_dir, script):
    r = subprocess.run([str(fresh_venv / "bin" / script), "--help"], cwd=user_dir, capture_output=True, text=True,
                       timeout=300, env=_env())
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Usage:" in r.stdout and "--help" in r.stdout
