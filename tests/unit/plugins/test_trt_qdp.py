"""plugins.qdp without full TensorRT: variant names, the AOT argument order against the Triton kernel signature,
symbolic launch parameters, and the register / autotune / aot_impl definitions driven through a stand-in
`tensorrt.plugin` module (the real one exists only in full TensorRT >= 10.9)."""

import inspect
import types
import typing

import pytest

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.plugins import qdp


def test_variants_cover_every_input_list():
    assert qdp.variants("mod_conv") == {"HsModConv": ("x", "style", "weight", "noise", "bias"),
                                        "HsModConv_delta": ("x", "style", "weight", "delta", "noise", "bias")}
    assert set(qdp.variants("to_rgb")) == {"HsToRGB", "HsToRGB_delta", "HsToRGB_skip", "HsToRGB_delta_skip"}
    assert qdp.qdp_node_op_type("to_rgb", {"has_skip": 1}) == "HsToRGB_skip"


# contract name -> the kernel's parameter name (positional match is what the AOT launcher relies on)
KERNEL_NAMES = {"x": "x_ptr", "style": "style_ptr", "weight": "w_ptr", "delta": "d_ptr", "noise": "noise_ptr",
                "bias": "bias_ptr", "skip": "skip_ptr", "y": "y_ptr", "rgb": "y_ptr"}


@pytest.mark.parametrize("op, attrs", [("mod_conv", {}), ("mod_conv", {"delta_mode": 1}),
                                       ("mod_conv", {"delta_mode": 2, "upsample": 1}), ("to_rgb", {}),
                                       ("to_rgb", {"delta_mode": 1, "has_skip": 1}), ("to_rgb", {"has_skip": 1})])
def test_aot_argument_order_matches_kernel(op, attrs):
    ins, extras, outs = qdp.kernel_args(op, attrs)
    if op == "mod_conv":
        from hyperstyle_trt.plugins.mod_conv import kernel

        fn = kernel.mod_conv_up_kernel if attrs.get("upsample") else kernel.mod_conv_kernel
    else:
        from hyperstyle_trt.plugins.to_rgb import kernel

        fn = kernel.to_rgb_kernel
    params = [p.name for p in fn.params if not p.is_constexpr]
    for name, attr in (("d_ptr", "delta_mode"), ("skip_ptr", "has_skip")):
        if name in params and not attrs.get(attr):
            params.remove(name)  # compiled as constexpr None: not in the entry
    assert params == [KERNEL_NAMES[n] for n in ins] + list(extras) + [KERNEL_NAMES[n] for n in outs]


def test_launch_params_are_shape_expressions_of_the_inputs():
    from hyperstyle_trt.plugins.mod_conv import kernel

    class Sym:  # a symbolic batch: records the expression built on it
        def __init__(self, s):
            self.s = s

        def __mul__(self, o):
            return Sym(f"({self.s}*{o})")

    b = Sym("B")
    la = qdp.aot_launch("mod_conv", {"upsample": 1}, dict(B=b, H=8, W=16, Cin=32, Cout=64), "fp16", compile=False)
    grid, cfg = kernel.launch_params(2, 8, 16, 32, 64, 1)
    assert la.grid[:2] == grid[:2] and la.grid[2] is b  # B is a grid dim, left symbolic
    assert la.extras == (b, 8, 16, 32, 64) and la.block == (32 * cfg.num_warps, 1, 1)
    with pytest.raises(HsError, match="static H"):
        qdp.aot_launch("mod_conv", {}, dict(B=2, H=Sym("H"), W=8, Cin=8, Cout=8), "fp16", compile=False)


class _FakeTrtp(types.SimpleNamespace):
    """Stand-in for tensorrt.plugin: records the decorated functions, builds plain objects."""

    def __init__(self):
        super().__init__(defs={}, TensorDesc=type("TensorDesc", (), {}),
                         KernelLaunchParams=type("KernelLaunchParams", (), {}),
                         SymIntExprs=type("SymIntExprs", (), {"from_tuple": staticmethod(tuple)}),
                         SymInt32=lambda e: ("i32", e), cdiv=qdp.cdiv,
                         AutoTuneCombination=lambda types, fmt: (types, fmt),
                         from_shape_expr=lambda shape, dtype: (tuple(shape), dtype))

    def _rec(self, kind):
        def deco_for(pid):
            def deco(fn):
                self.defs[(pid, kind)] = fn
                return fn
            return deco
        return deco_for

    def __getattr__(self, kind):  # register / autotune / aot_impl
        return self._rec(kind)


def _desc(trtp, shape, dtype="half"):
    d = trtp.TensorDesc()
    d.shape_expr, d.dtype = tuple(shape), dtype
    return d


