"""The `tensorrt` executor without executing an engine (no CUDA driver here; TensorRT-RTX refuses SM 9.x anyway).

A fake TensorRT module (engine + contexts recording set_device_memory / set_input_shape / set_tensor_address /
execute_async_v3) checks the per-batch contexts, the shared device memory, the binding, shape and ping-pong logic
against buffers laid out as runtime/executors/base.py says the Inverter lays them out; real TensorRT-RTX-built
engines with real and edited sidecars check that from_export refuses stale, foreign or plugin-less engines, and a
CPU machine, before anything is deserialized."""

import json
from pathlib import Path

import pytest
import torch

from hyperstyle_trt.core import contract as C
from hyperstyle_trt.core.config import get_config
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.core.flavor import Flavor
from hyperstyle_trt.runtime.executors.tensorrt_executor import TensorRTExecutor, engine_name, find_engines

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

    class ExecutionContextAllocationStrategy:
        STATIC, USER_MANAGED = _E("STATIC"), _E("USER_MANAGED")


class OldTrt:
    """Bindings without ExecutionContextAllocationStrategy (TensorRT < 10: create_execution_context_without_device_
    memory and the device_memory property)."""

    TensorIOMode, DataType, TensorFormat = FakeTrt.TensorIOMode, FakeTrt.DataType, FakeTrt.TensorFormat


FLAVOR = Flavor("tensorrt_rtx", FakeTrt, "1.7.1.116")
_DT = {"float32": FakeTrt.DataType.FLOAT, "float16": FakeTrt.DataType.HALF}


class FakeContext:
    """A context created with `strategy` (STATIC: its own memory; USER_MANAGED / None from the without-memory call:
    enqueue refused until memory is given, as TensorRT does)."""

    def __init__(self, engine, strategy=FakeTrt.ExecutionContextAllocationStrategy.STATIC, own_memory=True):
        self.engine, self.strategy = engine, strategy
        self.memory = (0xA1100, engine.mem) if own_memory else None  # (ptr, size)
        self.shapes = {}  # input name -> shape set
        self.addr = {}
        self.active = 0  # the optimization profile: 0 until one is selected, as TensorRT 10 starts a context
        # ("memory", ptr, size) | ("profile", index, handle) | ("shape", name, shape) | ("addr", name, ptr) |
        # ("exec", handle)
        self.calls = []
        self.launches = []  # the full address table at each execute_async_v3

    def set_device_memory(self, ptr, size):
        assert size >= self.engine.mem and ptr % 256 == 0
        self.calls.append(("memory", ptr, size))
        self.memory = (ptr, size)

    def set_optimization_profile_async(self, index, handle):
        """TensorRT: selecting a profile resets the input shapes, so it comes first; False for an index the engine
        does not have."""
        assert not self.shapes, "a profile is selected before any input shape is set"
        self.calls.append(("profile", index, handle))
        if not 0 <= index < self.engine.num_optimization_profiles:
            return False
        self.active = index
        return True

    def set_input_shape(self, name, shape):
        assert self.engine.mode[name] is FakeTrt.TensorIOMode.INPUT
        lo, _, hi = self.engine.get_tensor_profile_shape(name, self.active)
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
        if self.memory is None:
            return False  # TensorRT: a USER_MANAGED context without device memory cannot enqueue
        self.calls.append(("exec", handle))
        self.launches.append(dict(self.addr))
        return True


class OldContext(FakeContext):
    """TensorRT < 10.1: the device_memory property instead of set_device_memory."""

    set_device_memory = None

    @property
    def device_memory(self):
        return None if self.memory is None else self.memory[0]

    @device_memory.setter
    def device_memory(self, ptr):
        self.calls.append(("memory", ptr, None))
        self.memory = (ptr, None)


