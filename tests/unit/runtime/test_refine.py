"""runtime.refine: Δ folded into weights, domain adaptation onto another generator, HyperStyle -> PTI refinement;
runtime.interpolate: frames between two inversions. Tiny config on the embedded default weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.models.images import uint8_to_unit
from hyperstyle_trt.models.stylegan2 import Generator
from hyperstyle_trt.runtime.refine import (adapt_generator, fold_deltas, generator_from_state_dict,
                                           load_generator_weights, refine_pti, render, resize_square)


def _photo(size: int) -> torch.Tensor:
    """The astronaut's face region (a real photo shipped in scikit-image) as [1,3,size,size] in [-1,1]."""
    import skimage.data

    from PIL import Image

    a = skimage.data.astronaut()[20:260, 100:340]
    a = np.asarray(Image.fromarray(a).resize((size, size), Image.Resampling.LANCZOS))
    return uint8_to_unit(torch.from_numpy(a.copy()))[None]


@pytest.fixture(scope="module")
def inverted(tiny_model):
    x = resize_square(_photo(128), tiny_model.cfg.hypernet.input_size)
    return x, tiny_model.invert(x, n_iters=3)


# fp32 on CPU: G(codes, Δ) computes scale * (W (1+Δ) s); the folded generator scale * (W(1+Δ)) s: a different
# rounding order, so the two renders (images ~[-1,1]) differ by fp32 rounding only.
FOLD_TOL = 2e-6


def test_folded_generator_renders_the_inversion(tiny_model, inverted):
    _, res = inverted
    sd = fold_deltas(tiny_model.decoder.state_dict(), {k: v[0] for k, v in res.deltas.items()})
    changed = [k for k in sd if not torch.equal(sd[k], tiny_model.decoder.state_dict()[k])]
    assert sorted(changed) == sorted(f"{k}.conv.weight" for k in res.deltas)
    g = generator_from_state_dict(tiny_model.cfg.generator, sd)
    y = render(g, res.codes)
    assert (y - res.image).abs().max().item() < FOLD_TOL
    # without the fold the plain generator renders something else (Δ matters here)
    assert (render(tiny_model.decoder, res.codes) - res.image).abs().max().item() > 1e-2


def test_adapt_onto_another_generator(tiny_model, inverted, tmp_path):
    """A second generator of the same architecture (different weights): folding Δ into it equals running it with
    Δ as an input; with the source generator itself it is the plain inversion."""
    _, res = inverted
    cfg = tiny_model.cfg.generator
    torch.manual_seed(3)
    other = Generator(cfg).eval()
    path = tmp_path / "g_ema.pt"
    torch.save({"g_ema": other.state_dict(), "latent_avg": torch.zeros(cfg.style_dim)}, path)
    from hyperstyle_trt.runtime.refine import load_target_generator

    target = load_target_generator(path, cfg)
    d0 = {k: v[0] for k, v in res.deltas.items()}
    got = render(adapt_generator(target, d0, cfg), res.codes)
    want = render(other, res.codes, {k: v for k, v in res.deltas.items()})
    # relative to the image range: a randomly initialised generator renders values well outside [-1,1]
    assert (got - want).abs().max().item() < FOLD_TOL * max(1.0, want.abs().max().item())
    assert (got - res.image).abs().max().item() > 1e-2  # a different generator: a different image
    same = render(adapt_generator(tiny_model.decoder, d0, cfg), res.codes)
    assert (same - res.image).abs().max().item() < FOLD_TOL


def test_fold_rejects_mismatched_deltas(tiny_model):
    sd = tiny_model.decoder.state_dict()
    with pytest.raises(HsError, match="no weight"):
        fold_deltas(sd, {"convs.99": torch.zeros(1)})
    with pytest.raises(HsError, match="same architecture"):
        fold_deltas(sd, {"conv1": torch.zeros(3, 3, 3, 3)})


def test_pti_refinement_lowers_lpips(tiny_model, inverted):
    """HyperStyle -> PTI: 3 Adam steps (PTI's lr 3e-4, LPIPS-alex + L2) from the folded HyperStyle generator lower
    the LPIPS of the reconstruction against the photo (hs-invert --refine-steps 5 is checked in
    tests/unit/cli/test_invert.py)."""
    from hyperstyle_trt.models.lpips import LPIPS

    x, res = inverted
    target = _photo(128)
    folded = fold_deltas(tiny_model.decoder.state_dict(), {k: v[0] for k, v in res.deltas.items()})
    g = generator_from_state_dict(tiny_model.cfg.generator, folded)
    before_sd = {k: v.clone() for k, v in g.state_dict().items()}
    lp = LPIPS("alex")
    rr = refine_pti(g, res.codes, target, 3, lp)
    assert len(rr.lpips) == 3 and len(rr.l2) == 3
    with torch.no_grad():
        before = lp(render(g, res.codes), target).item()
        after = lp(rr.image, target).item()
    assert abs(before - rr.lpips[0]) < 1e-5  # step 0 is measured before any update
    assert after < before - 1e-3, (before, after)
    assert rr.l2[-1] < rr.l2[0]
    assert all(torch.equal(v, g.state_dict()[k]) for k, v in before_sd.items())  # the argument is unchanged
    assert (rr.image - render(rr.generator, res.codes)).abs().max().item() == 0
    with pytest.raises(HsError, match="refine-steps"):
        refine_pti(g, res.codes, target, -1, lp)


