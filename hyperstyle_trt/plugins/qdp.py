"""Quickly Deployable Plugins with AOT implementations (full TensorRT >= 10.9, `tensorrt.plugin`): the engine embeds
the Triton-compiled PTX and runs without Python (docs/tensorrt_plugins.md §3). TensorRT-RTX rejects QDP creators: there,
use the IPluginV3 creators of plugins/trt_common.py.

A QDP has a fixed input list, while HsModConv / HsToRGB drop optional inputs by attribute, so each op is registered
once per input variant: `variant_name` = op name + "_<optional input>"... (`HsModConv`, `HsModConv_delta`,
`HsToRGB_delta_skip`). `qdp_node_op_type(node attrs)` gives the op type an ONNX node needs for the QDP route (plus
the node attributes `plugin_namespace="hyperstyle"` and `aot=1`; `to_qdp_model` rewrites a model so).

AOT kernel ABI (docs/tensorrt_plugins.md §3; the kernels' order): input pointers in node order, int32 scalars
(`EXTRAS`), output pointer; launch params are symbolic expressions of the input shapes. The pure functions (`variants`,
`kernel_args`, `aot_launch`) run anywhere and are tested on CPU; `register_qdp` needs full TensorRT.
"""

from __future__ import annotations

import inspect
import typing
import itertools
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.plugins.registry import DOMAIN, get_spec

EXTRAS = {"mod_conv": ("B", "H", "W", "Cin", "Cout"), "to_rgb": ("B", "H", "W", "Cin")}  # int32 scalars, in order

# ALIGNMENT: an AOT kernel cannot check its pointers at launch the way a Triton JIT launch specializes on them, so
# when Cin (and Cout) are multiples of 16 the kernels are compiled assuming 16-byte aligned tensor addresses (vector
# loads of x, W and delta). TensorRT allocates its tensors with 256-byte alignment and requires it of the I/O
# addresses bound with setTensorAddress; a misaligned address would fault loudly (misaligned address), not
# compute wrong values. Other channel counts compile without the assumption.


HIDDEN_PARAMS_SINCE = (3, 3)  # first Triton whose kernel entries carry the hidden scratch pointers


def aot_contract_problem(triton_version: str | None = None) -> str | None:
    """Why TensorRT's QDP AOT launch cannot match our Triton kernels with `triton_version` (default: the installed
    Triton), or None when it can. TensorRT launches an `aot_impl` kernel with exactly the arguments the plugin
    declares (input pointers, the SymInt32 extras, output pointers); Triton >= 3.3 compiles two more trailing
    pointer parameters (global_scratch, profile_scratch) into every kernel entry, which TensorRT does not pass, so
    the launch would hand the kernel parameters nobody wrote. NVIDIA's own QDP AOT sample pins triton==3.2.0
    (samples/python/quickly_deployable_plugins/requirements.txt); docs/tensorrt_plugins.md §3 cites the sources."""
    if triton_version is None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            triton_version = version("triton")
        except PackageNotFoundError:
            return "AOT kernels are compiled with Triton, which is not installed (pip install hyperstyle-trt[kernels])"
    parts = []
    for p in triton_version.split(".")[:2]:
        digits = "".join(itertools.takewhile(str.isdigit, p))
        parts.append(int(digits or 0))
    if tuple(parts) >= HIDDEN_PARAMS_SINCE:
        return (f"Triton {triton_version} appends 2 hidden scratch pointers to every kernel, which TensorRT's AOT "
                f"launcher does not pass (it matches Triton < 3.3, NVIDIA's sample pins 3.2.0); build the plugin "
                f"engines without --aot-plugins (Python plugins)")
    return None


def cdiv(a, b):
    """Ceil division on ints or symbolic expressions with + - //."""
    return (a + b - 1) // b


def variant_name(op: str, attrs: Mapping[str, int] | None = None) -> str:
    """QDP plugin name for the input variant that `attrs` select (`HsModConv_delta`)."""
    spec = get_spec(op)
    a = spec.resolve_attrs(attrs)
    return spec.name + "".join(f"_{t.name}" for t in spec.inputs if t.when is not None and t.present(a))


