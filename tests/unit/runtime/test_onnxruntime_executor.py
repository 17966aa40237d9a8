"""runtime.Inverter.from_export(..., executor="onnxruntime") on a tiny hs-export directory (plain fp32 graphs, CPU).

The plain generator is exported with plain_batch=2, so every batch runs it on padded 2-row chunks (B=3 -> rows
0-1, 2-3 with row 3 a pad row). Tolerances vs HyperStyle.invert (fp32 max abs, the conftest images, T=2): images /
pooled (ORT's grouped conv vs torch's conv), Δ (the plain layout is the official OIHW), codes, and the fine-tuned
weights in the plain Generator vs the ORT images; each at least 2x what was observed
(benchmarks/results/cpu_verify_errors.json, "onnxruntime_executor_tiny"; test_tolerances_are_the_recorded_gates).
(hs-export's own per-graph gates: export.verify.GATES.)

The binding tests wrap onnxruntime's IOBinding and count what is made and bound over several calls at two batch
sizes. The CUDA EP tests use a fake: there is no GPU here, and the onnxruntime-gpu wheel (about 255 MB) cannot be
sent to the GPU machine, so the CUDA EP itself has never run.
"""

import json
import shutil
from pathlib import Path

import pytest
import torch

from hyperstyle_trt.core.errors import HsError

IMG_TOL, DELTA_TOL, CODES_TOL = 3e-6, 2e-7, 1e-6
NCHWC_TOL = 2e-6  # with vs without ORT's NCHWc transformer, T=2; observed: images 8.9e-7, codes 4.8e-7, Δ 4.5e-8
RESULTS = Path(__file__).resolve().parents[3] / "benchmarks" / "results" / "cpu_verify_errors.json"


def _err(a, b) -> float:
    return float((a.float() - b.float()).abs().max())


@pytest.fixture(scope="session")
def ort_export_dir(tmp_path_factory, tiny_model):
    """hs-export --config tiny --plain --fp32 --no-engines --no-verify --plain-batch 2 --max-batch 4. Not the
    session's tiny_export (tests/conftest.py): that one's plain generator has batch 1 (the fp16 mutation test needs
    it), and plain_batch=2 is what this module tests."""
    from hyperstyle_trt.export.config import ExportConfig
    from hyperstyle_trt.export.pipeline import run_onnx_export

    out = tmp_path_factory.mktemp("hs_export_tiny_plain_b2")
    cfg = ExportConfig(config="tiny", variants=("plain",), precisions=("fp32",), build_engines=False, verify=False,
                       plain_batch=2, max_batch=4, out=out)
    rep = run_onnx_export(cfg, model=tiny_model)
    assert not rep.failed, [a.status for a in rep.failed]
    return out


@pytest.fixture(scope="module")
def ort_inv(ort_export_dir):
    from hyperstyle_trt.runtime import Inverter

    return Inverter.from_export(ort_export_dir, executor="onnxruntime", max_batch=4)


@pytest.fixture(scope="module")
def ort_res(ort_inv, images_f):
    return ort_inv.invert(images_f, n_iters=2, copy=True)


def test_tolerances_are_the_recorded_gates():
    rec = json.loads(RESULTS.read_text())["onnxruntime_executor_tiny"]
    assert rec["gates"] == {"images": IMG_TOL, "deltas": DELTA_TOL, "codes": CODES_TOL,
                            "fine_tuned_generator_images": IMG_TOL}
    for k, observed in rec["observed"].items():
        assert rec["gates"][k] >= 2 * observed, k


def test_executor_facts(ort_inv):
    d = ort_inv.describe()
    assert d["executor"] == "onnxruntime" and d["delta_layout"] == "OIHW" and d["per_channel_layers"] == []
    assert d["fixed_batch"] == {"generator": 2} and ort_inv.rows == 4 and not ort_inv.use_graphs