class FakeEngine:
    """An engine whose I/O is `io` (a GraphIO with batch "B" or an int); `rename`/`dtype` edit one tensor;
    `profile`: its one (min, opt, max) batch profile, or `profiles`: several, in index order."""

    mem = 4096  # device bytes a context needs
    device_memory_size_v2 = property(lambda self: self.mem)
    context_cls = FakeContext

    def __init__(self, io, profile=(1, 4, 8), rename=None, dtype=None, shape=None, profiles=None):
        self.names, self.mode, self.dtype, self.shape = [], {}, {}, {}
        self.profile = profile
        self.profiles = list(profiles or [profile])
        for t in io.inputs + io.outputs:
            name = rename[1] if rename and t.name == rename[0] else t.name
            self.names.append(name)
            self.mode[name] = FakeTrt.TensorIOMode.INPUT if t in io.inputs else FakeTrt.TensorIOMode.OUTPUT
            self.dtype[name] = _DT[(dtype or {}).get(t.name, t.dtype)]
            s = tuple(-1 if isinstance(d, str) else d for d in t.shape)
            self.shape[name] = (shape or {}).get(t.name, s)
        self.contexts = []

    num_io_tensors = property(lambda self: len(self.names))
    num_optimization_profiles = property(lambda self: len(self.profiles))

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
        return tuple((b, *rest) for b in self.profiles[profile])

    def create_execution_context(self, strategy=FakeTrt.ExecutionContextAllocationStrategy.STATIC):
        c = self.context_cls(self, strategy,
                             own_memory=strategy is not FakeTrt.ExecutionContextAllocationStrategy.USER_MANAGED)
        self.contexts.append(c)
        return c


class OldEngine(FakeEngine):
    """TensorRT < 10.1 bindings: device_memory_size, create_execution_context_without_device_memory."""

    device_memory_size_v2 = None
    device_memory_size = property(lambda self: self.mem)
    context_cls = OldContext

    def create_execution_context(self):
        raise AssertionError("the executor must not create contexts with their own device memory")

    def create_execution_context_without_device_memory(self):
        c = OldContext(self, None, own_memory=False)
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


def make_executor(variant="plugin", precision="fp16", flavor=FLAVOR, **kw):
    return TensorRTExecutor(TINY, variant, precision, flavor, fake_engines(variant, precision, **kw), "cpu")


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


def _ctx(ex, graph, b):
    """The fake context of `graph` at batch b."""
    return ex._graphs[graph].contexts[b].context


def _all_contexts(ex, graph):
    return ex._graphs[graph].engine.contexts


# ---- tests -------------------------------------------------------------------------------------------------------
def test_engine_names_are_hs_exports():
    from hyperstyle_trt.export.pipeline import artifact_name

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
    """Batches 3, 3, 1, 3, 6: every launch of every (graph, batch) context has exactly the Inverter's buffers of that
    step bound (both Δ parities, inside one loop), and switching batches never re-shapes a context."""
    ex = make_executor()
    ex.check(6)
    ex.prepare(6)
    bufs = Buffers(ex, 6)
    launches = {}
    for b, T in ((3, 5), (3, 5), (1, 2), (3, 1), (6, 5)):
        ex.prepare_batch(b)
        calls = run_loop(ex, bufs, b, T)
        for g, bind in calls:
            i = launches.get((g, b), 0)
            launches[g, b] = i + 1
            assert _ctx(ex, g, b).launches[i] == {k: v.data_ptr() for k, v in bind.items()}, f"{g}@{b} bound elsewhere"
    for (g, b), n in launches.items():
        assert len(_ctx(ex, g, b).launches) == n  # no launch went to another batch's context
    # the hypernet of iteration t writes the set the next hypernet reads and the generator reads: no copy in between
    h = _ctx(ex, "hypernet", 3).launches
    assert h[0]["acc_convs_8"] == bufs.sets[1]["delta_convs_8"].data_ptr() == h[1]["delta_convs_8"]
    assert h[1]["acc_convs_8"] == bufs.sets[0]["delta_convs_8"].data_ptr()
    g = _ctx(ex, "generator", 3).launches
    assert g[1]["delta_convs_8"] == h[0]["acc_convs_8"] and g[2]["delta_convs_8"] == h[1]["acc_convs_8"]
    # set_input_shape: once per input per context (batches 3, 1, 6), at creation, never again when switching back
    for graph in C.GRAPHS:
        assert sorted(ex._graphs[graph].contexts) == [1, 3, 6] and len(_all_contexts(ex, graph)) == 3
        n_in = len(ex.io(graph).inputs)
        for b in (1, 3, 6):
            calls = _ctx(ex, graph, b).calls
            shapes = [c for c in calls if c[0] == "shape"]
            assert len(shapes) == n_in and {c[1] for c in shapes} == set(ex.io(graph).input_names)
            assert all(c[2] == ex.io(graph).tensor(c[1]).concrete(b) for c in shapes)
            first_exec = next(i for i, c in enumerate(calls) if c[0] == "exec")
            assert all(c[0] != "shape" for c in calls[first_exec:])
    assert all(c[1] == Stream.cuda_stream for c in _ctx(ex, "generator", 3).calls if c[0] == "exec")