def variants(op: str) -> dict[str, tuple[str, ...]]:
    """{variant name: input names} over every attribute combination of op."""
    spec = get_spec(op)
    out = {}
    for combo in itertools.product(*(a.choices for a in spec.attributes)):
        a = dict(zip(spec.attr_names, combo))
        out.setdefault(variant_name(op, a), spec.input_names(a))
    return out


def kernel_args(op: str, attrs: Mapping[str, int]) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """AOT argument order: (input names, int32 scalar names, output names)."""
    spec = get_spec(op)
    return spec.input_names(spec.resolve_attrs(attrs)), EXTRAS[spec.key], tuple(t.name for t in spec.outputs)


def output_dims(op: str, attrs: Mapping[str, int], shapes: Mapping[str, Any]) -> tuple:
    """Output shape from input shapes; works on ints and on symbolic ShapeExprs."""
    spec = get_spec(op)
    x = shapes["x"]
    if spec.key == "mod_conv":
        if attrs["upsample"]:
            return (x[0], x[1] * 2, x[2] * 2, shapes["weight"][0])
        return (x[0], x[1], x[2], shapes["weight"][0])
    return (x[0], x[1], x[2], 3)


def _as_int(v, what: str) -> int:
    """A concrete int from an int or a constant ShapeExpr (`is_constant` / `constant_value`)."""
    if isinstance(v, int):
        return v
    if getattr(v, "is_constant", False):
        return int(v.constant_value)
    raise HsError(f"QDP AOT needs a static {what} (tiles are chosen per layer shape); only the batch may be dynamic")


@dataclass(frozen=True)
class AotLaunch:
    """One AOT launch: grid (3 exprs), block (ints), shared memory bytes, int32 extras (exprs), kernel (or None)."""

    grid: tuple
    block: tuple[int, int, int]
    shared_mem: int
    extras: tuple
    kernel: Any = None


def aot_launch(op: str, attrs: Mapping[str, int], dims: Mapping[str, Any], dtype: str, cdiv_fn: Callable = cdiv,
               compile: bool = True, arch: int = 90) -> AotLaunch:
    """Launch parameters for op's Triton kernel. dims: B,H,W,Cin[,Cout] as ints or ShapeExprs (only B may be
    symbolic); dtype "fp16" | "fp32". With compile=False (tests) block/shared come from the tile config only."""
    spec = get_spec(op)
    a = spec.resolve_attrs(attrs)
    h, w, cin = (_as_int(dims[k], k) for k in ("H", "W", "Cin"))
    extras = tuple(dims[k] for k in EXTRAS[spec.key])
    if spec.key == "mod_conv":
        from hyperstyle_trt.plugins.mod_conv import kernel as km

        cout = _as_int(dims["Cout"], "Cout")
        cfg = km.select_config(h, w, cin, cout, a["upsample"], dtype, arch)
        grid, cfg = km.launch_params(dims["B"], dims["H"], dims["W"], cin, cout, a["upsample"], cfg, cdiv_fn)
        aligned = cin % 16 == 0 and cout % 16 == 0  # with 16-byte aligned tensors (see ALIGNMENT): vector loads
        kern = km.aot_compile(a["upsample"], a["delta_mode"], a["demodulate"], dtype, cfg, arch,
                              aligned=aligned) if compile else None
    else:
        from hyperstyle_trt.plugins.to_rgb import kernel as kr

        cfg = kr.select_config(h, w, cin)
        grid, cfg = kr.launch_params(dims["B"], dims["H"], dims["W"], cin, a["has_skip"], cfg, cdiv_fn)
        kern = kr.aot_compile(a["has_skip"], a["delta_mode"], dtype, cfg, arch,
                              aligned=cin % 16 == 0) if compile else None
    block = kern.block if kern is not None else (32 * cfg.num_warps, 1, 1)
    return AotLaunch(tuple(grid), block, kern.shared_mem if kern is not None else 0, extras, kern)


