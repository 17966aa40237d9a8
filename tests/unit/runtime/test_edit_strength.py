"""The demo's edit strength shows (issue #21 item 8): on the embedded default (tiny here; FFHQ-1024 measured once,
docs/invert.md "The demo's edit strength"), a seed-0 direction changes the inversion of a real photo (matplotlib's
grace_hopper, FFHQ-aligned) more the stronger it is, and at the strengths `make demo-invert` uses the mean absolute
change is many grey levels, not a change nobody can see."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from hyperstyle_trt.runtime.invert import seed_direction

REPO = Path(__file__).resolve().parents[3]
VISIBLE = 10.0  # mean |change| in uint8 levels over every pixel and channel: plainly visible on a 256 px tile


def _demo_strengths() -> list[float]:
    """The strengths of `make demo-invert`'s --edit seed:0:S1,S2."""
    m = re.search(r"--edit seed:0:([-0-9.,]+)", (REPO / "Makefile").read_text())
    assert m, "demo-invert has no --edit seed:0:..."
    return [float(v) for v in m.group(1).split(",")]


@pytest.fixture(scope="module")
def inverted(inv):
    import matplotlib.cbook

    from hyperstyle_trt.runtime.align import Aligner, load_photo

    photo = load_photo(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    (al,) = Aligner(output_size=64).align(photo)
    return inv.invert(al.image[None].copy(), n_iters=2, copy=True)


def _change(inv, res, strengths) -> np.ndarray:
    """Mean |edit - inversion| in uint8 levels per strength."""
    from hyperstyle_trt.models.images import unit_to_uint8

    d = seed_direction(0, inv.cfg.generator.style_dim)
    imgs = inv.edit(res, d, list(strengths))  # [K,1,3,S,S]
    base = res.to_uint8()[0].astype(np.int16)
    u8 = unit_to_uint8(imgs[:, 0]).cpu().numpy().astype(np.int16)  # [K,S,S,3]
    return np.abs(u8 - base).mean(axis=(1, 2, 3))


def test_change_grows_with_strength(inv, inverted):
    c = _change(inv, inverted, [-1, 1, -3, 3, -10, 10]).reshape(3, 2).mean(1)  # |s| = 1, 3, 10
    assert c[0] < c[1] < c[2], c


def test_demo_strengths_change_the_image_visibly(inv, inverted):
    strengths = _demo_strengths()
    assert len(strengths) == 2 and strengths[0] < 0 < strengths[1]
    c = _change(inv, inverted, strengths)
    assert (c > VISIBLE).all(), dict(zip(strengths, c))
