"""Shared runtime fixtures: distinct tiny-config images, the reference inversion, one tiny torch Inverter."""

import numpy as np
import pytest
import torch

S = 64  # tiny hypernet input size


@pytest.fixture(scope="session")
def images_u8() -> np.ndarray:
    """Three distinct uint8 HWC images [3,64,64,3] (smooth gradients + noise, different per image)."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:S, 0:S] / (S - 1)
    out = []
    for k in range(3):
        base = np.stack([xx * (k + 1) % 1.0, yy, (xx + yy) / 2 * (1 - 0.3 * k)], -1) * 255
        out.append(np.clip(base + rng.normal(0, 20, base.shape), 0, 255))
    return np.stack(out).astype(np.uint8)


@pytest.fixture(scope="session")
def images_f(images_u8) -> torch.Tensor:
    """The same images as float [3,3,64,64] in [-1,1] (v/127.5 - 1, what the Inverter makes of uint8)."""
    return (torch.from_numpy(images_u8).permute(0, 3, 1, 2).float() / 127.5 - 1).contiguous()


@pytest.fixture(scope="session")
def ref5(tiny_model, images_f):
    """HyperStyle.invert at B=3, T=5 with every iteration (T=1 is iterations[1] / iteration_deltas[0])."""
    return tiny_model.invert(images_f, n_iters=5, return_iterations=True, return_iteration_deltas=True)


@pytest.fixture(scope="session")
def inv():
    """The tiny torch Inverter on CPU (fp32, reference ops), max_batch=4, built by the public call."""
    from hyperstyle_trt.runtime import Inverter

    return Inverter.from_checkpoint(None, config="tiny", executor="torch", device="cpu", precision="fp32",
                                    max_batch=4)
