"""Load the per-op `spec.json` files into frozen dataclasses: the single source of truth for plugin name, namespace,
version, attributes, inputs (some conditional on attributes) and outputs.

The exporter (plugins.onnx_export), the TensorRT creators (plugins/*/trt_plugin.py), the QDP definitions
(plugins.qdp), the ONNX reference ops (plugins.onnx_ref) and the tests all read these objects. Nothing here imports
torch, onnx or TensorRT.

    spec = get_spec("mod_conv")              # or get_spec("HsModConv")
    attrs = spec.resolve_attrs(upsample=1)   # {"upsample": 1, "delta_mode": 0, "demodulate": 1}
    spec.input_names(attrs)                  # ("x", "style", "weight", "noise", "bias")
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from hyperstyle_trt.core.errors import HsError

PLUGIN_DIR = Path(__file__).resolve().parent
OPS = ("mod_conv", "to_rgb")  # folder names under plugins/, each with a spec.json
DOMAIN = "hyperstyle"

Dim = str | int  # a symbolic dim name ("B", "Cin", "H/2") or a literal size


@dataclass(frozen=True)
class AttrSpec:
    """An integer attribute: ONNX INT attribute, TensorRT INT32 plugin field, QDP int."""

    name: str
    type: str  # only "int" in version 1
    default: int
    choices: tuple[int, ...]
    doc: str = ""


@dataclass(frozen=True)
class TensorSpec:
    """One input or output. `when` = (attr, allowed values): the tensor exists only for those values.
    `shape_by` = (attr, ((value, shape), ...)): the shape depends on an attribute; otherwise `shape`."""

    name: str
    dtype: str  # a type-constraint name ("T") or a concrete dtype
    shape: tuple[Dim, ...] = ()
    when: tuple[str, tuple[int, ...]] | None = None
    shape_by: tuple[str, tuple[tuple[int, tuple[Dim, ...]], ...]] | None = None
    doc: str = ""

    def present(self, attrs: Mapping[str, int]) -> bool:
        """Whether this tensor is part of the node for resolved `attrs`."""
        return self.when is None or attrs[self.when[0]] in self.when[1]

    def shape_for(self, attrs: Mapping[str, int]) -> tuple[Dim, ...]:
        """Symbolic shape for resolved `attrs` (the tensor must be present)."""
        if self.shape_by is None:
            return self.shape
        attr, table = self.shape_by
        return dict(table)[attrs[attr]]


@dataclass(frozen=True)
class OpSpec:
    """A plugin op (see plugins/README.md). `key` is the folder name (`mod_conv`), `name` the ONNX op type /
    TensorRT creator name (`HsModConv`), `torch_op` the torch custom op (`hyperstyle::mod_conv`)."""

    key: str
    name: str
    namespace: str
    version: str
    torch_op: str
    layout: str
    summary: str
    type_constraints: tuple[tuple[str, tuple[str, ...]], ...]
    attributes: tuple[AttrSpec, ...]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def attr_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.attributes)

    @property
    def defaults(self) -> dict[str, int]:
        return {a.name: a.default for a in self.attributes}

    def attr(self, name: str) -> AttrSpec:
        for a in self.attributes:
            if a.name == name:
                return a
        raise HsError(f"{self.name} has no attribute {name!r}; expected one of {self.attr_names}")

    def resolve_attrs(self, attrs: Mapping[str, int] | None = None, **kw: int) -> dict[str, int]:
        """Defaults overlaid with `attrs`/`kw`, validated: unknown names or values outside `choices` raise HsError.
        Returns every attribute, in spec order, as a plain int."""
        given = {**(attrs or {}), **kw}
        unknown = sorted(set(given) - set(self.attr_names))
        if unknown:
            raise HsError(f"{self.name}: unknown attribute(s) {unknown}; expected {list(self.attr_names)}")
        out = {}
        for a in self.attributes:
            v = given.get(a.name, a.default)
            if isinstance(v, bool) or not isinstance(v, int):
                try:
                    v = int(v)
                except (TypeError, ValueError):
                    raise HsError(f"{self.name}: attribute {a.name} must be an int, got {v!r}") from None
            if v not in a.choices:
                raise HsError(f"{self.name}: attribute {a.name}={v} not in {list(a.choices)}")
            out[a.name] = int(v)
        return out

    def present_inputs(self, attrs: Mapping[str, int]) -> tuple[TensorSpec, ...]:
        """The inputs of a node with these (resolved) attributes, in node order."""
        return tuple(t for t in self.inputs if t.present(attrs))

    def input_names(self, attrs: Mapping[str, int]) -> tuple[str, ...]:
        return tuple(t.name for t in self.present_inputs(attrs))

    def input_shapes(self, attrs: Mapping[str, int]) -> dict[str, tuple[Dim, ...]]:
        """{present input name: symbolic shape}."""
        return {t.name: t.shape_for(attrs) for t in self.present_inputs(attrs)}

    def fingerprint(self) -> str:
        """Hash of the semantic content (name, namespace, torch op, layout, types, attributes, inputs, outputs;
        not the version, docs or summary). A change of it must come with a version bump (tests/unit/plugins)."""
        def strip(o):
            if isinstance(o, dict):
                return {k: strip(v) for k, v in o.items() if k not in ("doc", "summary", "version")}
            if isinstance(o, (list, tuple)):
                return [strip(v) for v in o]
            return o

        blob = json.dumps(strip(dataclasses.asdict(self)), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def dtypes(self, constraint: str = "T") -> tuple[str, ...]:
        return dict(self.type_constraints)[constraint]

    def bind_dims(self, attrs: Mapping[str, int], shapes: Mapping[str, Sequence[int]]) -> dict[str, int]:
        """Match concrete input shapes against the symbolic ones: {symbol: size}. A size of -1 (a runtime dim at
        build time) binds nothing. HsError on a missing input, a wrong rank, a wrong literal or two sizes for one
        symbol. A symbol `X/2` binds X to twice the size."""
        env: dict[str, int] = {}
        for t in self.present_inputs(attrs):
            if t.name not in shapes:
                raise HsError(f"{self.name}: missing input {t.name!r} for attributes {dict(attrs)}")
            sym, got = t.shape_for(attrs), tuple(int(v) for v in shapes[t.name])
            if len(sym) != len(got):
                raise HsError(f"{self.name}: input {t.name} must have rank {len(sym)} {list(sym)}, got {list(got)}")
            for s, v in zip(sym, got):
                if v < 0:
                    continue
                if isinstance(s, int):
                    if v != s:
                        raise HsError(f"{self.name}: input {t.name} {list(got)} does not match {list(sym)}")
                    continue
                name, v = (s[:-2], 2 * v) if s.endswith("/2") else (s, v)
                if env.setdefault(name, v) != v:
                    raise HsError(f"{self.name}: input {t.name} {list(got)} gives {name}={v}, "
                                  f"but another input gives {name}={env[name]}")
        return env


def _shape(raw) -> tuple[Dim, ...]:
    return tuple(d if isinstance(d, int) else str(d) for d in raw)


def _tensor(d: dict) -> TensorSpec:
    when = None
    if "when" in d:
        when = (d["when"]["attr"], tuple(int(v) for v in d["when"]["in"]))
    shape_by = None
    if "shape_by" in d:
        sb = d["shape_by"]
        shape_by = (sb["attr"], tuple((int(k), _shape(v)) for k, v in sorted(sb["shapes"].items())))
    return TensorSpec(name=d["name"], dtype=d["dtype"], shape=_shape(d.get("shape", ())), when=when,
                      shape_by=shape_by, doc=d.get("doc", ""))


def parse_spec(key: str, raw: Mapping) -> OpSpec:
    """Build an OpSpec from a spec.json dict; checks that attribute references resolve (HsError otherwise)."""
    try:
        attrs = tuple(AttrSpec(a["name"], a["type"], int(a["default"]), tuple(int(c) for c in a["choices"]),
                               a.get("doc", "")) for a in raw["attributes"])
        spec = OpSpec(key=key, name=raw["name"], namespace=raw["namespace"], version=str(raw["version"]),
                      torch_op=raw["torch_op"], layout=raw["layout"], summary=raw.get("summary", ""),
                      type_constraints=tuple((k, tuple(v)) for k, v in raw["type_constraints"].items()),
                      attributes=attrs, inputs=tuple(_tensor(t) for t in raw["inputs"]),
                      outputs=tuple(_tensor(t) for t in raw["outputs"]))
    except KeyError as e:
        raise HsError(f"plugin spec {key!r} lacks field {e.args[0]!r}") from None
    names = set(spec.attr_names)
    for a in spec.attributes:
        if a.type != "int" or a.default not in a.choices:
            raise HsError(f"plugin spec {key!r}: attribute {a.name} must be an int whose default is in its choices")
    for t in spec.inputs + spec.outputs:
        for ref in (t.when, t.shape_by):
            if ref is not None and ref[0] not in names:
                raise HsError(f"plugin spec {key!r}: tensor {t.name} refers to unknown attribute {ref[0]!r}")
    return spec


@functools.lru_cache(maxsize=None)
def load_spec(key: str) -> OpSpec:
    """Read plugins/<key>/spec.json."""
    path = PLUGIN_DIR / key / "spec.json"
    if not path.is_file():
        raise HsError(f"no plugin spec at {path}; known ops: {list(OPS)}")
    return parse_spec(key, json.loads(path.read_text()))


def all_specs() -> tuple[OpSpec, ...]:
    """Every plugin op, in OPS order."""
    return tuple(load_spec(k) for k in OPS)


def get_spec(name: str) -> OpSpec:
    """Look an op up by folder key (`mod_conv`), op type (`HsModConv`) or torch op (`hyperstyle::mod_conv`)."""
    for s in all_specs():
        if name in (s.key, s.name, s.torch_op):
            return s
    raise HsError(f"unknown plugin op {name!r}; expected one of {[s.name for s in all_specs()]}")


# What an IPluginV3 engine freezes at build time besides the spec: formats, output shapes and the workspace size
# (plugins/trt_common.py, plugins/<op>/trt_plugin.py, and the strategy module that sizes HsModConv's workspace).
_BUILD_FILES = ("trt_common.py", "{key}/trt_plugin.py", "mod_conv/strategy.py")


def build_digest(names) -> str:
    """sha256 (16 hex) of the plugin code whose behaviour an engine records at build time, for the ops `names`
    (op types or keys). Part of the engine cache key: an engine built by other plugin code is rebuilt, not reused."""
    import hashlib

    keys = sorted({get_spec(n).key for n in names})
    h = hashlib.sha256()
    for rel in sorted({f.format(key=k) for k in keys for f in _BUILD_FILES}):
        h.update(rel.encode() + b"\0" + (PLUGIN_DIR / rel).read_bytes())
    return h.hexdigest()[:16]