def test_matches_reference(ort_res, ref5):
    assert _err(ort_res.codes, ref5.codes) <= CODES_TOL
    assert _err(ort_res.images, ref5.iterations[2]) <= IMG_TOL
    assert _err(ort_res.images_pooled, torch.nn.functional.adaptive_avg_pool2d(ref5.iterations[2], 64)) <= IMG_TOL
    for k, d in ref5.iteration_deltas[1].items():
        assert ort_res.deltas[k].shape == d.shape and _err(ort_res.deltas[k], d) <= DELTA_TOL, k
    assert _err(ort_res.images[0], ort_res.images[2]) > 0.05  # distinct rows stay distinct through the padding


def test_binds_the_inverters_buffers(ort_inv, images_f):
    """I/O binding writes straight into the Inverter's buffers (no copies out): a B=1 result is a view of them."""
    r = ort_inv.invert(images_f[:1], n_iters=1)
    assert r.images.data_ptr() == ort_inv.y.data_ptr() and r.raw_deltas["conv1"].data_ptr() == \
        ort_inv.sets[1]["conv1"].data_ptr()


def test_edit_and_fine_tuned_weights(ort_inv, ort_res, tiny_model):
    from hyperstyle_trt.models.stylegan2 import Generator

    zero = ort_inv.edit(ort_res, torch.ones(32), 0)  # B=3 on the 2-row generator: padded chunks
    assert _err(zero, ort_res.images) <= 1e-6
    g = Generator(tiny_model.cfg.generator).eval()
    g.load_state_dict(ort_inv.fine_tuned_weights(ort_res, 2))  # weights from export_summary.json's config
    with torch.no_grad():
        assert _err(g(ort_res.codes[2:]), ort_res.images[2:]) <= IMG_TOL


def test_missing_graph(ort_export_dir, tmp_path):
    from hyperstyle_trt.runtime import Inverter

    part = tmp_path / "partial"
    shutil.copytree(ort_export_dir, part)
    (part / "hypernet_plain_fp32.onnx").unlink()
    with pytest.raises(HsError, match=r"lacks hypernet_plain_fp32.onnx; create it with hs-export --out .* --plain "
                                      r"--fp32 --no-engines") as e:
        Inverter.from_export(part, executor="onnxruntime")
    assert "\n" not in str(e.value)


def test_foreign_graph_refused(ort_export_dir, tmp_path):
    """A file whose I/O is not the contract's (here: the W encoder in the generator's place) is refused by name."""
    from hyperstyle_trt.runtime import Inverter

    part = tmp_path / "swapped"
    shutil.copytree(ort_export_dir, part)
    shutil.copy(part / "w_encoder_fp32.onnx", part / "generator_plain_fp32.onnx")
    with pytest.raises(HsError, match="generator_plain_fp32.onnx: inputs .* are not the contract's"):
        Inverter.from_export(part, executor="onnxruntime")


def test_cpu_refuses_cuda_and_stream(ort_export_dir):
    from hyperstyle_trt.runtime import Inverter

    if not torch.cuda.is_available():
        with pytest.raises(HsError, match="CUDAExecutionProvider|is_available"):
            Inverter.from_export(ort_export_dir, executor="onnxruntime", device="cuda")
    with pytest.raises(HsError, match="stream= applies to CUDA"):
        Inverter.from_export(ort_export_dir, executor="onnxruntime", stream=object())


# ---- IOBinding made once per (graph, batch, parity); the CUDA EP path's options and stream ordering ----------------
@pytest.fixture
def counted(monkeypatch):
    """onnxruntime's IOBinding / InferenceSession wrapped: the sessions IOBindings were made for, bind calls, runs
    and their run options."""
    import onnxruntime as ort

    n = {"made": [], "bind_input": 0, "bind_output": 0, "run_options": []}
    init, bi, bo = ort.IOBinding.__init__, ort.IOBinding.bind_input, ort.IOBinding.bind_output
    run = ort.InferenceSession.run_with_iobinding

    def _init(self, session):
        n["made"].append(session)
        init(self, session)

    def _bi(self, *a, **k):
        n["bind_input"] += 1
        return bi(self, *a, **k)

    def _bo(self, *a, **k):
        n["bind_output"] += 1
        return bo(self, *a, **k)

    def _run(self, iobinding, run_options=None):
        n["run_options"].append(run_options)
        return run(self, iobinding, run_options)

    monkeypatch.setattr(ort.IOBinding, "__init__", _init)
    monkeypatch.setattr(ort.IOBinding, "bind_input", _bi)
    monkeypatch.setattr(ort.IOBinding, "bind_output", _bo)
    monkeypatch.setattr(ort.InferenceSession, "run_with_iobinding", _run)
    return n