def test_one_context_per_batch_created_outside_run():
    """prepare_batch(b) creates each engine's context at b (USER_MANAGED, shared memory, shapes set); run creates
    nothing; batches back and forth (2, 1, 2, 1) reuse them and never call set_input_shape or set_device_memory."""
    ex = make_executor()
    ex.prepare(4)
    assert all(not _all_contexts(ex, g) for g in C.GRAPHS)  # dynamic engines: no context before prepare_batch
    ex.prepare_batch(2)
    ex.prepare_batch(1)
    ex.prepare_batch(2)  # again: nothing new
    made = {g: list(_all_contexts(ex, g)) for g in C.GRAPHS}
    assert all(len(v) == 2 for v in made.values())
    setup = {(g, b): list(_ctx(ex, g, b).calls) for g in C.GRAPHS for b in (1, 2)}
    bufs = Buffers(ex, 4)
    for b in (2, 1, 2, 1, 2):
        run_loop(ex, bufs, b, 3)
    for g in C.GRAPHS:
        assert _all_contexts(ex, g) == made[g], f"{g}: run created a context"
        for b in (1, 2):
            c = _ctx(ex, g, b)
            assert c.strategy is FakeTrt.ExecutionContextAllocationStrategy.USER_MANAGED
            assert c.calls[:len(setup[g, b])] == setup[g, b]
            assert {x[0] for x in c.calls[len(setup[g, b]):]} == {"addr", "exec"}  # no shape / memory call in run
            assert [x[0] for x in setup[g, b]].count("memory") == 1


def test_contexts_of_an_engine_share_one_device_memory_block():
    """Every context of an engine gets the same pointer and size: the engine's one block, allocated in prepare with
    at least device_memory_size_v2 bytes; the three engines have their own blocks."""
    ex = make_executor()
    ex.prepare(4)
    for b in (1, 2, 3, 4):
        ex.prepare_batch(b)
    ptrs = {}
    for g in C.GRAPHS:
        st = ex._graphs[g]
        got = {c.memory for c in _all_contexts(ex, g)}
        assert got == {(st.mem_ptr, FakeEngine.mem)}, f"{g}: contexts do not share one block: {got}"
        lo, hi = st.memory.data_ptr(), st.memory.data_ptr() + st.memory.numel()
        assert st.memory.dtype == torch.uint8 and lo <= st.mem_ptr and st.mem_ptr + FakeEngine.mem <= hi  # inside it
        ptrs[g] = st.mem_ptr
    assert len(set(ptrs.values())) == 3
    ex.prepare(4)  # idempotent: the block is not reallocated
    assert {g: ex._graphs[g].mem_ptr for g in C.GRAPHS} == ptrs
    d = ex.describe()
    assert d["contexts"] == {g: [1, 2, 3, 4] for g in C.GRAPHS}
    assert d["context_memory_bytes"] == {g: FakeEngine.mem for g in C.GRAPHS}
    ex.close()
    assert all(not ex._graphs[g].contexts and ex._graphs[g].memory is None for g in C.GRAPHS)


