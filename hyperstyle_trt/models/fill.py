"""The deterministic weight fill of tests/data/golden/README.md ("Fill scheme (exact)").

Every tensor's value depends only on its checkpoint key name and shape, so the filled model is the same whatever the
construction order. It serves two purposes: the golden verification, and the embedded default model (official
architecture, untrained weights: timing is faithful, images are not).

Keys use the checkpoint names: `hypernet.*`, `decoder.*`, `encoder.*`, plus `latent_avg`. Alias keys (the shared
hypernet tensors under `refinement_blocks.N.hypernet.*`) take the tensor of their canonical key.
"""

from __future__ import annotations

import math
import re
import zlib
from typing import Mapping

import torch
from torch import nn

DEFAULT_CONSTANTS: dict[str, float] = {
    "bn_weight_std": 0.1, "bn_bias_std": 0.1, "bn_mean_std": 0.1, "bn_var_absstd": 0.1, "prelu_mean": 0.25,
    "prelu_std": 0.05, "bias_std": 0.1, "mod_bias_mean": 1.0, "mod_bias_std": 0.1, "noise_strength_std": 0.1,
    "torgb_weight_std": 0.25, "hyper_w2_std": 0.025, "hyper_w1_std": 0.025, "hyper_b2_std": 0.02,
    "hyper_b1_std": 0.02, "out_head_gain": 0.25, "out_head_bias_std": 0.02, "latent_avg_std": 0.5,
}

_ALIAS = re.compile(r"^hypernet\.refinement_blocks\.\d+\.hypernet\.(w1|b1|w2|b2)$")
_TORGB_W = re.compile(r"^decoder\.(to_rgb1|to_rgbs\.\d+)\.conv\.weight$")
_HEAD = re.compile(r"^hypernet\.refinement_blocks\.\d+\.output\.1\.(weight|bias)$")
_LINEAR_W = re.compile(r"^(hypernet\.refinement_blocks\.\d+\.linear|encoder\.linear)\.weight$")


def canonical_key(key: str) -> str:
    """Alias `hypernet.refinement_blocks.N.hypernet.X` -> `hypernet.shared_weight_hypernet.X`."""
    m = _ALIAS.match(key)
    return f"hypernet.shared_weight_hypernet.{m.group(1)}" if m else key


def z(key: str, shape) -> torch.Tensor:
    g = torch.Generator().manual_seed(zlib.crc32(key.encode("utf-8")))
    return torch.randn(tuple(shape), generator=g, dtype=torch.float32)


def fill_rule(key: str, shape, keys: set[str]) -> str:
    """Name of the first matching rule (as in fill_checksums.json), or 'keep'."""
    prefix, _, leaf = key.rpartition(".")
    if leaf == "num_batches_tracked" or key.endswith((".blur.kernel", ".upsample.kernel")):
        return "keep"
    if key == "latent_avg":
        return "latent_avg"
    if f"{prefix}.running_var" in keys and leaf in ("weight", "bias", "running_mean", "running_var"):
        return f"bn.{leaf}"
    if prefix == "hypernet.shared_weight_hypernet":
        return f"hyper.{leaf}"
    if key.startswith("decoder."):
        if key.startswith("decoder.noises.noise_"):
            return "g.noise_buffer"
        if key.endswith(".modulation.bias"):
            return "g.modulation.bias"
        if key.endswith(".noise.weight"):
            return "g.noise_strength"
        if leaf == "bias":
            return "g.bias"
        if _TORGB_W.match(key):
            return "g.torgb.weight"
        return "g.equalized"
    if _HEAD.match(key):
        return f"head.output.{leaf}"
    if _LINEAR_W.match(key):
        return "equal_linear.weight"
    if leaf == "weight" and len(shape) == 1:
        return "prelu"
    if leaf == "weight" and len(shape) == 4:
        return "conv.weight"
    if leaf == "bias":
        return "bias"
    if leaf == "weight" and len(shape) == 2:
        return "linear.weight"  # not in the official fill (only the Separable variant has nn.Linear): z/sqrt(fan_in)
    raise KeyError(f"no fill rule for {key} {tuple(shape)}")


def fill_value(key: str, shape, keys: set[str], c: Mapping[str, float] = DEFAULT_CONSTANTS) -> torch.Tensor | None:
    """The filled float32 tensor for `key`, or None for 'keep' keys. Arithmetic exactly as the README writes it."""
    rule = fill_rule(key, shape, keys)
    if rule == "keep":
        return None
    t = z(key, shape)
    if rule == "latent_avg":
        return c["latent_avg_std"] * t
    if rule == "bn.weight":
        return 1.0 + c["bn_weight_std"] * t
    if rule == "bn.bias":
        return c["bn_bias_std"] * t
    if rule == "bn.running_mean":
        return c["bn_mean_std"] * t
    if rule == "bn.running_var":
        return 1.0 + c["bn_var_absstd"] * t.abs()
    if rule.startswith("hyper."):
        return c[f"hyper_{rule[6:]}_std"] * t
    if rule in ("g.noise_buffer", "g.equalized", "equal_linear.weight"):
        return t
    if rule == "g.modulation.bias":
        return c["mod_bias_mean"] + c["mod_bias_std"] * t
    if rule == "g.noise_strength":
        return c["noise_strength_std"] * t
    if rule in ("g.bias", "bias"):
        return c["bias_std"] * t
    if rule == "g.torgb.weight":
        return c["torgb_weight_std"] * t
    if rule == "head.output.weight":
        return (c["out_head_gain"] / math.sqrt(shape[1] * shape[2] * shape[3])) * t
    if rule == "head.output.bias":
        return c["out_head_bias_std"] * t
    if rule == "prelu":
        return c["prelu_mean"] + c["prelu_std"] * t
    if rule == "conv.weight":
        return t / math.sqrt(shape[1] * shape[2] * shape[3])
    if rule == "linear.weight":
        return t / math.sqrt(shape[1])
    raise AssertionError(rule)


@torch.no_grad()
def fill_module_(module: nn.Module, prefix: str, constants: Mapping[str, float] = DEFAULT_CONSTANTS) -> nn.Module:
    """Fill every parameter/buffer of `module` in place; `prefix` is its checkpoint prefix ('decoder.', ...).

    Tensors shared under several names (the hypernet aliases) are filled once, from their canonical key.
    """
    sd = module.state_dict(keep_vars=True)
    keys = {prefix + k for k in sd}
    done: set[int] = set()
    for k in sorted(sd, key=lambda k: canonical_key(prefix + k) != prefix + k):  # canonical names first
        t = sd[k]
        if id(t) in done:
            continue
        done.add(id(t))
        name = canonical_key(prefix + k)
        v = fill_value(name, tuple(t.shape), keys, constants)
        if v is not None:
            t.copy_(v)
    return module
