"""The `tensorrt` executor without executing an engine (no CUDA driver here; TensorRT-RTX refuses SM 9.x anyway).

A fake TensorRT module (engine + context recording set_input_shape / set_tensor_address / execute_async_v3) checks
the binding, shape and ping-pong logic against buffers laid out as runtime/executors/base.py says the Inverter lays
them out; real TensorRT-RTX-built engines with real and edited sidecars check that from_export refuses stale,
foreign or plugin-less engines, and a CPU machine, before anything is deserialized."""

import json
from pathlib import Path

import pytest
import torch

from core import contract as C
from core.config import get_config
from core.errors import HsError
from core.flavor import Flavor
from runtime.executors.tensorrt_executor import TensorRTExecutor, engine_name, find_engines

TINY = get_config("tiny")


# ---- a fake TensorRT ---------------------------------------------------------------------------------------------
class _E:
    """An enum member: TensorRT's pybind enums expose .name."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


class FakeTrt:
    class TensorIOMode:
        INPUT, OUTPUT = _E("INPUT"), _E("OUTPUT")

    class DataType:
        FLOAT, HALF = _E("FLOAT"), _E("HALF")

    class TensorFormat:
        LINEAR = _E("LINEAR")


FLAVOR = Flavor("tensorrt_rtx", FakeTrt, "1.7.1.116")
_DT = {"float32": FakeTrt.DataType.FLOAT, "float16": FakeTrt.DataType.HALF}


class FakeContext:
    def __init__(self, engine):
        self.engine = engine
        self.shapes = {}  # input name -> shape set
        self.addr = {}
        self.calls = []  # ("shape", name, shape) | ("addr", name, ptr) | ("exec", handle)
        self.launches = []  # the full address table at each execute_async_v3

    def set_input_shape(self, name, shape):
        assert self.engine.mode[name] is FakeTrt.TensorIOMode.INPUT
        lo, _, hi = self.engine.get_tensor_profile_shape(name, 0)
        self.calls.append(("shape", name, tuple(shape)))
        if not lo[0] <= shape[0] <= hi[0]:
            return False
        self.shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        s = self.engine.shape[name]
        if s[0] >= 0:
            return s
        b = {v[0] for v in self.shapes.values()}
        assert len(b) == 1, "every dynamic input's shape is set before output shapes are read"
        return (b.pop(), *s[1:])

    def set_tensor_address(self, name, ptr):
        assert name in self.engine.mode
        self.calls.append(("addr", name, ptr))
        self.addr[name] = ptr
        return True

    def execute_async_v3(self, handle):
        self.calls.append(("exec", handle))
        self.launches.append(dict(self.addr))
        return True


class FakeEngine:
    """An engine whose I/O is `io` (a GraphIO with batch "B" or an int); `rename`/`dtype` edit one tensor."""

    def __init__(self, io, profile=(1, 4, 8), rename=None, dtype=None, shape=None):
        self.names, self.mode, self.dtype, self.shape = [], {}, {}, {}
        self.profile = profile
        for t in io.inputs + io.outputs:
            name = rename[1] if rename and t.name == rename[0] else t.name
            self.names.append(name)
            self.mode[name] = FakeTrt.TensorIOMode.INPUT if t in io.inputs else FakeTrt.TensorIOMode.OUTPUT
            self.dtype[name] = _DT[(dtype or {}).get(t.name, t.dtype)]
            s = tuple(-1 if isinstance(d, str) else d for d in t.shape)
            self.shape[name] = (shape or {}).get(t.name, s)
        self.contexts = []

    num_io_tensors = property(lambda self: len(self.names))

    def get_tensor_name(self, i):
        return self.names[i]

    def get_tensor_mode(self, name):
        return self.mode[name]

    def get_tensor_dtype(self, name):
        return self.dtype[name]

    def get_tensor_format(self, name):
        return FakeTrt.TensorFormat.LINEAR

    def get_tensor_shape(self, name):
        return self.shape[name]

    def get_tensor_profile_shape(self, name, profile):
        rest = self.shape[name][1:]
        return tuple((b, *rest) for b in self.profile)

    def create_execution_context(self):
        c = FakeContext(self)
        self.contexts.append(c)
        return c


def fake_engines(variant="plugin", precision="fp16", plain_batch=1, edit=None, cls=None, **kw):
    """{graph: (path, FakeEngine)} for the tiny config; `edit` = (graph, FakeEngine kwargs) for one engine; `cls`
    another engine class (default FakeEngine)."""
    ohwi = variant == "plugin"
    modes = C.delta_modes(TINY, per_channel=ohwi)
    out = {}
    for g in C.GRAPHS:
        batch = plain_batch if (g == "generator" and variant == "plain") else "B"
        io = C.graph_io(TINY, g, modes, batch, ohwi, precision)
        args = edit[1] if edit and edit[0] == g else {}
        out[g] = (Path(engine_name(g, variant, precision)), (cls or FakeEngine)(io, **{**kw, **args}))
    return out


def make_executor(variant="plugin", precision="fp16", **kw):
    return TensorRTExecutor(TINY, variant, precision, FLAVOR, fake_engines(variant, precision, **kw), "cpu")


class Stream:
    cuda_stream = 0x5EED


# ---- the Inverter's buffers and bindings, as runtime/executors/base.py specifies them ----------------------------
class Buffers:
    def __init__(self, ex, rows):
        dt = getattr(torch, C.PRECISIONS[ex.precision])
        new = lambda t: torch.zeros(t.concrete(rows), dtype=dt)  # noqa: E731
        w, h, g = (ex.io(n) for n in C.GRAPHS)
        self.x, self.codes = new(w.tensor("image")), new(w.tensor("codes"))
        self.y, self.y_pool = new(g.tensor("image")), new(g.tensor("image_pooled"))
        self.sets = [{s.input_name: new(h.tensor(s.input_name)) for s in TINY.tuned} for _ in range(2)]

    def bindings(self, graph, b, s=0):
        """Bindings of `graph` at batch b reading Δ set s (the hypernet writes set 1 - s)."""
        if graph == "w_encoder":
            return {"image": self.x[:b], "codes": self.codes[:b]}
        d = {k: v[:b] for k, v in self.sets[s].items()}
        if graph == "generator":
            return {"codes": self.codes[:b], **d, "image": self.y[:b], "image_pooled": self.y_pool[:b]}
        acc = {C.acc_name(sp): self.sets[1 - s][sp.input_name][:b] for sp in TINY.tuned}
        return {"image": self.x[:b], "recon_pooled": self.y_pool[:b], **d, **acc}


def run_loop(ex, bufs, b, T):
    """The Inverter's loop (base.py): W-encoder, G0, T x (hypernet set t-1 % 2 -> other set, generator)."""
    calls = [("w_encoder", bufs.bindings("w_encoder", b)), ("generator", bufs.bindings("generator", b, 0))]
    for t in range(1, T + 1):
        s = (t - 1) % 2
        calls += [("hypernet", bufs.bindings("hypernet", b, s)), ("generator", bufs.bindings("generator", b, 1 - s))]
    for g, bind in calls:
        ex.run(g, bind, b, Stream())
    return calls


