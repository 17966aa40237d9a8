"""Shared TensorRT IPluginV3 (V3One) machinery for the hyperstyle plugins; one code path for `tensorrt` and
`tensorrt_rtx`.

Nothing imports TensorRT at module load: `plugin_classes(op)` builds the plugin and creator classes lazily from the
flavor module (`core.flavor.get_flavor()`), once per (flavor, op). Each op module (`plugins/<op>/trt_plugin.py`)
provides an `OpImpl`: the output shape as dimension expressions, a concrete-shape check, and the enqueue call into
the Triton launcher. Everything that is not enqueue is exercised by CPU tests (parsing + engine building).

Fields: every spec attribute is an INT32 plugin field of one element; `get_fields_to_serialize()` writes all of them,
so `creator.create_plugin(name, plugin.get_fields_to_serialize(), phase)` gives an equal plugin (`plugin.attrs`).
TensorRT keeps raw pointers into the arrays behind a field collection, so every collection made here owns its
arrays (`int32_fields`) and the plugin / creator holds the collection it hands TensorRT (tests: test_trt_fields.py).
Formats: LINEAR only; every tensor has one float type T (HALF or FLOAT), chosen by input 0.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.core.precision import PRECISIONS
from hyperstyle_trt.plugins.registry import OpSpec

# TensorRT DataType member name ("HALF" | "FLOAT") -> the dtype name specs and launchers use, from core.precision.
DTYPE_NAMES = {p.trt: p.numpy for p in PRECISIONS.values()}


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


@functools.lru_cache(maxsize=None)
def _owning_collection(trt):
    """A subclass of the flavor's trt.PluginFieldCollection that can carry the objects its fields point into."""

    class OwningFieldCollection(trt.PluginFieldCollection):
        """trt.PluginFieldCollection that keeps its fields' buffers alive (`.buffers`) for as long as it lives."""

    return OwningFieldCollection


def int32_fields(trt, values: Mapping[str, int]):
    """{name: int} -> PluginFieldCollection of one-element INT32 fields that owns the memory they point into.

    A trt.PluginField keeps only a raw pointer to its array's data, and the collection copies those pointers, not
    the arrays: a collection built from temporary arrays points into freed memory (TensorRT then reads, and copies
    into the engine, whatever was allocated there next). Here every field points into one int32 array, `buffers[0]`,
    held by the returned collection; whoever hands the collection to TensorRT must hold the collection while
    TensorRT may read it. (Field names are copied by the bindings into strings they never free.)"""
    names = list(values)
    data = np.array([int(values[n]) for n in names], dtype=np.int32)  # [n_fields] int32, one per field
    fields = [trt.PluginField(n, data[i:i + 1], trt.PluginFieldType.INT32) for i, n in enumerate(names)]
    fc = _owning_collection(trt)(fields)
    fc.buffers = (data, tuple(fields))
    return fc


def attrs_to_fields(trt, spec: OpSpec, attrs: Mapping[str, int]):
    """Resolved attributes -> PluginFieldCollection (one INT32 field per attribute, spec order) that owns its
    buffers (`int32_fields`): valid for as long as the returned object is held."""
    return int32_fields(trt, {a.name: int(attrs[a.name]) for a in spec.attributes})


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
    """The creator's declared fields: names and INT32 type, no data (a null pointer, size 0: nothing in Python for
    TensorRT to point into). The creator holds the returned collection for its lifetime."""
    fields = []
    for a in spec.attributes:
        f = trt.PluginField(a.name)
        f.type = trt.PluginFieldType.INT32
        fields.append(f)
    fc = _owning_collection(trt)(fields)
    fc.buffers = (tuple(fields),)
    return fc


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
            desc = in_out[pos].desc  # V3: DynamicPluginTensorDesc: .format/.type on .desc (docs/tensorrt_plugins.md §2)
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
            # TensorRT keeps only a pointer to the returned collection (it reads it after this call returns), so the
            # plugin holds it, and its buffers, until the next call; rebuilt only when the attributes changed.
            key = tuple(self.attrs[n] for n in spec.attr_names)
            held = getattr(self, "_serialized", None)
            if held is None or held[0] != key:
                held = self._serialized = (key, attrs_to_fields(trt, spec, self.attrs))
            return held[1]

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
            self._field_names = field_names(trt, spec)  # held here: TensorRT keeps only a pointer to it
            self.field_names = self._field_names

        def create_plugin(self, name, fc, phase):
            return Plugin(fields_to_attrs(spec, fc), phase)

    Creator.__name__ = Creator.__qualname__ = f"{spec.name}Creator"
    return Plugin, Creator


@functools.lru_cache(maxsize=None)
def _classes_for(flavor_name: str, key: str):
    from hyperstyle_trt.core.flavor import get_flavor
    from hyperstyle_trt.plugins import trt_impls

    return _build_classes(get_flavor(flavor_name).module, trt_impls()[key])


def plugin_classes(key: str, flavor: str | None = None):
    """(PluginClass, CreatorClass) for op `key` ("mod_conv" | "to_rgb") on the given (default: detected) flavor."""
    from hyperstyle_trt.core.flavor import get_flavor

    return _classes_for(get_flavor(flavor).name, key)


_REGISTERED: dict[str, dict[str, Any]] = {}  # flavor name -> {op key: creator instance} (kept alive: TRT holds refs)


def register_plugins(flavor: str | None = None) -> dict[str, Any]:
    """Register every hyperstyle creator with the flavor's plugin registry, once per process (idempotent; also when
    another caller registered the same name/version/namespace first). Returns {op key: creator}."""
    from hyperstyle_trt.core.flavor import get_flavor
    from hyperstyle_trt.plugins import trt_impls

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