def test_saved_weights_round_trip(tiny_model, inverted, tmp_path):
    pytest.importorskip("safetensors", reason="safetensors (the invert extra) is not installed")
    from hyperstyle_trt.runtime.edit import save_weights

    _, res = inverted
    sd = fold_deltas(tiny_model.decoder.state_dict(), {k: v[0] for k, v in res.deltas.items()})
    p = save_weights(sd, tmp_path / "generator.safetensors")
    g = load_generator_weights(p, tiny_model.cfg.generator)
    assert (render(g, res.codes) - res.image).abs().max().item() < FOLD_TOL
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 20)
    with pytest.raises(HsError, match="not a safetensors file"):
        load_generator_weights(junk, tiny_model.cfg.generator)
    with pytest.raises(HsError, match="not found"):
        load_generator_weights(tmp_path / "missing.safetensors", tiny_model.cfg.generator)


def test_interpolation_ends_are_the_inversions():
    """Frames between two photos through the Inverter: frame 0 and frame n-1 are the two inversions, the middle
    frame is G at the blended codes and Δ."""
    from hyperstyle_trt.runtime import Inverter
    from hyperstyle_trt.runtime.interpolate import blend_weights, interpolate, to_uint8_frames, write_gif

    inv = Inverter.from_checkpoint(None, config="tiny", executor="torch", device="cpu", max_batch=2)
    a = _photo(64)
    b = torch.flip(a, dims=[3])  # the mirrored photo: a different image
    res = inv.invert(torch.cat([a, b]), n_iters=2, copy=True)
    frames = interpolate(inv, res, 0, 1, n_frames=3)
    assert frames.shape == (3, 3, 128, 128)
    assert (frames[0] - res.images[0]).abs().max().item() < 1e-5
    assert (frames[2] - res.images[1]).abs().max().item() < 1e-5
    mid = ((res.codes[0] + res.codes[1]) / 2)[None]
    from hyperstyle_trt.models.checkpoint import build_model

    m = build_model("tiny", quiet=True)
    want = m.decoder(mid, {k: (v[0:1] + v[1:2]) / 2 for k, v in res.deltas.items()})
    assert (frames[1] - want).abs().max().item() < 1e-5
    assert (frames[1] - frames[0]).abs().max().item() > 1e-2
    assert blend_weights(5).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    with pytest.raises(HsError, match="at least 2 frames"):
        blend_weights(1)
    with pytest.raises(HsError, match="out of range"):
        interpolate(inv, res, 0, 5)
    import tempfile
    from pathlib import Path

    from PIL import Image

    with tempfile.TemporaryDirectory() as d:
        gif = write_gif(to_uint8_frames(frames), Path(d) / "ab.gif")
        with Image.open(gif) as im:
            assert im.n_frames == 4 and im.size == (128, 128)  # a -> mid -> b -> mid (bounce)


def test_tune_pivot_early_stop_makes_no_update(tiny_model, inverted):
    """PTI's early stop (the baseline's LPIPS <= 0.06, here any LPIPS): checked before the first update, so the
    generator is unchanged, one step is recorded and `stopped` says why."""
    from hyperstyle_trt.models.lpips import LPIPS
    from hyperstyle_trt.runtime.refine import tune_pivot

    x, res = inverted
    g = generator_from_state_dict(tiny_model.cfg.generator, tiny_model.decoder.state_dict())
    before = {k: v.clone() for k, v in g.state_dict().items()}
    seen = []
    rr = tune_pivot(g, res.codes, _photo(128), 5, LPIPS("alex"), side=64, stop_lpips=10.0,
                    on_step=lambda step, loss: seen.append(step))
    assert rr.stopped and len(rr.lpips) == len(rr.step_s) == 1 and seen == []
    assert rr.generator is g and all(torch.equal(v, before[k]) for k, v in g.state_dict().items())
    assert not any(p.requires_grad for p in g.parameters())