def _ctx(ex, graph):
    return ex._graphs[graph].context


# ---- tests -------------------------------------------------------------------------------------------------------
def test_engine_names_are_hs_exports():
    from export.pipeline import artifact_name

    for g in C.GRAPHS:
        for v in ("plain", "plugin"):
            shared = "shared" if g == "w_encoder" else v
            assert engine_name(g, v, "fp16") == artifact_name(g, shared, "fp16") + ".engine"


def test_contract_names_match_engine():
    ex = make_executor()
    for g in C.GRAPHS:
        eng = ex._graphs[g].engine
        assert [eng.get_tensor_name(i) for i in range(eng.num_io_tensors)] == ex.io(g).input_names + \
            ex.io(g).output_names
    assert ex.max_batch == 8 and ex.fixed_batch == {} and ex.ohwi
    assert ex.modes == C.delta_modes(TINY, per_channel=True)


def test_ping_pong_addresses_and_shapes():
    ex = make_executor()
    ex.check(6)
    ex.prepare(6)
    bufs = Buffers(ex, 6)
    launches = {g: 0 for g in C.GRAPHS}
    for b, T in ((3, 5), (3, 5), (1, 2), (3, 1), (6, 5)):
        calls = run_loop(ex, bufs, b, T)
        for g, bind in calls:
            snap = _ctx(ex, g).launches[launches[g]]
            launches[g] += 1
            assert snap == {k: v.data_ptr() for k, v in bind.items()}, f"{g} bound to other buffers"
    # the hypernet of iteration t writes the set the next hypernet reads and the generator reads: no copy in between
    h = _ctx(ex, "hypernet").launches
    assert h[0]["acc_convs_8"] == bufs.sets[1]["delta_convs_8"].data_ptr() == h[1]["delta_convs_8"]
    assert h[1]["acc_convs_8"] == bufs.sets[0]["delta_convs_8"].data_ptr()
    g = _ctx(ex, "generator").launches
    assert g[1]["delta_convs_8"] == h[0]["acc_convs_8"] and g[2]["delta_convs_8"] == h[1]["acc_convs_8"]
    # set_input_shape: once per input per batch change (3, 1, 3, 6), never on repeats
    for graph in C.GRAPHS:
        shapes = [c for c in _ctx(ex, graph).calls if c[0] == "shape"]
        n_in = len(ex.io(graph).inputs)
        assert len(shapes) == 4 * n_in
        assert [s[2][0] for s in shapes[::n_in]] == [3, 1, 3, 6]
        assert all(s[2] == ex.io(graph).tensor(s[1]).concrete(s[2][0]) for s in shapes)
    assert all(c[1] == Stream.cuda_stream for c in _ctx(ex, "generator").calls if c[0] == "exec")