def test_older_bindings_without_allocation_strategy():
    """TensorRT < 10.1 names: create_execution_context_without_device_memory, device_memory_size and the
    device_memory property; the contexts still share one block and can enqueue."""
    ex = make_executor(flavor=Flavor("tensorrt", OldTrt, "10.0.1"), cls=OldEngine)
    ex.prepare(2)
    ex.prepare_batch(1)
    ex.prepare_batch(2)
    bufs = Buffers(ex, 2)
    run_loop(ex, bufs, 2, 2)
    for g in C.GRAPHS:
        assert {c.memory for c in _all_contexts(ex, g)} == {(ex._graphs[g].mem_ptr, None)}
        assert len(_ctx(ex, g, 2).launches) == {"w_encoder": 1, "hypernet": 2, "generator": 3}[g]


def test_run_creates_a_missing_context_eagerly_but_never_under_capture(monkeypatch):
    """A caller that skipped prepare_batch (e.g. runtime.edit's direct generator calls) gets the context created at
    its first eager call; under a capture that is one HsError line and nothing is created."""
    import hyperstyle_trt.runtime.executors.tensorrt_executor as te

    ex = make_executor()
    ex.prepare(4)
    bufs = Buffers(ex, 4)
    ex.run("w_encoder", bufs.bindings("w_encoder", 2), 2, Stream())
    assert sorted(ex._graphs["w_encoder"].contexts) == [2] and len(_ctx(ex, "w_encoder", 2).launches) == 1
    monkeypatch.setattr(te, "_capturing", lambda device: True)
    ex.run("w_encoder", bufs.bindings("w_encoder", 2), 2, Stream())  # existing context: fine under capture
    with pytest.raises(HsError, match=r"no execution context for batch 3 while a CUDA graph is being captured; "
                                      r"call prepare_batch\(3\) before") as e:
        ex.run("w_encoder", bufs.bindings("w_encoder", 3), 3, Stream())
    assert "\n" not in str(e.value) and sorted(ex._graphs["w_encoder"].contexts) == [2]
    with pytest.raises(HsError, match="while a CUDA graph is being captured"):
        ex.prepare_batch(4)


def test_repeat_call_sets_nothing_but_the_launch():
    ex = make_executor()
    ex.prepare(4)
    ex.prepare_batch(2)
    bufs = Buffers(ex, 4)
    bind = bufs.bindings("w_encoder", 2)
    ex.run("w_encoder", bind, 2, Stream())
    n = len(_ctx(ex, "w_encoder", 2).calls)
    ex.run("w_encoder", bufs.bindings("w_encoder", 2), 2, Stream())
    assert _ctx(ex, "w_encoder", 2).calls[n:] == [("exec", Stream.cuda_stream)]


