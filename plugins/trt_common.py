"""Shared TensorRT IPluginV3 (V3One) machinery for the hyperstyle plugins; one code path for `tensorrt` and
`tensorrt_rtx`.

Nothing imports TensorRT at module load: `plugin_classes(op)` builds the plugin and creator classes lazily from the
flavor module (`core.flavor.get_flavor()`), once per (flavor, op). Each op module (`plugins/<op>/trt_plugin.py`)
provides an `OpImpl`: the output shape as dimension expressions, a concrete-shape check, and the enqueue call into
the Triton launcher. Everything that is not enqueue is exercised by CPU tests (parsing + engine building).

Fields: every spec attribute is an INT32 plugin field of one element; `get_fields_to_serialize()` writes all of them,
so `creator.create_plugin(name, plugin.get_fields_to_serialize(), phase)` gives an equal plugin (`plugin.attrs`).
Formats: LINEAR only; every tensor has one float type T (HALF or FLOAT), chosen by input 0.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from core.errors import HsError
from plugins.registry import OpSpec

# TensorRT DataType member name -> dtype name used by specs and launchers.
DTYPE_NAMES = {"HALF": "float16", "FLOAT": "float32"}


@dataclass(frozen=True)
class OpImpl:
    """What differs between ops. All callables take the resolved attribute dict first.

    output_exprs(trt, attrs, inputs, expr_builder) -> trt.DimsExprs   (inputs: DimsExprs per present input)
    check_shapes(attrs, shapes) -> None    (shapes: {input name: dims, -1 for runtime dims}; HsError if inconsistent)
    launch(attrs, ptrs, out_ptr, shapes, dtype, stream, workspace) -> None
                                           (device pointers, concrete shapes, workspace pointer; GPU only)
    workspace(attrs, shapes, dtype) -> int  (device bytes enqueue needs for these (maximum) shapes; pure Python:
                                           TensorRT asks at build time, also on CPU-only machines). None: 0.
    """

    spec: OpSpec
    output_exprs: Callable[..., Any]
    check_shapes: Callable[[Mapping[str, int], Mapping[str, tuple[int, ...]]], None]
    launch: Callable[..., None]
    workspace: Callable[[Mapping[str, int], Mapping[str, tuple[int, ...]], str], int] | None = None


def attrs_to_fields(trt, spec: OpSpec, attrs: Mapping[str, int]):
    """Resolved attributes -> PluginFieldCollection (one INT32 field per attribute, spec order)."""
    return trt.PluginFieldCollection([
        trt.PluginField(a.name, np.array([int(attrs[a.name])], dtype=np.int32), trt.PluginFieldType.INT32)
        for a in spec.attributes])


def fields_to_attrs(spec: OpSpec, fc) -> dict[str, int]:
    """PluginFieldCollection (or any iterable of fields with .name/.data) -> resolved attributes. Fields the spec
    does not know (e.g. a parser passing plugin_version) are ignored; missing ones take their defaults."""
    given = {}
    known = set(spec.attr_names)
    for f in fc if fc is not None else ():
        if f.name in known:
            data = np.asarray(f.data).reshape(-1)
            if data.size != 1:
                raise HsError(f"{spec.name}: field {f.name} must hold one integer, got {data.size} values")
            given[f.name] = int(data[0])
    return spec.resolve_attrs(given)


def field_names(trt, spec: OpSpec):
    """The creator's declared fields (names and INT32 type, no data)."""
    return trt.PluginFieldCollection([trt.PluginField(a.name, np.array([], dtype=np.int32),
                                                      trt.PluginFieldType.INT32) for a in spec.attributes])


def _dims(d) -> tuple[int, ...]:
    return tuple(int(v) for v in d)