def test_repeat_call_sets_nothing_but_the_launch():
    ex = make_executor()
    ex.prepare(4)
    bufs = Buffers(ex, 4)
    bind = bufs.bindings("w_encoder", 2)
    ex.run("w_encoder", bind, 2, Stream())
    n = len(_ctx(ex, "w_encoder").calls)
    ex.run("w_encoder", bufs.bindings("w_encoder", 2), 2, Stream())
    assert _ctx(ex, "w_encoder").calls[n:] == [("exec", Stream.cuda_stream)]


def test_plain_generator_fixed_batch():
    ex = make_executor("plain", plain_batch=2)
    assert ex.fixed_batch == {"generator": 2} and not ex.ohwi and ex.max_batch == 8
    ex.prepare(4)
    bufs = Buffers(ex, 4)
    ex.run("generator", bufs.bindings("generator", 2), 2, Stream())
    assert not [c for c in _ctx(ex, "generator").calls if c[0] == "shape"]  # static: no set_input_shape
    with pytest.raises(HsError, match="fixed batch 2, called with 1"):
        ex.run("generator", bufs.bindings("generator", 1), 1, Stream())


def test_name_mismatch_is_one_line():
    with pytest.raises(HsError, match=r"does not match the hypernet I/O contract: missing \['acc_convs_8'\], "
                                      r"unexpected \['acc_convs.8'\]; rebuild") as e:
        make_executor(edit=("hypernet", {"rename": ("acc_convs_8", "acc_convs.8")}))
    assert "\n" not in str(e.value)


def test_dtype_mismatch():
    with pytest.raises(HsError, match="codes is float32 in the engine, the contract wants float16"):
        make_executor(edit=("generator", {"dtype": {"codes": "float32"}}))


