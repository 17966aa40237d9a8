"""Real test photos that ship in wheels (no downloads): scikit-image's astronaut and matplotlib's grace_hopper."""

from __future__ import annotations

import numpy as np


def astronaut() -> np.ndarray:
    """[512,512,3] uint8 RGB (skimage.data.astronaut: one face, and a mission patch dlib also scores)."""
    import skimage.data

    return skimage.data.astronaut()


def grace_hopper() -> np.ndarray:
    """[600,512,3] uint8 RGB (matplotlib's sample grace_hopper.jpg, read through runtime.align.load_photo)."""
    import matplotlib.cbook

    from hyperstyle_trt.runtime.align import load_photo

    return load_photo(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def two_faces() -> np.ndarray:
    """[600,1064,3] uint8: the astronaut and a mirrored grace_hopper side by side on a grey canvas."""
    canvas = np.full((600, 1064, 3), 200, np.uint8)
    canvas[:512, :512] = astronaut()
    canvas[:, 552:] = grace_hopper()[:, ::-1]
    return canvas
