"""Test-only checkpoint writers (moved out of hyperstyle_trt.models.checkpoint: only tests write checkpoints):
a model in the official `hyperstyle_ffhq.pt` / `faces_w_encoder.pt` layouts, for the loaders to read back."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from hyperstyle_trt.core.atomic import atomic_path
from hyperstyle_trt.models.hyperstyle import HyperStyle


def save_checkpoint(model: HyperStyle, path, opts: Mapping | None = None) -> None:
    """Write `model` in the official hyperstyle_ffhq.pt layout (aliases included), atomically."""
    sd = {f"hypernet.{k}": v for k, v in model.hypernet.state_dict().items()}
    sd.update({f"decoder.{k}": v for k, v in model.decoder.state_dict().items()})
    h = model.cfg.hypernet
    o = {"encoder_type": h.encoder_type, "layers_to_tune": ",".join(map(str, h.layers_to_tune)), "input_nc": 6,
         "output_size": model.cfg.generator.size, "n_hypernet_outputs": model.cfg.generator.n_layers,
         "dataset_type": "ffhq_hypernet", **(opts or {})}
    if not model.cfg.name.startswith("ffhq"):
        o["hs_config"] = model.cfg.name
    atomic_torch_save({"state_dict": sd, "opts": o, "latent_avg": model.latent_avg.clone(), "global_step": 0,
                       "best_val_loss": None}, path)


def save_w_encoder_checkpoint(model: HyperStyle, path) -> None:
    """Write `model`'s W encoder (+ decoder) in the official faces_w_encoder.pt layout, atomically."""
    sd = {f"encoder.{k}": v for k, v in model.w_encoder.state_dict().items()}
    sd.update({f"decoder.{k}": v for k, v in model.decoder.state_dict().items()})
    atomic_torch_save({"state_dict": sd, "opts": {"encoder_type": "WEncoder"}, "latent_avg": model.latent_avg[0]}, path)


def atomic_torch_save(obj, path) -> None:
    """torch.save through core.atomic: the file at `path` is complete or absent."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