def test_bindings_made_once_per_batch_and_parity(ort_export_dir, images_f, ort_res, counted):
    """B=3 then B=1 then both again: each (graph, batch, Δ parity, generator row chunk) is bound once, at its first
    use; later calls bind nothing, and every run skips the end-of-run sync. Results are bitwise those of binding
    every call afresh (the previous behaviour) and of the module's Inverter."""
    from hyperstyle_trt.core.contract import GRAPHS
    from hyperstyle_trt.runtime import Inverter
    from hyperstyle_trt.runtime.executors.onnxruntime_executor import NO_SYNC

    inv = Inverter.from_export(ort_export_dir, executor="onnxruntime", max_batch=4)
    ex = inv.executor
    n_io = {g: len(ex.io(g).input_names) + len(ex.io(g).output_names) for g in GRAPHS}

    def made():
        return {g: sum(s is ex.sessions[g] for s in counted["made"]) for g in GRAPHS}

    def binds():
        return counted["bind_input"] + counted["bind_output"]

    assert made() == {g: 0 for g in GRAPHS} and binds() == 0  # nothing is bound before the first call
    r3 = inv.invert(images_f, n_iters=2, copy=True)
    # B=3, T=2: w_encoder once; hypernet parity 1 and 0; generator (fixed batch 2) rows 0-1 and 2-3 x parity 0, 1
    want = {"w_encoder": 1, "hypernet": 2, "generator": 4}
    assert made() == want and binds() == sum(want[g] * n_io[g] for g in GRAPHS)
    assert len(counted["run_options"]) == 1 + 2 + 3 * 2  # W, H x T, G x (T + 1) x 2 chunks
    before = binds()
    for _ in range(2):
        inv.invert(images_f, n_iters=2)
    assert made() == want and binds() == before  # zero binds per later call
    r1 = inv.invert(images_f[:1], n_iters=2, copy=True)
    # B=1: its own w_encoder and hypernet bindings; the generator's rows 0-1 chunk (both parities) is B=3's
    want = {"w_encoder": 2, "hypernet": 4, "generator": 4}
    assert made() == want and binds() == sum(want[g] * n_io[g] for g in GRAPHS)
    before, runs = binds(), len(counted["run_options"])
    again3 = inv.invert(images_f, n_iters=2, copy=True)
    again1 = inv.invert(images_f[:1], n_iters=2, copy=True)
    inv.invert(images_f, n_iters=5)
    assert made() == want and binds() == before and len(counted["run_options"]) > runs
    assert all(o is ex.run_options for o in counted["run_options"])
    assert ex.run_options.get_run_config_entry(NO_SYNC) == "1"
    for a, b in ((r3, again3), (r3, ort_res), (r1, again1)):
        assert torch.equal(a.images, b.images) and torch.equal(a.codes, b.codes)
        assert all(torch.equal(a.deltas[k], b.deltas[k]) for k in a.deltas)
    ex.binding = ex._bind  # bind every call afresh, as the executor did before
    fresh = inv.invert(images_f, n_iters=2, copy=True)
    assert binds() > before
    assert torch.equal(fresh.images, r3.images) and all(torch.equal(fresh.deltas[k], r3.deltas[k]) for k in r3.deltas)


def test_binding_cache_is_bounded(ort_inv, images_f):
    """Tensors that are not the Inverter's buffers (edit's render chunks) get bindings too, in an LRU sized from
    max_batch: it never grows past it."""
    ex = ort_inv.executor
    io = ex.io("w_encoder")
    keep = []
    for _ in range(ex._lru + 5):
        b = {t.name: torch.zeros(t.concrete(1)) for t in (*io.inputs, *io.outputs)}
        keep.append(b)
        ex.run("w_encoder", b, 1, None)
    assert len(ex._iob["w_encoder"]) == ex._lru == 2 * 4 + 16
    r = ort_inv.invert(images_f, n_iters=2, copy=True)  # plan bindings evicted above are made again, correctly
    assert _err(r.images, ort_inv.invert(images_f, n_iters=2).images) == 0


