"""benchmarks.baselines on the tiny config: the projector's loss falls; PTI's tuning changes the generator and
reconstructs better than its W-only stage; the schedule and the early stop behave as the officials'."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hyperstyle_trt.benchmarks import baselines as B
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.models.images import uint8_to_unit
from hyperstyle_trt.models.lpips import LPIPS
from hyperstyle_trt.runtime.refine import resize_square

try:
    VGG, ALEX = LPIPS("vgg"), LPIPS("alex")
except HsError as e:  # pragma: no cover - the bench extra is missing
    pytest.skip(f"no LPIPS weights: {e}", allow_module_level=True)


DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="module")
def target():
    """A real photo crop (scikit-image's astronaut, stored in tests/data/lpips_pairs.npz) at the tiny input size,
    [1,3,64,64] in [-1,1]: far from anything the untrained tiny generator makes, so the baselines have work to do."""
    a = np.load(DATA / "lpips_pairs.npz", allow_pickle=False)["astronaut_blur_a"]
    x = uint8_to_unit(torch.from_numpy(a))
    return resize_square(x, 64)


def _mse(a, b):
    return float((resize_square(a, b.shape[-1]) - b).pow(2).mean())


def test_schedule_matches_official_formula():
    cfg = B.ProjectorConfig()
    lr0, n0 = B._schedule(cfg, 0, 2.0)
    assert lr0 == 0.0 and n0 == pytest.approx(2.0 * 0.05)
    lr, _ = B._schedule(cfg, 50, 2.0)  # end of the 5 % ramp-up, before the ramp-down
    assert lr == pytest.approx(0.1)
    lr, n = B._schedule(cfg, 875, 2.0)  # half-way through the 25 % cosine ramp-down; past the noise ramp
    assert lr == pytest.approx(0.1 * (0.5 - 0.5 * math.cos(0.5 * math.pi)))
    assert n == 0.0


def test_projector_loss_decreases(tiny_model, target):
    """W+, the official schedule compressed to 10 steps (lr 0.1 peak, noise ramp, noise regularisation)."""
    cfg = B.ProjectorConfig(num_steps=10, w_avg_samples=500)
    seen = []
    res = B.project(tiny_model.decoder, target, VGG, cfg, on_step=lambda s, i, loss: seen.append(i))
    assert seen == list(range(10)) and res.steps_run == 10 and len(res.step_s) == 10
    n_lat, sd = tiny_model.cfg.generator.n_latent, tiny_model.cfg.generator.style_dim
    assert res.codes.shape == (1, n_lat, sd)
    assert not torch.equal(res.codes[:, 0], res.codes[:, -1])  # W+: one code per layer
    assert min(res.losses[-3:]) < 0.9 * res.losses[0], res.losses
    assert min(res.dists[-3:]) < res.dists[0], res.dists


def test_projector_w_space_and_partial_run(tiny_model, target):
    cfg = B.ProjectorConfig(num_steps=1000, w_avg_samples=500, space="w")
    res = B.project(tiny_model.decoder, target, VGG, cfg, steps=2)
    assert res.steps_run == 2 and res.full_steps == 1000 and len(res.losses) == 2
    assert torch.equal(res.codes[:, 0], res.codes[:, -1])  # W: one broadcast code
    with pytest.raises(HsError, match="steps must be in 1..1000"):
        B.project(tiny_model.decoder, target, VGG, cfg, steps=0)
    with pytest.raises(HsError, match="must be \\[B,3,S,S\\]"):
        B.project(tiny_model.decoder, target[:, :2], VGG, cfg, steps=1)


def test_pti_tuning_changes_generator_and_improves(tiny_model, target):
    """Official tuning settings (Adam 3e-4, L2 + LPIPS-AlexNet, stop at LPIPS <= 0.06) for 8 steps after a 3-step
    pivot: the copy changes, the caller's generator does not, and the reconstruction beats the W-only stage."""
    cfg = B.PTIConfig(w_steps=3, w_avg_samples=500, tune_steps=8)
    before = {k: v.clone() for k, v in tiny_model.decoder.state_dict().items()}
    res = B.pti(tiny_model.decoder, target, VGG, ALEX, cfg, keep_generators=True)
    assert all(torch.equal(v, before[k]) for k, v in tiny_model.decoder.state_dict().items())
    assert len(res.generators) == 1 and res.tune_steps_run == [8] and res.early_stopped == [False]
    gi = res.generators[0]
    params = dict(gi.named_parameters())
    diff = max((p - before[k]).abs().max().item() for k, p in params.items())
    assert diff > 1e-3
    with torch.no_grad():
        w_only = tiny_model.decoder(res.pivot.codes)  # the W-only stage: original generator at the pivot
        lp_w = ALEX(resize_square(w_only, 64), target).item()
        lp_t = ALEX(resize_square(res.images, 64), target).item()
    assert res.tune_l2[0][0] == pytest.approx(_mse(w_only, target), rel=1e-4)
    assert res.tune_lpips[0][0] == pytest.approx(lp_w, rel=1e-4)
    assert lp_w > 0.06  # a real photo: the early stop does not fire at the pivot
    assert _mse(res.images, target) < 0.9 * _mse(w_only, target)
    assert lp_t < lp_w


def test_pti_early_stop(tiny_model, target):
    cfg = B.PTIConfig(w_steps=1, w_avg_samples=500, tune_steps=5, lpips_threshold=10.0)
    res = B.pti(tiny_model.decoder, target, VGG, ALEX, cfg, keep_generators=True)
    assert res.tune_steps_run == [1] and res.early_stopped == [True]
    gi = res.generators[0]
    assert all(torch.equal(p, tiny_model.decoder.state_dict()[k]) for k, p in gi.state_dict().items())


def test_pti_tuning_is_the_refine_loop(tiny_model, target):
    """One PTI loop: the baseline's stage 2 for an image is runtime.refine's loop (hs-invert --refine-steps), so
    refine_pti from the same generator, pivot, target, settings and loss size gives the same histories and image."""
    from hyperstyle_trt.runtime.refine import refine_pti

    cfg = B.PTIConfig(w_steps=2, w_avg_samples=500, tune_steps=4)
    res = B.pti(tiny_model.decoder, target, VGG, ALEX, cfg)
    assert res.early_stopped == [False]
    rr = refine_pti(tiny_model.decoder, res.pivot.codes, target, 4, ALEX, lr=cfg.tune_lr, loss_size=64)
    assert rr.lpips == res.tune_lpips[0] and rr.l2 == res.tune_l2[0] and len(rr.step_s) == res.tune_steps_run[0]
    assert torch.equal(rr.image, res.images)