def qdp_node_op_type(op: str, attrs: Mapping[str, int]) -> str:
    """Op type an ONNX plugin node needs on the QDP route (domain/`plugin_namespace` stay "hyperstyle")."""
    return variant_name(op, attrs)


def to_qdp_model(model):
    """Copy of an ONNX plugin model whose hyperstyle nodes take the QDP route: op type -> `variant_name`, plus
    attributes `plugin_namespace="hyperstyle"` and `aot=1` (strict AOT); `plugin_version` is dropped (QDPs are
    unversioned). Other nodes are unchanged."""
    import onnx
    import onnx.helper as oh

    out = onnx.ModelProto()
    out.CopyFrom(model)
    for node in out.graph.node:
        if node.domain != DOMAIN:
            continue
        spec = get_spec(node.op_type)
        attrs = {a.name: oh.get_attribute_value(a) for a in node.attribute}
        v = attrs.get("plugin_version", b"")
        version = v.decode() if isinstance(v, bytes) else str(v)
        if version != spec.version:  # e.g. a v1 (OIHW) graph: the QDP kernels are v2 (OHWI) and would read it wrong
            raise HsError(f"node {node.name or node.op_type}: {spec.name} plugin_version {version or 'missing'!r}, "
                          f"but this build implements version {spec.version}; re-export the graph")
        resolved = spec.resolve_attrs({k: v for k, v in attrs.items() if k in spec.attr_names})
        node.op_type = variant_name(spec.key, resolved)
        keep = [a for a in node.attribute if a.name not in ("plugin_version", "plugin_namespace", "aot")]
        del node.attribute[:]
        node.attribute.extend(keep + [oh.make_attribute("plugin_namespace", DOMAIN), oh.make_attribute("aot", 1)])
    return out


def qdp_model_bytes(onnx_path) -> bytes:
    """The serialized QDP-route model of a plugin graph file (`to_qdp_model`), with its external data left where it
    is: hand it to `OnnxParser.parse(blob, str(onnx_path))`, whose path argument locates the external weights."""
    import onnx

    return to_qdp_model(onnx.load(str(onnx_path), load_external_data=False)).SerializeToString()


KERNEL_SOURCES = ("plugins/_triton.py", "plugins/mod_conv/kernel.py", "plugins/to_rgb/kernel.py", "plugins/qdp.py")


def kernel_digest(arch: int, root=None) -> str:
    """What an AOT engine embeds besides the graph: the kernel sources (KERNEL_SOURCES under `root`, default the
    repository), the Triton version that compiles them and the target SM. Part of the engine cache key for AOT
    builds (a kernel change must not reuse an old engine)."""
    import hashlib
    from pathlib import Path

    root = Path(root) if root is not None else Path(__file__).resolve().parents[1]
    h = hashlib.sha256(f"sm_{arch}".encode())
    try:
        import triton

        h.update(f"triton {triton.__version__}".encode())
    except ImportError:
        h.update(b"no triton")
    for rel in KERNEL_SOURCES:
        h.update(rel.encode() + (root / rel).read_bytes())
    return h.hexdigest()


def _signature(trtp, inputs, attr_names, extra: list[inspect.Parameter], ret) -> inspect.Signature:
    p = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=trtp.TensorDesc) for n in inputs]
    p += [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=int) for n in attr_names]
    return inspect.Signature(p + extra, return_annotation=ret)