class _FakeStream:
    """A torch.cuda.Stream stand-in: a handle, the events it was told to wait for; a host sync fails the test."""

    _next = 0x1000

    def __init__(self, device=None, handle=None):
        if handle is None:
            handle, _FakeStream._next = _FakeStream._next, _FakeStream._next + 0x1000
        self.cuda_stream, self.waited = handle, []

    def wait_event(self, event):
        self.waited.append(event)

    def synchronize(self):
        raise AssertionError("host sync in the CUDA EP path")


class _FakeEvent:
    def __init__(self, *a, **k):
        self.recorded = []

    def record(self, stream=None):
        self.recorded.append(stream)

    def synchronize(self):
        raise AssertionError("host sync in the CUDA EP path")


class _FakeBinding:
    def __init__(self):
        self.binds = []

    def bind_input(self, *a):
        self.binds.append(a)

    bind_output = bind_input

    def synchronize_outputs(self):
        raise AssertionError("host sync in the CUDA EP path")

    synchronize_inputs = synchronize_outputs


@pytest.fixture
def fake_cuda(monkeypatch):
    """A CUDA EP that is not there: onnxruntime lists CUDAExecutionProvider, torch.cuda says available, and each
    InferenceSession records its providers (a CPU session answers the I/O checks); IOBindings and runs are recorded.
    """
    import onnxruntime as ort

    real = ort.InferenceSession

    class FakeSession:
        def __init__(self, path, opts=None, providers=None):
            self.providers, self.runs, self.bindings = [providers], [], []
            self._cpu = real(path, opts, providers=["CPUExecutionProvider"])

        def get_inputs(self):
            return self._cpu.get_inputs()

        def get_outputs(self):
            return self._cpu.get_outputs()

        def set_providers(self, providers=None, provider_options=None):
            assert provider_options is None
            self.providers.append(providers)

        def io_binding(self):
            self.bindings.append(_FakeBinding())
            return self.bindings[-1]

        def run_with_iobinding(self, iobinding, run_options=None):
            self.runs.append((iobinding, run_options))

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", FakeSession)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "Stream", _FakeStream)
    monkeypatch.setattr(torch.cuda, "Event", _FakeEvent)


def test_cuda_ep_options_stream_and_ordering(ort_export_dir, fake_cuda):
    """NOT the CUDA EP itself (no GPU, no onnxruntime-gpu here): the options it is given and the ordering around it.
    Sessions are made with the executor's stream as user_compute_stream, re-made once on the Inverter's stream by
    use_stream; runs skip the end-of-run sync; a call on the EP's stream enqueues directly, a call on another stream
    is ordered with two events (no host sync); bindings are made once."""
    from hyperstyle_trt.runtime.executors.onnxruntime_executor import NO_SYNC, OnnxRuntimeExecutor

    ex = OnnxRuntimeExecutor(ort_export_dir, device="cuda")
    assert ex.device == torch.device("cuda", 0) and not ex.capturable
    own = ex._ep_stream

    def cuda_ep(handle):
        return [("CUDAExecutionProvider", {"device_id": "0", "has_user_compute_stream": "1",
                                           "user_compute_stream": str(handle)})]

    assert all(s.providers == [cuda_ep(own.cuda_stream)] for s in ex.sessions.values())
    assert ex.run_options.get_run_config_entry(NO_SYNC) == "1"
    inv_stream = _FakeStream(handle=0xABC000)
    ex.use_stream(inv_stream)
    assert all(s.providers == [cuda_ep(own.cuda_stream), cuda_ep(0xABC000)] for s in ex.sessions.values())
    ex.use_stream(inv_stream)
    ex.use_stream(_FakeStream(handle=0))  # the legacy default stream: ORT ignores handle 0, nothing is re-made
    assert all(len(s.providers) == 2 for s in ex.sessions.values())

    ex.device = torch.device("cpu")  # this fake's tensors are host memory; binding and ordering are what is tested
    io = ex.io("hypernet")
    b = {t.name: torch.zeros(t.concrete(2)) for t in (*io.inputs, *io.outputs)}
    sess = ex.sessions["hypernet"]
    ex.run("hypernet", b, 2, inv_stream)  # on the EP's stream: no events
    assert ex._ready.recorded == [] and ex._done.recorded == [] and inv_stream.waited == []
    other = _FakeStream()
    ex.run("hypernet", b, 2, other)
    assert ex._ready.recorded == [other] and inv_stream.waited == [ex._ready]  # ORT waits for the caller's writes
    assert ex._done.recorded == [inv_stream] and other.waited == [ex._done]  # the caller waits for ORT's outputs
    ex.run("hypernet", b, 2, inv_stream)
    assert len(sess.bindings) == 1 and len(sess.bindings[0].binds) == len(b)  # bound once, at first use
    assert {a[1:3] for a in sess.bindings[0].binds} == {("cuda", 0)}
    assert {a[5] for a in sess.bindings[0].binds} == {t.data_ptr() for t in b.values()}
    assert [r for r in sess.runs] == [(sess.bindings[0], ex.run_options)] * 3


