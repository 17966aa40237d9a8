"""Inverter.edit and Inverter.fine_tuned_weights (torch executor, tiny config, CPU fp32).

Tolerances (fp32 max abs, observed on this CPU):
    edit renders vs the reference decoder with the same codes and Δ: observed 8.3e-7 -> gate IMG_TOL = 3e-6
    (as the inversion images, test_inverter.py); fine-tuned weights in the plain Generator vs the inversion:
    observed 7.2e-7 -> IMG_TOL
    strength 0, scalar (the same generator call at the same batch as the inversion): observed 0 -> gate 1e-6
    strength 0 inside a batch of K*B rows (another batch composition): observed 7.3e-7 -> gate 2e-6
"""

import numpy as np
import pytest
import torch

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.models.stylegan2 import Generator
from hyperstyle_trt.runtime.edit import load_direction, save_weights

IMG_TOL = 3e-6


def _err(a, b) -> float:
    return float((a.float() - b.float()).abs().max())


@pytest.fixture(scope="module")
def res(inv, images_u8):
    return inv.invert(images_u8[:2], n_iters=2, copy=True)  # B=2, T=2


@pytest.fixture(scope="module")
def direction():
    return torch.linspace(-1, 1, 32) * torch.tensor([1.0, -0.5]).repeat(16)  # [style_dim=32]


def test_strength_zero_returns_the_inversion(inv, res, direction):
    out = inv.edit(res, direction, 0.0)
    assert out.shape == (2, 3, 128, 128)
    assert _err(out, res.images) <= 1e-6


def test_several_strengths_batch_and_match_reference(inv, res, direction, tiny_model):
    out = inv.edit(res, direction, [0, 1.5])  # K*B = 4 rows: one generator call at max_batch=4
    assert out.shape == (2, 2, 3, 128, 128)
    assert _err(out[0], res.images) <= 2e-6
    with torch.no_grad():
        ref = tiny_model.decoder(res.codes + 1.5 * direction, res.deltas)  # Δ kept, codes moved
    assert _err(out[1], ref) <= IMG_TOL
    assert _err(out[1], out[0]) > 0.01  # the edit changed the images


def test_direction_forms(tmp_path, direction):
    np.save(tmp_path / "d.npy", direction[None].numpy())  # InterFaceGAN boundaries are [1,512]
    torch.save(direction.expand(10, 32).clone(), tmp_path / "d.pt")  # [n_latent, style_dim]
    want = direction.expand(10, 32)
    for d in (direction, direction.numpy(), tmp_path / "d.npy", str(tmp_path / "d.pt"), {"boundary": direction}):
        assert torch.equal(load_direction(d, 10, 32), want)


@pytest.mark.parametrize("bad,pattern", [
    (torch.zeros(31), r"\[32\] or \[10,32\]"),
    (torch.zeros(2, 32), r"\[32\] or \[10,32\]"),
    (torch.full((32,), float("nan")), "NaN or Inf"),
    (np.zeros(32, np.int64), "float array"),
    ("missing.npy", "not found"),
    ([1, 2], "float tensor/array or a .pt/.npy file"),
])
def test_bad_direction(bad, pattern):
    with pytest.raises(HsError, match=pattern) as e:
        load_direction(bad, 10, 32)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("strength", [[], float("nan"), "a", None])
def test_bad_strength(inv, res, direction, strength):
    with pytest.raises(HsError, match="strength"):
        inv.edit(res, direction, strength)


def test_edit_needs_an_inverter_result(inv, direction):
    with pytest.raises(HsError, match="InverterResult"):
        inv.edit({"images": 1}, direction, 1.0)


def test_fine_tuned_weights_render_the_inversion(inv, res, tiny_model, tmp_path):
    sd = inv.fine_tuned_weights(res, 1)
    orig = tiny_model.decoder.state_dict()
    tuned = {f"{s.name}.conv.weight" for s in tiny_model.cfg.tuned}
    assert set(sd) == set(orig)
    assert all(torch.equal(sd[k], orig[k]) for k in orig if k not in tuned)
    assert all(_err(sd[k], orig[k]) > 0 for k in tuned)
    g = Generator(tiny_model.cfg.generator).eval()
    g.load_state_dict(sd, strict=True)  # the plain rosinality Generator, no Δ input
    with torch.no_grad():
        img = g(res.codes[1:2])
    assert _err(img, res.images[1:2]) <= IMG_TOL
    assert _err(img, res.images[0:1]) > 0.05
    path = save_weights(sd, tmp_path / "image1.safetensors")
    from safetensors.torch import load_file

    back = load_file(str(path))
    assert set(back) == set(sd) and all(torch.equal(back[k], sd[k]) for k in sd)


@pytest.mark.parametrize("i", [2, -3, True, 0.0])
def test_fine_tuned_bad_index(inv, res, i):
    with pytest.raises(HsError, match="out of range"):
        inv.fine_tuned_weights(res, i)


@pytest.mark.parametrize("name,content,pattern", [
    ("age.pt", b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 9344\n",
     r"edit direction .*age\.pt is not a PyTorch checkpoint: it is a Git LFS pointer .*git lfs pull"),
    ("age.npy", b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 4224\n",
     r"age\.npy is not a \.npy array: it is a Git LFS pointer"),
    ("age.pt", b"", r"it is an empty file \(0 bytes\)"),
    ("age.pt", b"a smile direction\n", r"it is a text file \(starting 'a smile direction'\)"),
    ("age.pt", b"PK\x03\x04" + b"\x00" * 60, r"truncated or not a PyTorch checkpoint: a zip archive cut short"),
])
def test_direction_file_that_is_not_a_tensor(tmp_path, name, content, pattern):
    """read_direction_file (what hs-invert runs on every --edit before any model loads): one line saying what the
    file is; never the UnpicklingError traceback."""
    from hyperstyle_trt.runtime.edit import read_direction_file

    p = tmp_path / name
    p.write_bytes(content)
    for fn in (read_direction_file, lambda q: load_direction(q, 10, 32)):
        with pytest.raises(HsError, match=pattern) as e:
            fn(p)
        assert "\n" not in str(e.value)


def test_direction_file_holding_a_dict_of_two(tmp_path):
    from hyperstyle_trt.runtime.edit import read_direction_file

    torch.save({"a": torch.zeros(32), "b": torch.zeros(32)}, tmp_path / "two.pt")
    with pytest.raises(HsError, match="must hold one float tensor/array, got dict"):
        read_direction_file(tmp_path / "two.pt")