def define_variant(trtp, trt, op: str, name: str, inputs: tuple[str, ...], arch: int = 90) -> dict[str, Callable]:
    """Register one variant with `trtp` (the tensorrt.plugin module, or a stand-in in tests): register, autotune
    (FP16 or FP32 everywhere, LINEAR) and aot_impl. Returns the three functions."""
    spec = get_spec(op)
    pid = f"{DOMAIN}::{name}"
    n_io = len(inputs) + len(spec.outputs)
    pos = inspect.Parameter.POSITIONAL_OR_KEYWORD

    def desc(*args):
        shapes = {n: d.shape_expr for n, d in zip(inputs, args)}
        attrs = spec.resolve_attrs(dict(zip(spec.attr_names, args[len(inputs):])))
        return trtp.from_shape_expr(output_dims(op, attrs, shapes), dtype=args[0].dtype)

    def autotune(*args):
        return [trtp.AutoTuneCombination(", ".join(["FP16|FP32"] * n_io), "LINEAR")]

    def aot(*args):
        descs = dict(zip(inputs, args))
        attrs = spec.resolve_attrs(dict(zip(spec.attr_names, args[len(inputs):len(inputs) + len(spec.attributes)])))
        x = descs["x"].shape_expr
        dims = {"B": x[0], "H": x[1], "W": x[2], "Cin": x[3]}
        if "weight" in descs and spec.key == "mod_conv":
            dims["Cout"] = descs["weight"].shape_expr[0]
        dtype = "fp16" if descs["x"].dtype == trt.float16 else "fp32"
        la = aot_launch(op, attrs, dims, dtype, cdiv_fn=trtp.cdiv, arch=arch)
        params = trtp.KernelLaunchParams()
        params.grid_x, params.grid_y, params.grid_z = la.grid
        params.block_x, params.block_y, params.block_z = la.block
        params.shared_mem = la.shared_mem
        extra = trtp.SymIntExprs.from_tuple([trtp.SymInt32(e) for e in la.extras])
        return la.kernel.name, la.kernel.ptx, params, extra

    desc.__signature__ = _signature(trtp, inputs, spec.attr_names, [], trtp.TensorDesc)
    # TensorRT's validator accepts only AutoTuneCombination or List[AutoTuneCombination] here (a bare `list` fails)
    autotune.__signature__ = _signature(trtp, inputs, [], [inspect.Parameter("outputs", pos)],
                                        typing.List[trtp.AutoTuneCombination])
    aot.__signature__ = _signature(
        trtp, inputs, spec.attr_names,
        [inspect.Parameter("outputs", pos, annotation=tuple[trtp.TensorDesc]),
         inspect.Parameter("tactic", pos, annotation=int)],
        tuple[str | bytes, str | bytes, trtp.KernelLaunchParams, trtp.SymIntExprs])
    for fn, kind in ((desc, "desc"), (autotune, "autotune"), (aot, "aot_impl")):
        fn.__name__ = fn.__qualname__ = f"{name}_{kind}"
    trtp.register(pid)(desc)
    trtp.autotune(pid)(autotune)
    trtp.aot_impl(pid)(aot)
    return {"desc": desc, "autotune": autotune, "aot_impl": aot}


_DONE: set[tuple[int, str]] = set()  # (id of the tensorrt.plugin module, plugin id)


def register_qdp(arch: int = 90, trtp=None, trt=None) -> list[str]:
    """Register every variant of both ops as AOT QDPs (idempotent). Full TensorRT >= 10.9 only; HsError otherwise.
    `arch`: SM of the PTX target (PTX is JIT-compiled by the driver on newer SMs). Returns the plugin ids."""
    if trtp is None:
        from hyperstyle_trt.core.flavor import get_flavor

        fl = get_flavor()
        if fl.is_rtx:
            raise HsError("QDP/AOT plugins need full TensorRT (tensorrt.plugin); TensorRT-RTX accepts only "
                          "IPluginV3 creators: use plugins.register_plugins()")
        trt = fl.module
        try:
            import tensorrt.plugin as trtp
        except ImportError as e:
            raise HsError(f"tensorrt.plugin is not importable ({e}); QDP needs TensorRT >= 10.9") from None
        if not hasattr(trtp, "aot_impl"):
            raise HsError(f"TensorRT {fl.version} has no tensorrt.plugin.aot_impl; AOT QDPs need TensorRT >= 10.9")
    ids = []
    for op in ("mod_conv", "to_rgb"):
        for name, inputs in variants(op).items():
            pid = f"{DOMAIN}::{name}"
            if (id(trtp), pid) not in _DONE:
                define_variant(trtp, trt, op, name, inputs, arch)
                _DONE.add((id(trtp), pid))
            ids.append(pid)
    return ids