def test_cpu_memory_settings(ort_inv):
    """CPU EP: every session takes its activations from the one shared env arena (grown by what is asked), its
    initializers outside it, and plans no memory pattern (runtime.executors.onnxruntime_executor.session_options)."""
    from hyperstyle_trt.runtime.executors import onnxruntime_executor as X

    assert X.CPU_SESSION_CONFIG == {"session.use_env_allocators": "1",
                                    "session.use_device_allocator_for_initializers": "1"}
    assert X.CPU_ARENA == {"arena_extend_strategy": 1} and X._shared_arena == [True]
    for g, sess in ort_inv.executor.sessions.items():
        o = sess.get_session_options()
        assert not o.enable_mem_pattern and o.enable_cpu_mem_arena, g
        for k, v in X.CPU_SESSION_CONFIG.items():
            assert o.get_session_config_entry(k) == v, (g, k)


def test_cpu_sessions_without_nchwc_match_the_previous_configuration(ort_export_dir, ort_res, images_f, monkeypatch):
    """The CPU sessions are made without ORT's NCHWc layout transformer (session_kwargs): the outputs equal those of
    sessions made with it (the previous configuration) to float rounding, and the transformer does run on these
    graphs when enabled (their optimized generator has NCHWc nodes), so the comparison is not vacuous."""
    import onnx
    import onnxruntime as ort

    from hyperstyle_trt.runtime import Inverter
    from hyperstyle_trt.runtime.executors import onnxruntime_executor as X

    assert X.session_kwargs("cpu") == {"disabled_optimizers": ["NchwcTransformer"]}
    assert X.session_kwargs("cuda") == {}
    opt = ort.SessionOptions()
    opt.log_severity_level = 3
    opt.optimized_model_filepath = str(ort_export_dir.parent / "nchwc_generator.onnx")
    ort.InferenceSession(str(ort_export_dir / X.graph_file("generator", "fp32")), opt,
                         providers=["CPUExecutionProvider"])
    assert any(n.domain == "com.microsoft.nchwc" for n in onnx.load(opt.optimized_model_filepath).graph.node)
    monkeypatch.setattr(X, "CPU_DISABLED_OPTIMIZERS", ())
    prev = Inverter.from_export(ort_export_dir, executor="onnxruntime", max_batch=4)
    assert X.session_kwargs("cpu") == {}
    r = prev.invert(images_f, n_iters=2, copy=True)
    assert _err(r.images, ort_res.images) <= NCHWC_TOL and _err(r.codes, ort_res.codes) <= NCHWC_TOL
    for k, d in r.deltas.items():
        assert _err(d, ort_res.deltas[k]) <= NCHWC_TOL, k
