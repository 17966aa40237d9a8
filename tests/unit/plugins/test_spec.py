"""plugins/*/spec.json load into the registry and agree with the contract in plugins/README.md."""

import json

import pytest

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.plugins.registry import DOMAIN, all_specs, get_spec, load_spec, parse_spec, PLUGIN_DIR


def test_both_specs_load_with_contract_names():
    specs = {s.key: s for s in all_specs()}
    assert set(specs) == {"mod_conv", "to_rgb"}
    assert specs["mod_conv"].name == "HsModConv" and specs["to_rgb"].name == "HsToRGB"
    for s in specs.values():
        assert s.namespace == DOMAIN == "hyperstyle"
        assert s.version == {"mod_conv": "2", "to_rgb": "1"}[s.key] and s.layout == "NHWC"
        assert s.dtypes("T") == ("float16", "float32")
        assert s.torch_op == f"hyperstyle::{s.key}"


def test_lookup_by_key_name_and_torch_op():
    assert get_spec("HsModConv") is get_spec("mod_conv") is get_spec("hyperstyle::mod_conv")
    with pytest.raises(HsError, match="unknown plugin op"):
        get_spec("HsNope")


@pytest.mark.parametrize("attrs, names", [
    ({}, ("x", "style", "weight", "noise", "bias")),
    ({"delta_mode": 1}, ("x", "style", "weight", "delta", "noise", "bias")),
    ({"delta_mode": 2, "upsample": 1}, ("x", "style", "weight", "delta", "noise", "bias")),
])
def test_mod_conv_inputs_follow_delta_mode(attrs, names):
    s = get_spec("mod_conv")
    a = s.resolve_attrs(attrs)
    assert s.input_names(a) == names
    if "delta" in names:
        assert len(s.input_shapes(a)["delta"]) == (5 if a["delta_mode"] == 1 else 3)


@pytest.mark.parametrize("attrs, names", [
    ({}, ("x", "style", "weight", "bias")),
    ({"delta_mode": 1, "has_skip": 1}, ("x", "style", "weight", "delta", "bias", "skip")),
    ({"has_skip": 1}, ("x", "style", "weight", "bias", "skip")),
])
def test_to_rgb_inputs_follow_attributes(attrs, names):
    s = get_spec("to_rgb")
    assert s.input_names(s.resolve_attrs(attrs)) == names


def test_resolve_attrs_defaults_and_errors():
    s = get_spec("mod_conv")
    assert s.resolve_attrs() == {"upsample": 0, "delta_mode": 0, "demodulate": 1}
    with pytest.raises(HsError, match="not in"):
        s.resolve_attrs(delta_mode=3)
    with pytest.raises(HsError, match="unknown attribute"):
        s.resolve_attrs(has_skip=1)
    with pytest.raises(HsError, match="not in"):
        get_spec("to_rgb").resolve_attrs(delta_mode=2)  # per-channel is the full delta for a 1x1 conv


def test_bind_dims_checks_consistency():
    s = get_spec("to_rgb")
    a = s.resolve_attrs(has_skip=1)
    shapes = {"x": (2, 8, 8, 16), "style": (2, 16), "weight": (3, 16), "bias": (3,), "skip": (2, 4, 4, 3)}
    assert s.bind_dims(a, shapes) == {"B": 2, "H": 8, "W": 8, "Cin": 16}
    assert s.bind_dims(a, {**shapes, "x": (-1, 8, 8, 16), "style": (-1, 16), "skip": (-1, 4, 4, 3)})["Cin"] == 16
    with pytest.raises(HsError, match="Cin"):
        s.bind_dims(a, {**shapes, "style": (2, 15)})
    with pytest.raises(HsError, match="rank"):
        s.bind_dims(a, {**shapes, "bias": (1, 3)})
    with pytest.raises(HsError, match="H="):
        s.bind_dims(a, {**shapes, "skip": (2, 3, 4, 3)})
    with pytest.raises(HsError, match="missing input"):
        s.bind_dims(a, {k: v for k, v in shapes.items() if k != "skip"})


def test_spec_file_errors_are_hs_errors(tmp_path):
    raw = json.loads((PLUGIN_DIR / "mod_conv" / "spec.json").read_text())
    bad = dict(raw, inputs=raw["inputs"] + [{"name": "z", "dtype": "T", "when": {"attr": "nope", "in": [1]}}])
    with pytest.raises(HsError, match="unknown attribute 'nope'"):
        parse_spec("mod_conv", bad)
    with pytest.raises(HsError, match="lacks field 'namespace'"):
        parse_spec("mod_conv", {k: v for k, v in raw.items() if k != "namespace"})
    with pytest.raises(HsError, match="no plugin spec"):
        load_spec("no_such_op")


def test_spec_objects_are_frozen():
    s = get_spec("mod_conv")
    with pytest.raises(AttributeError):
        s.version = "2"


# (op, version) -> semantic fingerprint. A spec change that fails here needs a version bump (and a changelog line in
# plugins/<op>/README.md), then a new row; engines built against the old version must not silently load the new op.
FINGERPRINTS = {("mod_conv", "1"): "e9b67aa8b2ea9255", ("mod_conv", "2"): "5a036d4e3998a9d4",  # v2: OHWI W/delta
                ("to_rgb", "1"): "8386c6d89c856648"}


def test_semantic_changes_bump_the_version():
    for s in all_specs():
        assert (s.key, s.version) in FINGERPRINTS, f"record the fingerprint of {s.name} v{s.version}"
        assert s.fingerprint() == FINGERPRINTS[(s.key, s.version)], \
            f"{s.name} changed semantically without a version bump (now {s.fingerprint()})"


def test_fingerprint_ignores_docs_but_not_semantics():
    raw = json.loads((PLUGIN_DIR / "to_rgb" / "spec.json").read_text())
    base = parse_spec("to_rgb", raw).fingerprint()
    assert parse_spec("to_rgb", dict(raw, summary="other words")).fingerprint() == base
    attrs = [dict(a, default=1) if a["name"] == "has_skip" else a for a in raw["attributes"]]
    assert parse_spec("to_rgb", dict(raw, attributes=attrs)).fingerprint() != base


def test_importing_plugins_needs_no_tensorrt():
    import subprocess
    import sys

    mods = ("registry", "trt_common", "qdp", "onnx_export", "onnx_ref", "mod_conv.trt_plugin", "to_rgb.trt_plugin")
    code = ("import sys, importlib; import hyperstyle_trt.plugins as plugins; "
            f"[importlib.import_module('hyperstyle_trt.plugins.' + m) for m in {mods!r}]; plugins.trt_impls(); "
            "bad = [m for m in sys.modules "
            "if m.split('.')[0] in ('tensorrt', 'tensorrt_rtx', 'tensorrt_rtx_bindings')]; "
            "assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(PLUGIN_DIR.parents[1]))
    assert r.returncode == 0, r.stderr[-2000:]
