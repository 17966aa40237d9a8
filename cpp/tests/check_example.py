"""CTest: the invert_images example end to end (two 80x80 PNGs, resized by PIL, and one 64x64 raw RGB file, in one
batch; a missing file reported while the others finish), its PNG outputs compared BITWISE with runtime.Inverter on
the same uint8 batch; --help prints the usage and exits 0, an unknown option is one error line and exit 2.

    python check_example.py <invert_images binary> <scratch dir>
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from hyperstyle_trt.runtime import Inverter

T = 2


def main() -> int:
    exe, work = sys.argv[1], Path(sys.argv[2])
    for flag in ("--help", "-h"):
        h = subprocess.run([exe, flag], capture_output=True, text=True, timeout=60)
        if h.returncode != 0 or not h.stdout.startswith("usage: invert_images") or "--out DIR" not in h.stdout:
            print(f"FAIL: {flag}: expected the usage on stdout and exit 0, got {h.returncode}: {h.stderr!r}")
            return 1
    h = subprocess.run([exe, "--bogus"], capture_output=True, text=True, timeout=60)
    if h.returncode != 2 or not h.stderr.startswith("error: unknown option --bogus\nusage: invert_images"):
        print(f"FAIL: --bogus: expected one error line, the usage and exit 2, got {h.returncode}: {h.stderr!r}")
        return 1
    shutil.rmtree(work, ignore_errors=True)
    (work / "in").mkdir(parents=True)
    rng = np.random.default_rng(0)
    pngs = []
    for i in range(2):
        p = work / "in" / f"face{i}.png"
        Image.fromarray(rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)).save(p)
        pngs.append(p)
    raw = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    (work / "in" / "frame.rgb").write_bytes(raw.tobytes())
    files = [*map(str, pngs), str(work / "in" / "frame.rgb"), str(work / "in" / "missing.png")]
    cmd = [exe, "--config", "tiny", "--executor", "torch", "--device", "cpu", "--iters", str(T), "--out",
           str(work / "out"), *files]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=280)
    print(p.stdout, p.stderr, sep="\n")
    if p.returncode != 1 or "error: input image not found:" not in p.stderr or "inverted 3 of 4" not in p.stdout:
        print(f"FAIL: expected exit 1 with the missing file reported and 3 of 4 inverted, got {p.returncode}")
        return 1

    def resized(path):
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB").resize((64, 64), Image.BILINEAR))

    batch = np.stack([resized(pngs[0]), resized(pngs[1]), raw])
    ref = Inverter.from_checkpoint(None, config="tiny", executor="torch", device="cpu", precision="fp32")
    want = ref.invert(batch, n_iters=T).to_uint8()
    for i, name in enumerate(["face0", "face1", "frame"]):
        with Image.open(work / "out" / f"{name}.png") as im:
            got = np.asarray(im.convert("RGB"))
        if got.shape != want[i].shape or not np.array_equal(got, want[i]):
            diff = np.abs(got.astype(int) - want[i].astype(int)).max() if got.shape == want[i].shape else "shape"
            print(f"FAIL: {name}.png differs from the Python Inverter (max |diff| {diff})")
            return 1
        print(f"{name}.png: bitwise equal to the Python Inverter {want[i].shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