def test_plain_generator_fixed_batch():
    ex = make_executor("plain", plain_batch=2)
    assert ex.fixed_batch == {"generator": 2} and not ex.ohwi and ex.max_batch == 8
    ex.prepare(4)
    assert sorted(ex._graphs["generator"].contexts) == [2]  # the static engine's one context, made in prepare
    ex.prepare_batch(1)
    ex.prepare_batch(3)
    assert sorted(ex._graphs["generator"].contexts) == [2] and sorted(ex._graphs["hypernet"].contexts) == [1, 3]
    bufs = Buffers(ex, 4)
    ex.run("generator", bufs.bindings("generator", 2), 2, Stream())
    assert not [c for c in _ctx(ex, "generator", 2).calls if c[0] == "shape"]  # static: no set_input_shape
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
    with pytest.raises(HsError, match=r"batch 5 is outside its profile 1..4"):
        ex.prepare_batch(5)
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
    with pytest.raises(HsError, match="before prepare"):
        make_executor().prepare_batch(1)


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
    from hyperstyle_trt.engines.builder import BuildOptions, get_or_build
    from hyperstyle_trt.export.config import ExportConfig
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
    from hyperstyle_trt.engines import compat

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
    from hyperstyle_trt.core.flavor import get_flavor

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
    from hyperstyle_trt.plugins.registry import build_digest, get_spec

    d = _copy_dir(export_dir, tmp_path / "x")

    def edit(s):
        s["key_components"]["plugins"] = {"HsModConv": get_spec("HsModConv").version}
        s["key_components"]["plugin_build"] = build_digest(["HsModConv"])

    _edit_sidecar(d, "generator", edit)

    def broken(flavor=None):
        raise HsError("TensorRT refused to register plugin creator hyperstyle::HsModConv v2")

    monkeypatch.setattr("hyperstyle_trt.plugins.register_plugins", broken)
    with pytest.raises(HsError, match="generator_plugin_fp16.engine uses plugins HsModConv v.* cannot be registered"):
        TensorRTExecutor.from_export(d, device="cuda:0")
    assert spy == []


@pytest.mark.trt
def test_cpu_machine_refuses_in_one_line(export_dir, monkeypatch):
    """Nothing faked but deserialization (which must not be reached): on a machine without CUDA the executor
    refuses with one line before reading any engine."""
    from hyperstyle_trt.engines import compat

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    called = []
    monkeypatch.setattr(compat, "deserialize", lambda *a: called.append(a))
    with pytest.raises(HsError, match=r"^no CUDA GPU visible .*executor='onnxruntime'") as e:
        TensorRTExecutor.from_export(export_dir)
    assert "\n" not in str(e.value) and called == []


def test_registered_as_tensorrt():
    from hyperstyle_trt.runtime.executors import get_executor

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
    context_cls = ComputingContext


@pytest.mark.parametrize("variant,plain_batch", [("plugin", 1), ("plain", 2)])
def test_inverter_data_flow_through_executor(monkeypatch, variant, plain_batch):
    """runtime.Inverter (CPU, no graphs) over TensorRTExecutor with computing fakes: Δ after T iterations equals T
    in every layer and row, the image is x00 + n_layers * T: the two sets ping-pong without copies, and the plain
    generator's fixed batch is served in padded chunks. Batches 3, 1, 3 run on their own contexts, all created by
    the Inverter's prepare_batch: run is made to believe it is always capturing, so a context made in run fails."""
    import hyperstyle_trt.runtime.executors.tensorrt_executor as te
    from hyperstyle_trt.runtime.inverter import Inverter

    monkeypatch.setattr(te, "_stream_handle", lambda s: 0)  # the CPU Inverter passes no stream
    engines = fake_engines(variant, "fp32", plain_batch=plain_batch, cls=ComputingEngine)
    ex = TensorRTExecutor(TINY, variant, "fp32", FLAVOR, engines, "cpu")
    inv = Inverter(ex, max_batch=4, n_iters=5, warmup=False)
    real_prepare_batch = ex.prepare_batch

    def prepare_batch(b):  # the Inverter's hook runs outside "capture"; every run sees one
        monkeypatch.setattr(te, "_capturing", lambda device: False)
        real_prepare_batch(b)
        monkeypatch.setattr(te, "_capturing", lambda device: True)

    monkeypatch.setattr(ex, "prepare_batch", prepare_batch)
    monkeypatch.setattr(te, "_capturing", lambda device: True)
    x = torch.tensor([-0.5, 0.25, 0.75])[:, None, None, None].expand(3, 3, TINY.hypernet.input_size,
                                                                     TINY.hypernet.input_size).contiguous()
    n_layers = len(TINY.tuned)
    for xb, T in ((x, 5), (x[:1], 2), (x, 2), (x[:1], 1), (x, 1)):
        res = inv.invert(xb, n_iters=T)
        for name, d in res.raw_deltas.items():
            assert torch.equal(d, torch.full_like(d, float(T))), (name, T)
        want = xb[:, 0, 0, 0] + n_layers * T
        assert torch.equal(res.images[:, 0, 0, 0], want), (T, res.images[:, 0, 0, 0], want)
    gen = ex._graphs["generator"]
    assert sorted(ex._graphs["hypernet"].contexts) == [1, 3]
    assert sorted(gen.contexts) == ([2] if variant == "plain" else [1, 3])
    execs = {b: sum(c[0] == "exec" for c in gen.contexts[b].context.calls) for b in gen.contexts}
    if variant == "plain":  # 2 chunks of 2 rows for B=3, 1 chunk for B=1; y0 + T passes per invert
        assert execs == {2: 2 * (6 + 3 + 2) + (3 + 2)}
    else:
        assert execs == {3: 6 + 3 + 2, 1: 3 + 2}
    for g in C.GRAPHS:  # every shape was set once, when its context was made
        for c in ex._graphs[g].contexts.values():
            assert sum(x[0] == "shape" for x in c.context.calls) == len(ex._graphs[g].dynamic)


