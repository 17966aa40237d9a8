"""Our modules' state_dicts have every official key with its official shape (official_keys.json), and nothing else."""

import json
import pytest
import torch

from hyperstyle_trt.core.config import HypernetConfig, get_config
from hyperstyle_trt.models.hyperstyle import HyperStyle
from hyperstyle_trt.models.hypernet import SharedWeightsHyperNetResNet
from hyperstyle_trt.models.stylegan2 import Generator

@pytest.fixture(scope="module")
def official(official_keys_path):
    return json.loads(official_keys_path.read_text())


@pytest.fixture(scope="module")
def meta_model():
    with torch.device("meta"):
        return HyperStyle(get_config("ffhq1024"))


def _ours(module, prefix):
    return {prefix + k: list(v.shape) for k, v in module.state_dict().items()}


def _theirs(section):
    return {e["key"]: e["shape"] for e in section["keys"]}


def test_hyperstyle_state_dict_keys_and_shapes(official, meta_model):
    ours = {**_ours(meta_model.hypernet, "hypernet."), **_ours(meta_model.decoder, "decoder.")}
    theirs = _theirs(official["hyperstyle_state_dict"])
    assert len(theirs) == 600
    assert sorted(set(theirs) - set(ours)) == [] and sorted(set(ours) - set(theirs)) == []
    assert {k: v for k, v in ours.items() if theirs[k] != v} == {}


def test_w_encoder_state_dict_keys_and_shapes(official, meta_model):
    ours = {**_ours(meta_model.w_encoder, "encoder."), **_ours(meta_model.decoder, "decoder.")}
    assert ours == _theirs(official["w_encoder_state_dict"])


def test_g_ema_keys_and_shapes(official, meta_model):
    assert _ours(meta_model.decoder, "") == _theirs(official["g_ema"])


def test_alias_groups_are_one_parameter(official, meta_model):
    sd = meta_model.state_dict(keep_vars=True)
    for group in official["hyperstyle_state_dict"]["alias_groups"]:
        tensors = {id(sd[k]) for k in group}
        assert len(tensors) == 1, group


def test_parameter_counts_match_spec(official, meta_model):
    def unique(m):
        return sum(p.numel() for p in m.parameters())  # parameters() deduplicates shared tensors

    assert unique(meta_model.hypernet) == 332_664_896
    assert unique(meta_model.decoder) == 30_370_060
    assert unique(meta_model.w_encoder) == 31_212_736
    assert official["hyperstyle_state_dict"]["numel_unique_parameters"] == 363_034_956


@pytest.mark.parametrize("variant,layers,count", [
    ("SharedWeightsHyperNetResNetSeparable", (0, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 23, 24),
     215_123_456),
    ("SharedWeightsHyperNetResNet", tuple(range(26)), 369_205_472),
])
def test_variant_parameter_counts_match_spec(variant, layers, count):
    cfg = get_config("ffhq1024").replace(hypernet=HypernetConfig(encoder_type=variant, layers_to_tune=layers))
    with torch.device("meta"):
        h = SharedWeightsHyperNetResNet(cfg)
    assert sum(p.numel() for p in h.parameters()) == count


def test_noise_buffer_shapes():
    # 17 noise buffers, (1,1,r,r) with r = 4, 8, 8, ..., 1024, 1024
    with torch.device("meta"):
        g = Generator(get_config("ffhq1024").generator)
    shapes = [tuple(getattr(g.noises, f"noise_{i}").shape) for i in range(17)]
    assert shapes[0] == (1, 1, 4, 4) and shapes[1] == shapes[2] == (1, 1, 8, 8) and shapes[16] == (1, 1, 1024, 1024)