def test_layout_mismatch():
    """An OIHW Δ engine where the plugin contract is OHWI: the static dims differ."""
    with pytest.raises(HsError, match=r"delta_conv1 is \[-1, 16, 16, 3, 3\] in the engine, the contract wants "
                                      r"\['B', 16, 3, 3, 16\]"):
        make_executor(edit=("generator", {"shape": {"delta_conv1": (-1, 16, 16, 3, 3)}}))


def test_profile_too_small_and_binding_errors():
    ex = make_executor(profile=(1, 2, 4))
    assert ex.max_batch == 4
    with pytest.raises(HsError, match="max_batch=6 exceeds the engines' profile"):
        ex.check(6)
    ex.prepare(4)
    bufs = Buffers(ex, 4)
    with pytest.raises(HsError, match="needs the Inverter's CUDA stream"):
        ex.run("w_encoder", bufs.bindings("w_encoder", 1), 1, None)
    bad = dict(bufs.bindings("w_encoder", 2), codes=bufs.codes[:2].float())
    with pytest.raises(HsError, match=r"w_encoder:codes bound to float32 \[2, 12, 32\], expected float16"):
        ex.run("w_encoder", bad, 2, Stream())
    with pytest.raises(HsError, match="bindings must name exactly its I/O: missing"):
        ex.run("w_encoder", {"image": bufs.x[:2]}, 2, Stream())
    with pytest.raises(HsError, match="before prepare"):
        make_executor().run("w_encoder", bufs.bindings("w_encoder", 1), 1, Stream())


def test_find_engines(tmp_path):
    for g in C.GRAPHS:
        (tmp_path / engine_name(g, "plain", "fp16")).write_bytes(b"")
    assert find_engines(tmp_path)[:2] == ("plain", "fp16")
    for g in ("hypernet", "generator"):
        (tmp_path / engine_name(g, "plugin", "fp16")).write_bytes(b"")
    assert find_engines(tmp_path)[:2] == ("plugin", "fp16")
    (tmp_path / engine_name("generator", "plugin", "fp16")).unlink()
    assert find_engines(tmp_path)[0] == "plain"  # the plugin set is incomplete
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "export_summary.json").write_text(json.dumps({"engines_skipped": "engines skipped: no TensorRT"}))
    with pytest.raises(HsError, match=r"no complete TensorRT engine set: missing w_encoder_fp16.engine, "
                                      r"hypernet_plugin_fp16.engine, generator_plugin_fp16.engine \(hs-export said: "
                                      r"engines skipped: no TensorRT\); build them with `hs-export --fp16 --out"):
        find_engines(empty)
    with pytest.raises(HsError, match="export directory .* not found"):
        find_engines(tmp_path / "nope")


def test_from_export_refuses_cpu_device(tmp_path):
    for g in C.GRAPHS:
        (tmp_path / engine_name(g, "plugin", "fp16")).write_bytes(b"")
    with pytest.raises(HsError, match="runs on a CUDA device, got device='cpu'"):
        TensorRTExecutor.from_export(tmp_path, device="cpu")


# ---- from_export with real (TensorRT-RTX-built) engines: the checks happen before deserializing -------------------
@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    """An hs-export-like directory: a real tiny engine (built here with the importable flavor) under the three
    plugin-set names, each with the sidecar get_or_build wrote (model_config tiny, export_config)."""
    from engines.builder import BuildOptions, get_or_build
    from export.config import ExportConfig
    from tests.unit.engines.conftest import PROFILE, make_conv_onnx

    d = tmp_path_factory.mktemp("trt_export")
    cfg = ExportConfig(config="tiny", out=d)
    res = get_or_build(make_conv_onnx(d / "conv.onnx"), d / "conv.engine", BuildOptions(profile=PROFILE),
                       d / ".engine_cache", record={"kind": "engine", "model_config": "tiny", "precision": "fp16",
                                                    "export_config": cfg.to_dict()})
    for g in C.GRAPHS:
        dst = d / engine_name(g, "plugin", "fp16")
        dst.write_bytes(res.path.read_bytes())
        (d / (dst.name + ".json")).write_text((d / "conv.engine.json").read_text())
    return d