# ---- optimization profiles per batch bucket (engines.profiles) ----------------------------------------------------
BUCKETS = ((1, 1, 1), (2, 2, 2), (3, 4, 4), (5, 8, 8))  # engines.profiles.batch_buckets(8)


def _profile_calls(c):
    return [x for x in c.calls if x[0] == "profile"]


def test_each_batch_context_selects_its_bucket_profile_once():
    """Engines with one profile per bucket: the context at batch b selects the narrowest profile covering b, once,
    at creation, before its input shapes; running batches back and forth never selects a profile again."""
    from hyperstyle_trt.engines.profiles import batch_buckets

    assert batch_buckets(8) == BUCKETS
    ex = make_executor(profiles=BUCKETS)
    assert ex.max_batch == 8 and ex.describe()["profiles"]["hypernet"] == [list(b) for b in BUCKETS]
    ex.check(8)
    ex.prepare(8)
    want = {1: 0, 2: 1, 3: 2, 4: 2, 5: 3, 6: 3, 7: 3, 8: 3}
    for b in range(1, 9):
        ex.prepare_batch(b)
    setup = {(g, b): len(_ctx(ex, g, b).calls) for g in C.GRAPHS for b in want}
    bufs = Buffers(ex, 8)
    for b in (3, 8, 1, 4, 3, 6):
        run_loop(ex, bufs, b, 2)
    for g in C.GRAPHS:
        for b, index in want.items():
            c = _ctx(ex, g, b)
            assert _profile_calls(c) == [("profile", index, 0)], (g, b)  # once, CPU: stream handle 0
            assert ex._graphs[g].contexts[b].profile == index and c.active == index
            kinds = [x[0] for x in c.calls]
            assert kinds.index("profile") < kinds.index("shape")  # selected before any shape
            assert "profile" not in kinds[setup[g, b]:]  # never again in run
    # contexts at 3 and 4 share the bucket 3..4: TensorRT 10 allows it, and the Inverter never runs them concurrently
    assert _ctx(ex, "generator", 3).active == _ctx(ex, "generator", 4).active == 2


def test_one_profile_engine_selects_profile_0():
    """An engine built before the buckets (one profile over 1..max_batch): every context selects profile 0."""
    ex = make_executor()
    ex.prepare(8)
    for b in (1, 5, 8):
        ex.prepare_batch(b)
        for g in C.GRAPHS:
            assert _profile_calls(_ctx(ex, g, b)) == [("profile", 0, 0)]


