"""Layer table and presets against the official layer table (docs/architecture.md §2)."""

import dataclasses

import pytest

from hyperstyle_trt.core.config import get_config, layer_specs, GeneratorConfig
from hyperstyle_trt.core.errors import HsError

# (idx, module, res, Cin, Cout, k, latent row, noise) — the official table for FFHQ 1024
SPEC_TABLE = [
    (0, "conv1", 4, 512, 512, 3, 0, 0), (1, "to_rgb1", 4, 512, 3, 1, 1, None),
    (2, "convs.0", 8, 512, 512, 3, 1, 1), (3, "convs.1", 8, 512, 512, 3, 2, 2), (4, "to_rgbs.0", 8, 512, 3, 1, 3, None),
    (5, "convs.2", 16, 512, 512, 3, 3, 3), (6, "convs.3", 16, 512, 512, 3, 4, 4),
    (7, "to_rgbs.1", 16, 512, 3, 1, 5, None),
    (8, "convs.4", 32, 512, 512, 3, 5, 5), (9, "convs.5", 32, 512, 512, 3, 6, 6),
    (10, "to_rgbs.2", 32, 512, 3, 1, 7, None),
    (11, "convs.6", 64, 512, 512, 3, 7, 7), (12, "convs.7", 64, 512, 512, 3, 8, 8),
    (13, "to_rgbs.3", 64, 512, 3, 1, 9, None),
    (14, "convs.8", 128, 512, 256, 3, 9, 9), (15, "convs.9", 128, 256, 256, 3, 10, 10),
    (16, "to_rgbs.4", 128, 256, 3, 1, 11, None),
    (17, "convs.10", 256, 256, 128, 3, 11, 11), (18, "convs.11", 256, 128, 128, 3, 12, 12),
    (19, "to_rgbs.5", 256, 128, 3, 1, 13, None),
    (20, "convs.12", 512, 128, 64, 3, 13, 13), (21, "convs.13", 512, 64, 64, 3, 14, 14),
    (22, "to_rgbs.6", 512, 64, 3, 1, 15, None),
    (23, "convs.14", 1024, 64, 32, 3, 15, 15), (24, "convs.15", 1024, 32, 32, 3, 16, 16),
    (25, "to_rgbs.7", 1024, 32, 3, 1, 17, None),
]


def test_layer_table_matches_spec():
    got = [(s.idx, s.name, s.res, s.in_ch, s.out_ch, s.kernel, s.latent, s.noise)
           for s in get_config("ffhq1024").layers]
    assert got == SPEC_TABLE


def test_upsampling_layers_and_input_names():
    specs = get_config("ffhq1024").layers
    assert [s.idx for s in specs if s.kind == "up"] == [2, 5, 8, 11, 14, 17, 20, 23]
    assert specs[14].input_name == "delta_convs_8"


@pytest.mark.parametrize("name,n_layers,n_latent,n_tuned", [("ffhq1024", 26, 18, 17), ("ffhq512", 23, 16, 15),
                                                             ("ffhq256", 20, 14, 13), ("tiny", 17, 12, 11)])
def test_presets(name, n_layers, n_latent, n_tuned):
    cfg = get_config(name)
    assert cfg.generator.n_layers == n_layers
    assert cfg.generator.n_latent == n_latent
    assert len(cfg.tuned) == n_tuned


def test_deltas_total_official_count():
    # docs/architecture.md §2: deltas for one image total 23,583,744 floats
    total = sum(s.out_ch * s.in_ch * s.kernel**2 for s in get_config("ffhq1024").tuned)
    assert total == 23_583_744


def test_bad_configs_are_one_line_errors():
    with pytest.raises(HsError, match="unknown config 'ffhq2048'"):
        get_config("ffhq2048")
    with pytest.raises(HsError, match="power of two"):
        GeneratorConfig(size=1000)
    with pytest.raises(HsError, match="out of range"):
        get_config("ffhq256").replace(hypernet=get_config("ffhq1024").hypernet)


def test_configs_are_frozen():
    """Frozen dataclasses: assignment raises FrozenInstanceError (not an HsError: a programming error, not bad user
    input), for the top-level config and the nested ones; the value is unchanged."""
    cfg = get_config("tiny")
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'name'"):
        cfg.name = "x"
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'size'"):
        cfg.generator.size = 64
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'input_size'"):
        cfg.hypernet.input_size = 32
    assert cfg.name == "tiny" and get_config("tiny") == cfg
    assert layer_specs(cfg.generator) == cfg.layers
