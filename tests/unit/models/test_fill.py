"""Our fill implementation against fill_checksums.json (rule per key; sha256 of the float32 bytes)."""

import hashlib
import json

import pytest
import torch

from hyperstyle_trt.core.config import get_config
from hyperstyle_trt.models.fill import canonical_key, fill_rule, fill_value
from hyperstyle_trt.models.hyperstyle import HyperStyle


@pytest.fixture(scope="module")
def checksums(golden_dir):
    return json.loads((golden_dir / "fill_checksums.json").read_text())["keys"]


@pytest.fixture(scope="module")
def all_keys():
    with torch.device("meta"):
        m = HyperStyle(get_config("ffhq1024"))
    keys = {f"hypernet.{k}": tuple(v.shape) for k, v in m.hypernet.state_dict().items()}
    keys.update({f"decoder.{k}": tuple(v.shape) for k, v in m.decoder.state_dict().items()})
    keys.update({f"encoder.{k}": tuple(v.shape) for k, v in m.w_encoder.state_dict().items()})
    keys["latent_avg"] = (18, 512)
    return keys


def test_every_canonical_key_has_the_official_rule(checksums, all_keys):
    canon = {canonical_key(k) for k in all_keys}
    assert canon == set(checksums)
    names = set(all_keys)
    wrong = {k: (fill_rule(k, all_keys[k], names), v["rule"]) for k, v in checksums.items()
             if fill_rule(k, all_keys[k], names) != v["rule"]}
    assert wrong == {}


def _sha(t):
    return hashlib.sha256(t.contiguous().numpy().astype("<f4").tobytes()).hexdigest()


def test_small_tensors_bitwise(checksums, all_keys):
    names = set(all_keys)
    small = [k for k, v in checksums.items() if v["rule"] != "keep" and 0 < torch.Size(v["shape"]).numel() <= 300_000]
    assert len(small) > 700
    bad = [k for k in small if _sha(fill_value(k, all_keys[k], names)) != checksums[k]["sha256"]]
    assert bad == []


@pytest.mark.slow
def test_all_tensors_bitwise(checksums, all_keys):
    names = set(all_keys)
    bad = []
    for k, v in checksums.items():
        if v["rule"] == "keep":
            continue
        t = fill_value(k, all_keys[k], names)
        if _sha(t) != v["sha256"] or abs(t.double().sum().item() - v["sum"]) > 1e-6 * max(1.0, abs(v["sum"])):
            bad.append(k)
    assert bad == []