def _build_classes(trt, impl: OpImpl):
    """Define the plugin and creator classes against the flavor module `trt`."""
    spec = impl.spec
    float_types = (trt.DataType.HALF, trt.DataType.FLOAT)

    class Plugin(trt.IPluginV3, trt.IPluginV3OneCore, trt.IPluginV3OneBuild, trt.IPluginV3OneRuntime):
        """IPluginV3 for one hyperstyle op; `attrs` holds the resolved attributes."""

        def __init__(self, attrs: Mapping[str, int], phase=None):
            trt.IPluginV3.__init__(self)
            trt.IPluginV3OneCore.__init__(self)
            trt.IPluginV3OneBuild.__init__(self)
            trt.IPluginV3OneRuntime.__init__(self)
            self.plugin_name = spec.name
            self.plugin_version = spec.version
            self.plugin_namespace = spec.namespace
            self.num_outputs = len(spec.outputs)
            self.attrs = spec.resolve_attrs(attrs)
            self.input_names = spec.input_names(self.attrs)
            self.phase = phase
            self.shapes: dict[str, tuple[int, ...]] = {}
            self.dtype: str | None = None

        # -- core / capability
        def get_capability_interface(self, type):  # noqa: A002 (TensorRT's parameter name)
            return self

        def clone(self):
            c = Plugin(self.attrs, self.phase)
            c.shapes, c.dtype = dict(self.shapes), self.dtype
            return c

        # -- build
        def get_output_data_types(self, input_types):
            return [input_types[0]] * len(spec.outputs)

        def get_output_shapes(self, inputs, shape_inputs, expr_builder):
            if len(inputs) != len(self.input_names):
                raise HsError(f"{spec.name}: expected inputs {list(self.input_names)} for {self.attrs}, "
                              f"got {len(inputs)} inputs")
            return [impl.output_exprs(trt, self.attrs, list(inputs), expr_builder)]

        def supports_format_combination(self, pos, in_out, num_inputs):
            desc = in_out[pos].desc  # V3: DynamicPluginTensorDesc; .format/.type live on .desc (TENSORRT.md 3.4)
            if desc.format != trt.TensorFormat.LINEAR:
                return False
            if pos == 0:
                return desc.type in float_types
            return desc.type == in_out[0].desc.type

        def configure_plugin(self, inp, out):
            self._set_shapes([d.desc for d in inp])

        def get_workspace_size(self, inp, out):
            if impl.workspace is None:
                return 0
            shapes = {n: _dims(d.max) for n, d in zip(self.input_names, inp)}  # the profile's largest shapes
            return int(impl.workspace(self.attrs, shapes, DTYPE_NAMES.get(inp[0].desc.type.name, "float32")))

        def get_valid_tactics(self):
            return []

        # -- runtime
        def on_shape_change(self, inp, out):
            self._set_shapes(list(inp))

        def set_tactic(self, tactic):
            pass

        def attach_to_context(self, context):
            return self.clone()

        def get_fields_to_serialize(self):
            return attrs_to_fields(trt, spec, self.attrs)

        def enqueue(self, input_desc, output_desc, inputs, outputs, workspace, stream):
            if self.dtype is None:  # a real check (python -O removes asserts): no shapes, no launch
                raise HsError(f"{spec.name}: enqueue before configure_plugin/on_shape_change (input shapes unknown)")
            ptrs = dict(zip(self.input_names, (int(p) for p in inputs)))
            impl.launch(self.attrs, ptrs, int(outputs[0]), self.shapes, self.dtype, int(stream), int(workspace))
            return 0

        def _set_shapes(self, descs: Sequence) -> None:
            self.shapes = {n: _dims(d.dims) for n, d in zip(self.input_names, descs)}
            self.dtype = DTYPE_NAMES.get(descs[0].type.name, descs[0].type.name)
            impl.check_shapes(self.attrs, self.shapes)

    Plugin.__name__ = Plugin.__qualname__ = f"{spec.name}Plugin"

    class Creator(trt.IPluginCreatorV3One):
        """IPluginCreatorV3One for one hyperstyle op (name/namespace/version from the spec)."""

        def __init__(self):
            trt.IPluginCreatorV3One.__init__(self)
            self.name = spec.name
            self.plugin_namespace = spec.namespace
            self.plugin_version = spec.version
            self.field_names = field_names(trt, spec)

        def create_plugin(self, name, fc, phase):
            return Plugin(fields_to_attrs(spec, fc), phase)

    Creator.__name__ = Creator.__qualname__ = f"{spec.name}Creator"
    return Plugin, Creator


@functools.lru_cache(maxsize=None)
def _classes_for(flavor_name: str, key: str):
    from core.flavor import get_flavor
    from plugins import trt_impls

    return _build_classes(get_flavor(flavor_name).module, trt_impls()[key])


def plugin_classes(key: str, flavor: str | None = None):
    """(PluginClass, CreatorClass) for op `key` ("mod_conv" | "to_rgb") on the given (default: detected) flavor."""
    from core.flavor import get_flavor

    return _classes_for(get_flavor(flavor).name, key)


_REGISTERED: dict[str, dict[str, Any]] = {}  # flavor name -> {op key: creator instance} (kept alive: TRT holds refs)


def register_plugins(flavor: str | None = None) -> dict[str, Any]:
    """Register every hyperstyle creator with the flavor's plugin registry, once per process (idempotent; also when
    another caller registered the same name/version/namespace first). Returns {op key: creator}."""
    from core.flavor import get_flavor
    from plugins import trt_impls

    fl = get_flavor(flavor)
    trt = fl.module
    done = _REGISTERED.setdefault(fl.name, {})
    registry = trt.get_plugin_registry()
    for key, impl in trt_impls().items():
        if key in done:
            continue
        spec = impl.spec
        existing = registry.get_creator(spec.name, spec.version, spec.namespace)
        if existing is not None:
            done[key] = existing
            continue
        creator = plugin_classes(key, fl.name)[1]()
        if not registry.register_creator(creator, spec.namespace):
            raise HsError(f"TensorRT refused to register plugin creator {spec.namespace}::{spec.name} "
                          f"v{spec.version}")
        done[key] = creator
    return dict(done)