def test_batch_without_profile_is_refused_in_one_line():
    gap = ((1, 1, 1), (2, 2, 2), (5, 8, 8))
    ex = make_executor(profiles=gap)
    with pytest.raises(HsError, match=r"w_encoder_fp16.engine: no optimization profile covers batch 3 \(profiles "
                                      r"1..1, 2..2, 5..8\); rebuild with `hs-export --max-batch 8") as e:
        ex.check(8)
    assert "\n" not in str(e.value)
    ex.prepare(8)
    with pytest.raises(HsError, match=r"batch 3 is outside its profiles 1..1, 2..2, 5..8") as e:
        ex.prepare_batch(3)
    assert "\n" not in str(e.value)
    assert all(3 not in ex._graphs[g].contexts for g in C.GRAPHS)
    ex.prepare_batch(6)  # covered batches still work
    assert _profile_calls(_ctx(ex, "hypernet", 6)) == [("profile", 2, 0)]


def test_refused_profile_and_binding_without_the_call():
    """TensorRT refusing the selection is one line; a binding without set_optimization_profile_async runs a
    one-profile engine (profile 0 is every context's start) but cannot serve several profiles."""

    class NoSelect(FakeContext):
        set_optimization_profile_async = None

    class NoSelectEngine(FakeEngine):
        context_cls = NoSelect

    ex = make_executor(cls=NoSelectEngine)
    ex.prepare(4)
    ex.prepare_batch(3)
    assert not _profile_calls(_ctx(ex, "w_encoder", 3)) and _ctx(ex, "w_encoder", 3).active == 0
    ex = make_executor(cls=NoSelectEngine, profiles=BUCKETS)
    ex.prepare(8)
    with pytest.raises(HsError, match=r"w_encoder_fp16.engine: this TensorRT binding cannot select optimization "
                                      r"profile 1 \(no IExecutionContext.set_optimization_profile_async\)"):
        ex.prepare_batch(2)

    class Refusing(FakeContext):
        def set_optimization_profile_async(self, index, handle):
            return False

    class RefusingEngine(FakeEngine):
        context_cls = Refusing

    ex = make_executor(cls=RefusingEngine, profiles=BUCKETS)
    ex.prepare(8)
    with pytest.raises(HsError, match=r"w_encoder_fp16.engine: TensorRT refused optimization profile 2 of 4") as e:
        ex.prepare_batch(4)
    assert "\n" not in str(e.value)


def test_inverter_over_bucket_profiles(monkeypatch):
    """runtime.Inverter (CPU) over computing fakes with bucket profiles: batches 3, 1, 3 give the right Δ and images,
    and their contexts hold profiles 2 and 0."""
    import hyperstyle_trt.runtime.executors.tensorrt_executor as te
    from hyperstyle_trt.runtime.inverter import Inverter

    monkeypatch.setattr(te, "_stream_handle", lambda s: 0)
    ex = TensorRTExecutor(TINY, "plugin", "fp32", FLAVOR, fake_engines("plugin", "fp32", cls=ComputingEngine,
                                                                      profiles=BUCKETS), "cpu")
    inv = Inverter(ex, max_batch=4, n_iters=2, warmup=False)
    x = torch.tensor([-0.5, 0.25, 0.75])[:, None, None, None].expand(3, 3, TINY.hypernet.input_size,
                                                                     TINY.hypernet.input_size).contiguous()
    for xb in (x, x[:1], x):
        res = inv.invert(xb, n_iters=2)
        assert torch.equal(res.images[:, 0, 0, 0], xb[:, 0, 0, 0] + len(TINY.tuned) * 2)
    for g in C.GRAPHS:
        assert {b: c.profile for b, c in ex._graphs[g].contexts.items()} == {3: 2, 1: 0}
        assert all(len(_profile_calls(c.context)) == 1 for c in ex._graphs[g].contexts.values())