@pytest.fixture
def spy(monkeypatch, export_dir):
    """Deserialization recorded (returns fake engines for the tiny contract); the GPU query answers an RTX GPU."""
    from engines import compat

    calls = []
    fakes = fake_engines()

    def deserialize(info, runtime, log):
        calls.append(info.path.name)
        return next(e for p, e in fakes.values() if p.name == info.path.name)

    monkeypatch.setattr(compat, "deserialize", deserialize)
    monkeypatch.setattr(compat, "make_runtime", lambda fl: ("runtime", None))
    monkeypatch.setattr(compat, "current_gpu", lambda device=None: compat.GpuInfo("NVIDIA RTX A6000", 8, 6))
    return calls


def _edit_sidecar(d, graph, fn):
    p = d / (engine_name(graph, "plugin", "fp16") + ".json")
    side = json.loads(p.read_text())
    fn(side)
    p.write_text(json.dumps(side))


def _copy_dir(src, dst):
    dst.mkdir()
    for p in src.iterdir():
        if p.is_file():
            (dst / p.name).write_bytes(p.read_bytes())
    return dst


@pytest.mark.trt
def test_from_export_checks_then_deserializes(export_dir, spy):
    from core.flavor import get_flavor

    if not get_flavor().is_rtx:
        pytest.skip("the synthetic GPU is a TensorRT-RTX target")
    ex = TensorRTExecutor.from_export(export_dir, device="cuda:0", max_batch=8)
    assert spy == [engine_name(g, "plugin", "fp16") for g in C.GRAPHS]
    assert ex.variant == "plugin" and ex.precision == "fp16" and ex.cfg.name == "tiny"
    assert ex.describe()["engines"]["generator"] == "generator_plugin_fp16.engine"


@pytest.mark.trt
def test_stale_engine_refused_before_deserialize(export_dir, spy, tmp_path):
    d = _copy_dir(export_dir, tmp_path / "x")

    def edit(s):
        s["key_components"]["target"]["version"] = "0.9"

    _edit_sidecar(d, "hypernet", edit)
    with pytest.raises(HsError, match=r"hypernet_plugin_fp16.engine is stale: built with .* 0.9, .*rebuild it with "
                                      r"`hs-export --config tiny --fp16 --out") as e:
        TensorRTExecutor.from_export(d, device="cuda:0")
    assert "\n" not in str(e.value) and spy == []


@pytest.mark.trt
def test_plugin_engine_without_plugins_refused(export_dir, spy, tmp_path, monkeypatch):
    from plugins.registry import build_digest, get_spec

    d = _copy_dir(export_dir, tmp_path / "x")

    def edit(s):
        s["key_components"]["plugins"] = {"HsModConv": get_spec("HsModConv").version}
        s["key_components"]["plugin_build"] = build_digest(["HsModConv"])

    _edit_sidecar(d, "generator", edit)

    def broken(flavor=None):
        raise HsError("TensorRT refused to register plugin creator hyperstyle::HsModConv v2")

    monkeypatch.setattr("plugins.register_plugins", broken)
    with pytest.raises(HsError, match="generator_plugin_fp16.engine uses plugins HsModConv v.* cannot be registered"):
        TensorRTExecutor.from_export(d, device="cuda:0")
    assert spy == []


@pytest.mark.trt
def test_cpu_machine_refuses_in_one_line(export_dir, monkeypatch):
    """Nothing faked but deserialization (which must not be reached): on a machine without CUDA the executor
    refuses with one line before reading any engine."""
    from engines import compat

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    called = []
    monkeypatch.setattr(compat, "deserialize", lambda *a: called.append(a))
    with pytest.raises(HsError, match=r"^no CUDA GPU visible .*executor='onnxruntime'") as e:
        TensorRTExecutor.from_export(export_dir)
    assert "\n" not in str(e.value) and called == []


def test_registered_as_tensorrt():
    from runtime.executors import get_executor

    assert get_executor("tensorrt") is TensorRTExecutor