def test_qdp_definitions_have_the_schema_tensorrt_validates():
    trtp = _FakeTrtp()
    ids = qdp.register_qdp(trtp=trtp, trt=types.SimpleNamespace(float16="half"))
    assert len(ids) == 6 and "hyperstyle::HsModConv_delta" in ids
    assert qdp.register_qdp(trtp=trtp, trt=None) == ids and len(trtp.defs) == 18  # idempotent
    reg = trtp.defs[("hyperstyle::HsModConv_delta", "register")]
    aot = trtp.defs[("hyperstyle::HsModConv_delta", "aot_impl")]
    sig = inspect.signature(reg)
    names = list(sig.parameters)
    assert names == ["x", "style", "weight", "delta", "noise", "bias", "upsample", "delta_mode", "demodulate"]
    assert all(p.annotation is trtp.TensorDesc for p in list(sig.parameters.values())[:6])
    assert all(p.annotation is int for p in list(sig.parameters.values())[6:])
    asig = inspect.signature(aot)
    assert list(asig.parameters) == names + ["outputs", "tactic"]  # every attribute, in order, then tactic
    ret = asig.return_annotation
    assert typing.get_origin(ret) is tuple and len(typing.get_args(ret)) == 4
    assert typing.get_args(ret)[2] is trtp.KernelLaunchParams
    out = reg(_desc(trtp, (2, 8, 8, 16)), _desc(trtp, (2, 16)), _desc(trtp, (24, 3, 3, 16)),
              _desc(trtp, (2, 24, 16)), _desc(trtp, (16, 16)), _desc(trtp, (24,)), 1, 2, 1)
    assert out == ((2, 16, 16, 24), "half")
    tune = trtp.defs[("hyperstyle::HsToRGB_skip", "autotune")]
    tret = inspect.signature(tune).return_annotation  # TensorRT's _validate_autotune: List[AutoTuneCombination]
    assert typing.get_origin(tret) is list and typing.get_args(tret) == (trtp.AutoTuneCombination,)
    assert tune(*[None] * 6) == [("FP16|FP32, FP16|FP32, FP16|FP32, FP16|FP32, FP16|FP32, FP16|FP32", "LINEAR")]


@pytest.mark.parametrize("op, name, attrs, shapes", [
    ("mod_conv", "HsModConv_delta", (0, 1, 1),
     [(2, 8, 8, 16), (2, 16), (16, 3, 3, 16), (2, 16, 3, 3, 16), (8, 8), (16,)]),
    ("to_rgb", "HsToRGB_skip", (1, 0), [(2, 8, 8, 16), (2, 16), (3, 16), (3,), (2, 4, 4, 3)]),
])
def test_aot_impl_compiles_ptx_with_the_declared_arguments(op, name, attrs, shapes):
    from hyperstyle_trt.plugins._triton import HIDDEN_TRAILING_PARAMS

    trtp = _FakeTrtp()
    qdp.define_variant(trtp, types.SimpleNamespace(float16="half"), op, name, qdp.variants(op)[name])
    aot = trtp.defs[(f"hyperstyle::{name}", "aot_impl")]
    kname, ptx, params, extra = aot(*[_desc(trtp, s) for s in shapes], *attrs, (None,), 0)
    assert f".entry {kname}(" in ptx
    entry = ptx[ptx.index(f".entry {kname}("):]
    spec_attrs = dict(zip(qdp.get_spec(op).attr_names, attrs))
    ins, extras, outs = qdp.kernel_args(op, spec_attrs)
    assert entry[:entry.index(")")].count(".param") == len(ins) + len(extras) + len(outs) + HIDDEN_TRAILING_PARAMS
    dims = {"B": 2, "H": 8, "W": 8, "Cin": 16, "Cout": 16}
    assert extra == tuple(("i32", dims[k]) for k in extras)
    assert params.grid_z == 2 and params.block_x % 32 == 0


@pytest.mark.trt
def test_register_qdp_refuses_tensorrt_rtx():
    from hyperstyle_trt.core.flavor import get_flavor

    if not get_flavor().is_rtx:
        pytest.skip("full TensorRT installed: this test checks the refusal on TensorRT-RTX only")
    with pytest.raises(HsError, match="full TensorRT"):
        qdp.register_qdp()


def test_to_qdp_model_renames_plugin_nodes_only():
    import onnx.helper as oh

    from tests.unit._helpers.onnx_models import chain_model

    m = chain_model("float16")
    q = qdp.to_qdp_model(m)
    assert [n.op_type for n in q.graph.node] == ["HsToRGB", "HsModConv_delta", "HsModConv_delta", "HsToRGB_skip"]
    for n in q.graph.node:
        a = {x.name: oh.get_attribute_value(x) for x in n.attribute}
        assert a["plugin_namespace"] == b"hyperstyle" and a["aot"] == 1 and "plugin_version" not in a
    assert [n.op_type for n in m.graph.node][1] == "HsModConv"  # the input model is untouched