# ---- the real Inverter over the executor, with a fake that computes on the bound addresses (CPU memory) ----------
class ComputingContext(FakeContext):
    """execute_async_v3 reads and writes the bound buffers (host memory here): w_encoder codes = image[b,0,0,0];
    hypernet acc_* = delta_* + 1 (+ 0 * recon_pooled); generator image = image_pooled = codes[b,0,0] + sum over
    layers of delta[b] (first element). After T iterations every Δ is T and the image is x00 + n_layers * T, unless
    a buffer was bound to the wrong set or copied."""

    def _arr(self, name):
        import ctypes

        import numpy as np

        shape = self.get_tensor_shape(name)
        dt = np.float32 if self.engine.dtype[name] is FakeTrt.DataType.FLOAT else np.float16
        n = int(np.prod(shape)) * np.dtype(dt).itemsize
        raw = np.ctypeslib.as_array((ctypes.c_uint8 * n).from_address(self.addr[name]))
        return raw.view(dt).reshape(shape)

    def execute_async_v3(self, handle):
        ok = super().execute_async_v3(handle)
        names = self.engine.names
        if "codes" in names and "image" in names and len(names) == 2:  # w_encoder
            self._arr("codes")[:] = self._arr("image")[:, :1, 0, :1]
        elif "recon_pooled" in names:  # hypernet
            for n in names:
                if n.startswith("acc_"):
                    self._arr(n)[:] = self._arr("delta_" + n[4:]) + 1 + 0 * self._arr("recon_pooled").mean()
        else:  # generator
            deltas = [n for n in names if n.startswith("delta_")]
            v = self._arr("codes")[:, 0, 0] + sum(self._arr(n).reshape(self._arr(n).shape[0], -1)[:, 0] for n in deltas)
            self._arr("image")[:] = v[:, None, None, None]
            self._arr("image_pooled")[:] = v[:, None, None, None]
        return ok


class ComputingEngine(FakeEngine):
    def create_execution_context(self):
        c = ComputingContext(self)
        self.contexts.append(c)
        return c


@pytest.mark.parametrize("variant,plain_batch", [("plugin", 1), ("plain", 2)])
def test_inverter_data_flow_through_executor(monkeypatch, variant, plain_batch):
    """runtime.Inverter (CPU, no graphs) over TensorRTExecutor with computing fakes: Δ after T iterations equals T
    in every layer and row, the image is x00 + n_layers * T: the two sets ping-pong without copies, and the plain
    generator's fixed batch is served in padded chunks."""
    import runtime.executors.tensorrt_executor as te
    from runtime.inverter import Inverter

    monkeypatch.setattr(te, "_stream_handle", lambda s: 0)  # the CPU Inverter passes no stream
    engines = fake_engines(variant, "fp32", plain_batch=plain_batch, cls=ComputingEngine)
    ex = TensorRTExecutor(TINY, variant, "fp32", FLAVOR, engines, "cpu")
    inv = Inverter(ex, max_batch=4, n_iters=5, warmup=False)
    x = torch.tensor([-0.5, 0.25, 0.75])[:, None, None, None].expand(3, 3, TINY.hypernet.input_size,
                                                                     TINY.hypernet.input_size).contiguous()
    n_layers = len(TINY.tuned)
    for T in (5, 2, 1):
        res = inv.invert(x, n_iters=T)
        for name, d in res.raw_deltas.items():
            assert torch.equal(d, torch.full_like(d, float(T))), (name, T)
        want = x[:, 0, 0, 0] + n_layers * T
        assert torch.equal(res.images[:, 0, 0, 0], want), (T, res.images[:, 0, 0, 0], want)
    gen_calls = [c for c in ex._graphs["generator"].context.calls if c[0] == "exec"]
    per_invert = 1 + 5 + 1 + 2 + 1 + 1  # y0 + T generator passes, for T = 5, 2, 1
    assert len(gen_calls) == per_invert * (2 if variant == "plain" else 1)  # plain: 2 chunks of 2 rows for B=3
