"""Serving: the model repository, the real tritonserver (2.51.0 from the nvidia-pytriton 0.7.0 wheel) on 127.0.0.1,
tritonclient[http] against it, outputs compared with `Inverter.invert` run in this process.

The server comes from `make triton` (run here when it has not been: it fetches the wheel with pip download).
The tests skip, with the reason, only when that fails (no registry reachable). The server runs the repository as
written, with this process's environment unchanged (stub_env=False): the repository's own EXECUTION_ENV_PATH must
bring the stubs into the project's venv.

Tolerances (the server merges requests into batches of other sizes than the reference's, and torch's CPU kernels
are not batch-invariant): over every sub-batch of 2..8 of 8 tiny-config images against their batch-1 inversions,
the worst observed differences were 1 level on 1 uint8 value of 49152 per image, and 3.6e-7 on the W+ codes
(|codes| <= 1.9). Gates: <= 1 level on <= 3 values per image, codes <= 1e-6. A request that ran alone must be
bitwise equal.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.core.source import ModelSource
from hyperstyle_trt.runtime.serving.pbtxt import ModelShapes, validate_config
from hyperstyle_trt.runtime.serving.repository import RepoSpec, config_pbtxt, write_repository
from hyperstyle_trt.runtime.serving.server import PROJECT_ROOT, TritonServer, find_tritonserver, free_port

tritonclient_http = pytest.importorskip("tritonclient.http", reason="tritonclient missing: pip install -e .[serve]")
from tritonclient.utils import InferenceServerException  # noqa: E402

MAX_BATCH, ITERS = 8, 5
# uint8 roundings flipped by batch composition: observed 1 level at <= 4 values per image
# (benchmarks/results/cpu_test_observations.json)
IMG_TOL_LEVELS, IMG_TOL_COUNT, CODES_TOL = 1, 6, 1e-6
S, SIZE, N_LATENT, STYLE_DIM = 64, 128, 12, 32  # the tiny config


def _install():
    try:
        return find_tritonserver()
    except HsError:
        pass
    try:
        p = subprocess.run(["make", "-s", "triton"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"tritonserver not found and `make triton` could not run: {e}")
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or p.stdout.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"tritonserver not found and `make triton` failed (nvidia-pytriton wheel not fetched): {last}")
    return find_tritonserver()


def _tiny(**kw) -> ModelSource:
    """The served model's source: the tiny preset, on the CPU (KIND_CPU) unless `device` says otherwise."""
    return ModelSource(**{"config": "tiny", "device": "cpu", "precision": None, **kw})


def _images(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, S, S, 3), dtype=np.uint8)


def make_reference(max_batch: int):
    """run(x uint8 [n,S,S,3]) -> (uint8 inversions, float32 codes) of the in-process Inverter with the served model's
    settings (tiny config, torch fp32 CPU, T=ITERS, 1 thread); what served outputs are compared with."""
    from hyperstyle_trt.runtime import Inverter

    inv = Inverter.from_checkpoint(None, config="tiny", executor="torch", device="cpu", precision="fp32",
                                   max_batch=max_batch)

    def run(x: np.ndarray):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            r = inv.invert(x, n_iters=ITERS)
            return r.to_uint8(), r.codes.detach().float().cpu().numpy().copy()
        finally:
            torch.set_num_threads(threads)

    return run


@pytest.fixture(scope="module")
def reference():
    return make_reference(MAX_BATCH)


@pytest.fixture(scope="module")
def server(tmp_path_factory, request):
    install = _install()
    repo = tmp_path_factory.mktemp("serving") / "repo"
    write_repository(repo, RepoSpec(_tiny(), max_batch=MAX_BATCH, iters=ITERS, threads=1, queue_delay_us=100_000))
    s = TritonServer(repo, install=install, stub_env=False)
    s.start()
    try:
        request.getfixturevalue("reference")(_images(0, 1))  # warm the reference up while the server loads
        s.wait_ready(timeout=90)
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def client(server):
    c = tritonclient_http.InferenceServerClient(server.http_url, concurrency=8, network_timeout=60)
    yield c
    c.close()


def _request(x: np.ndarray, dtype: str = "UINT8"):
    inp = tritonclient_http.InferInput("image", list(x.shape), dtype)
    inp.set_data_from_numpy(x, binary_data=True)
    return [inp]


def _batch_counts(client) -> dict[int, int]:
    st = client.get_inference_statistics("hyperstyle")["model_stats"][0]
    return {int(b["batch_size"]): int(b["compute_infer"]["count"]) for b in st["batch_stats"]}


def _assert_close(got_img, got_codes, ref_img, ref_codes, what: str) -> None:
    assert got_img.dtype == np.uint8 and got_img.shape == ref_img.shape, what
    assert got_codes.dtype == np.float32 and got_codes.shape == ref_codes.shape, what
    d = np.abs(got_img.astype(np.int16) - ref_img.astype(np.int16))
    assert d.max() <= IMG_TOL_LEVELS, f"{what}: image differs by {d.max()} levels"
    per_image = (d > 0).reshape(d.shape[0], -1).sum(1)
    assert per_image.max() <= IMG_TOL_COUNT, f"{what}: {per_image.tolist()} differing values per image"
    err = float(np.abs(got_codes - ref_codes).max())
    assert err <= CODES_TOL, f"{what}: codes differ by {err:.3g}"


def test_repository_config_is_valid_and_served_as_written(server, client):
    meta = client.get_server_metadata()
    assert meta["version"] == "2.51.0"
    cfg = client.get_model_config("hyperstyle")
    assert cfg["max_batch_size"] == MAX_BATCH
    (inp,) = cfg["input"]
    assert (inp["name"], inp["data_type"], [int(d) for d in inp["dims"]]) == ("image", "TYPE_UINT8", [S, S, 3])
    outs = {o["name"]: (o["data_type"], [int(d) for d in o["dims"]]) for o in cfg["output"]}
    assert outs == {"inversion": ("TYPE_UINT8", [SIZE, SIZE, 3]), "codes": ("TYPE_FP32", [N_LATENT, STYLE_DIM])}
    assert [int(b) for b in cfg["dynamic_batching"]["preferred_batch_size"]] == [2, 4, 8]
    assert [(g["kind"], g["count"]) for g in cfg["instance_group"]] == [("KIND_CPU", 1)]
    params = {k: v["string_value"] for k, v in cfg["parameters"].items()}
    assert params["config"] == "tiny" and params["iters"] == str(ITERS) and params["executor"] == "torch"
    assert Path(params["EXECUTION_ENV_PATH"]).is_dir()
    # the stub ran the project's venv (this process's PATH was left alone): the model's initialize logs its prefix
    import sys

    assert f"Inverter on cpu, python {sys.version.split()[0]} in {sys.prefix}, torch" in server.log_tail(400)
    text = (server.repo / "hyperstyle" / "config.pbtxt").read_text()
    assert validate_config(text) is not None


def test_single_request_runs_alone_and_is_bitwise_equal(server, client, reference):
    x = _images(100, 3)
    before = _batch_counts(client)
    t0 = time.perf_counter()
    res = client.infer("hyperstyle", _request(x))
    first_s = time.perf_counter() - t0
    after = _batch_counts(client)
    assert after.get(3, 0) - before.get(3, 0) == 1, (before, after)
    ref_img, ref_codes = reference(x)
    np.testing.assert_array_equal(res.as_numpy("inversion"), ref_img)
    np.testing.assert_array_equal(res.as_numpy("codes"), ref_codes)
    assert first_s < 60


def test_concurrent_requests_are_merged_and_match(server, client, reference):
    sizes = [1, 3, 1, 3, 1, 3, 1, 3]  # 16 images, distinct per request, so a mix-up between requests shows
    xs = [_images(200 + i, n) for i, n in enumerate(sizes)]
    before = _batch_counts(client)
    pending = [client.async_infer("hyperstyle", _request(x)) for x in xs]
    results = [p.get_result(block=True, timeout=90) for p in pending]
    after = _batch_counts(client)
    executed = {b: after.get(b, 0) - before.get(b, 0) for b in after if after.get(b, 0) != before.get(b, 0)}
    assert sum(b * n for b, n in executed.items()) == sum(sizes), executed
    assert sum(executed.values()) < len(sizes), f"no request was merged: executions by batch size {executed}"
    assert any(b not in (1, 3) for b in executed), f"no merged batch size: {executed}"
    for i, (x, r) in enumerate(zip(xs, results)):
        ref_img, ref_codes = reference(x)
        _assert_close(r.as_numpy("inversion"), r.as_numpy("codes"), ref_img, ref_codes, f"request {i} (batch {len(x)})")


def test_bad_requests_get_clear_errors_and_server_stays_healthy(server, client, reference):
    with pytest.raises(InferenceServerException) as e:
        client.infer("hyperstyle", _request(_images(1, 1)[:, :32, :32]))
    assert "unexpected shape for input 'image'" in e.value.message() and "[-1,64,64,3]" in e.value.message()
    with pytest.raises(InferenceServerException) as e:
        client.infer("hyperstyle", _request(_images(2, 1).astype(np.float32), "FP32"))
    assert "image" in e.value.message() and "UINT8" in e.value.message()
    with pytest.raises(InferenceServerException) as e:
        client.infer("hyperstyle", _request(_images(3, MAX_BATCH + 1)))
    assert "batch size" in e.value.message().lower() or str(MAX_BATCH) in e.value.message()
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("hyperstyle")
    x = _images(4, 1)
    res = client.infer("hyperstyle", _request(x))
    ref_img, ref_codes = reference(x)
    np.testing.assert_array_equal(res.as_numpy("inversion"), ref_img)


def test_client_helper(server, reference):
    from hyperstyle_trt.runtime.serving.client import InversionClient

    x = _images(5, 2)
    with InversionClient(server.http_url) as c:
        assert c.item_shape == (S, S, 3)
        out = c.invert(x)
        with pytest.raises(HsError, match=r"uint8 \[B,64,64,3\]"):
            c.invert(x[:, :10])
        with pytest.raises(HsError, match="uint8"):
            c.invert(x.astype(np.float32))
    ref_img, ref_codes = reference(x)
    np.testing.assert_array_equal(out.inversion, ref_img)
    np.testing.assert_array_equal(out.codes, ref_codes)


def test_cli_infer_writes_what_the_inverter_gives(server, reference, tmp_path):
    from PIL import Image

    from hyperstyle_trt.cli.serve import main

    x = _images(6, 1)
    Image.fromarray(x[0]).save(tmp_path / "face.png")
    Image.fromarray(x[0]).save(tmp_path / "bad.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    # --no-align: the file is already a square crop of the model's size (noise: no face to align; the aligned path
    # is tested in test_serving_infer.py)
    assert main(["infer", str(tmp_path / "face.png"), str(tmp_path / "bad.png"), "--url", server.http_url,
                 "--out", str(tmp_path / "out"), "--no-align"]) == 1  # the bad file is reported, the good one written
    ref_img, ref_codes = reference(x)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "face.png")), ref_img[0])
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "face_codes.npy"), ref_codes[0])
    assert not (tmp_path / "out" / "bad.png").exists()


def test_metrics_the_autoscaler_reads_exist(server):
    """deploy/kubernetes/prometheus-adapter-rules.yaml queries Triton metrics by name: each must be served."""
    import re
    import urllib.request

    rules = (PROJECT_ROOT / "deploy" / "kubernetes" / "prometheus-adapter-rules.yaml").read_text()
    names = set(re.findall(r"\bnv_[a-z_]+\b", "\n".join(ln for ln in rules.splitlines()
                                                         if not ln.lstrip().startswith("#"))))
    assert {"nv_inference_queue_duration_us", "nv_inference_request_success"} <= names
    with urllib.request.urlopen(server.metrics_url, timeout=10) as r:
        served = {ln.split("{")[0].split()[0] for ln in r.read().decode().splitlines() if ln and ln[0] != "#"}
    assert names <= served, names - served


def _listening(ports: set[int]) -> list[tuple[str, int]]:
    """(local address hex, port) of LISTEN sockets on `ports` from /proc/net/tcp{,6}."""
    found = []
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(f).read_text().splitlines()[1:]
        except OSError:
            continue
        for ln in lines:
            cols = ln.split()
            addr, port = cols[1].rsplit(":", 1)
            if cols[3] == "0A" and int(port, 16) in ports:
                found.append((addr, int(port, 16)))
    return found


def test_binds_loopback_only_then_stops_by_pid(server, client):
    client.close()  # an open keep-alive connection holds the shutdown until --exit-timeout-secs (30 s)
    ports = {server.http_port, server.grpc_port, server.metrics_port}
    socks = _listening(ports)
    assert {p for _, p in socks} == ports, socks
    loopback = {"0100007F", "0000000000000000FFFF00000100007F"}  # 127.0.0.1, ::ffff:127.0.0.1 (little-endian hex)
    assert all(a in loopback for a, _ in socks), socks
    pid = server.pid
    os.kill(pid, 0)
    t0 = time.monotonic()
    rc = server.stop(kill_after=45)
    assert time.monotonic() - t0 < 45 and rc == 0, rc
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not _listening(ports)


# ---- no server needed ------------------------------------------------------------------------------------------------
def test_repo_spec_rejects_bad_input(tmp_path):
    """The model source is validated once, by core.source.ModelSource; RepoSpec adds the serving checks."""
    with pytest.raises(HsError, match="--w-encoder"):
        RepoSpec(ModelSource(checkpoint=str(tmp_path / "missing.pt"), device="cpu"))
    with pytest.raises(HsError, match="checkpoint not found"):
        RepoSpec(ModelSource(checkpoint=str(tmp_path / "missing.pt"), w_encoder=str(tmp_path / "w.pt"), device="cpu"))
    with pytest.raises(HsError, match="--export-dir carries its own"):
        RepoSpec(_tiny(export_dir=str(tmp_path)))
    with pytest.raises(HsError, match="bad device 'tpu'"):
        RepoSpec(_tiny(device="tpu"))
    for device in ("auto", "cuda:1"):  # valid elsewhere, but a served instance is KIND_CPU or KIND_GPU
        with pytest.raises(HsError, match="--device must be one of"):
            RepoSpec(_tiny(device=device))
    with pytest.raises(HsError, match="RepoSpec.source must be a core.source.ModelSource"):
        RepoSpec("tiny")
    with pytest.raises(HsError, match="--max-batch"):
        RepoSpec(_tiny(), max_batch=0)
    with pytest.raises(HsError, match=r"outside 1\.\.4"):
        RepoSpec(_tiny(), max_batch=4, preferred=(2, 8))
    with pytest.raises(HsError, match="export_summary.json"):
        write_repository(tmp_path / "r", RepoSpec(ModelSource(export_dir=str(tmp_path), device="cpu")))


def test_gpu_config_text_and_schema_check():
    spec = RepoSpec(_tiny(device="cuda"), instances=2, max_batch=4)
    text = config_pbtxt(spec, ModelShapes(S, SIZE, N_LATENT, STYLE_DIM), None)
    cfg = validate_config(text)
    if cfg is None:
        pytest.skip("tritonclient's model_config_pb2 / protobuf not importable")
    assert [(g.kind, g.count) for g in cfg.instance_group] == [(cfg.instance_group[0].KIND_GPU, 2)]
    assert list(cfg.dynamic_batching.preferred_batch_size) == [2, 4] and cfg.max_batch_size == 4
    assert cfg.parameters["FORCE_CPU_ONLY_INPUT_TENSORS"].string_value == "yes"
    with pytest.raises(HsError, match="not a valid Triton ModelConfig"):
        validate_config(text.replace("max_batch_size", "max_batch_sise"))


def test_cli_repo_and_errors(tmp_path, capsys, monkeypatch):
    from hyperstyle_trt.cli.serve import main

    assert main(["repo", str(tmp_path / "r"), "--config", "tiny", "--max-batch", "4", "--instances", "2"]) == 0
    text = (tmp_path / "r" / "hyperstyle" / "config.pbtxt").read_text()
    assert "max_batch_size: 4" in text and "count: 2" in text and "KIND_CPU" in text
    assert (tmp_path / "r" / "hyperstyle" / "1" / "model.py").read_bytes() == \
        (PROJECT_ROOT / "hyperstyle_trt" / "runtime" / "serving" / "model.py").read_bytes()
    capsys.readouterr()
    assert main(["repo", str(tmp_path / "x"), "--checkpoint", "a.pt"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--w-encoder" in err and len(err.strip().splitlines()) == 1
    monkeypatch.setenv("TRITONSERVER", str(tmp_path / "no_such_tritonserver"))
    assert main(["start", str(tmp_path / "r"), "--http-port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert "$TRITONSERVER is not an executable file" in err and len(err.strip().splitlines()) == 1


_ECHO_MODEL = '''
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    def execute(self, requests):
        return [pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor.from_dlpack(
            "y", pb_utils.get_input_tensor_by_name(r, "x"))]) for r in requests]
'''


def _in_session(sid: int) -> list[tuple[int, str]]:
    """(pid, name) of every live process of session `sid` or whose parent is `sid` (/proc)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            text = Path(f"/proc/{entry}/stat").read_text() if entry.isdigit() else ""
        except OSError:
            continue
        if text:
            f = text[text.rindex(")") + 2:].split()
            if f[0] not in "ZX" and sid in (int(f[1]), int(f[3])):
                found.append((int(entry), text[text.index("(") + 1:text.rindex(")")]))
    return found


def test_cli_start_waits_for_ready_and_stops_on_ctrl_c(tmp_path):
    """`hs-serve start` on a one-model repository (an echo model, no torch in the stub): prints ready, answers,
    and on Ctrl-C (SIGINT; SIGTERM goes to the same handler) stops the server and exits 0, leaving no
    tritonserver behind."""
    import signal
    import sys

    _install()
    m = tmp_path / "repo" / "echo"
    (m / "1").mkdir(parents=True)
    (m / "1" / "model.py").write_text(_ECHO_MODEL)
    (m / "config.pbtxt").write_text('name: "echo"\nbackend: "python"\nmax_batch_size: 4\n'
                                    'input [ { name: "x", data_type: TYPE_UINT8, dims: [ 3 ] } ]\n'
                                    'output [ { name: "y", data_type: TYPE_UINT8, dims: [ 3 ] } ]\n')
    port = free_port()
    cmd = [sys.executable, "-m", "hyperstyle_trt.cli.serve", "start", str(tmp_path / "repo"), "--http-port", str(port),
           "--grpc-port", str(free_port()), "--metrics-port", str(free_port()), "--ready-timeout", "60"]
    p = subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in p.stdout:
            lines.append(line)
            if line.startswith("ready after"):
                break
        assert lines and lines[-1].startswith("ready after"), "".join(lines)
        server_pid = int(lines[-1].split("(pid ")[1].split(")")[0])
        c = tritonclient_http.InferenceServerClient(f"127.0.0.1:{port}")
        x = np.array([[1, 2, 3], [250, 251, 252]], dtype=np.uint8)
        inp = tritonclient_http.InferInput("x", list(x.shape), "UINT8")
        inp.set_data_from_numpy(x)
        np.testing.assert_array_equal(c.infer("echo", [inp]).as_numpy("y"), x)
        c.close()
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=45)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, "".join(lines) + out
    assert "stopped (tritonserver exit code 0)" in out
    with pytest.raises(ProcessLookupError):
        os.kill(server_pid, 0)
    assert _in_session(server_pid) == []  # its stubs are gone too


def test_repository_from_checkpoint_and_export_dir(tmp_path):
    """The model's shapes come from the checkpoint's opts / the export's summary, without building an Inverter."""
    import json

    from hyperstyle_trt.models.checkpoint import build_model
    from tests.unit._helpers.checkpoints import save_checkpoint, save_w_encoder_checkpoint
    from hyperstyle_trt.runtime.serving.pbtxt import read_parameters

    model = build_model("tiny", quiet=True)
    save_checkpoint(model, tmp_path / "hs.pt")
    save_w_encoder_checkpoint(model, tmp_path / "w.pt")
    ck = dict(checkpoint=str(tmp_path / "hs.pt"), w_encoder=str(tmp_path / "w.pt"), device="cpu")
    d = write_repository(tmp_path / "r1", RepoSpec(ModelSource(**ck), max_batch=2))
    text = (d / "config.pbtxt").read_text()
    assert f"dims: [ {S}, {S}, 3 ]" in text and f"dims: [ {N_LATENT}, {STYLE_DIM} ]" in text
    cfg = validate_config(text)
    if cfg is not None:
        params = read_parameters({"parameters": {k: {"string_value": v.string_value}
                                                 for k, v in cfg.parameters.items()}})
        assert params["checkpoint"] == str(tmp_path / "hs.pt") and params["w_encoder"] == str(tmp_path / "w.pt")
        assert "config" not in params
    with pytest.raises(HsError, match="disagrees with the checkpoint"):
        write_repository(tmp_path / "r2", RepoSpec(ModelSource(config="ffhq256", **ck)))
    exp = tmp_path / "export"
    exp.mkdir()
    (exp / "export_summary.json").write_text(json.dumps({"config": {"config": "tiny", "checkpoint": None}}))
    d = write_repository(tmp_path / "r3", RepoSpec(ModelSource(export_dir=str(exp), device="cpu", precision=None)))
    text = (d / "config.pbtxt").read_text()
    assert f"dims: [ {SIZE}, {SIZE}, 3 ]" in text and 'key: "executor", value: { string_value: "tensorrt" }' in text
    assert 'key: "export_dir"' in text and 'key: "precision", value: { string_value: "" }' in text


def test_request_batch_gathers_and_scatters_without_a_server():
    """runtime.serving.batching (used by model.py and bls_model.py) with a stand-in for triton_python_backend_utils:
    requests without `image` or refused by the check get their own error; the others are concatenated in order and
    each answered with its own rows; a failure answers every gathered request with one line."""
    from types import SimpleNamespace

    from hyperstyle_trt.runtime.serving.batching import RequestBatch

    class Tensor:
        def __init__(self, name, t):
            self.name, self.t = name, t

        def to_dlpack(self):
            return torch.utils.dlpack.to_dlpack(self.t)

        @classmethod
        def from_dlpack(cls, name, t):
            return cls(name, t)

    pb = SimpleNamespace(
        Tensor=Tensor, TritonError=lambda msg: msg,
        InferenceResponse=lambda output_tensors, error=None: SimpleNamespace(outputs=output_tensors, error=error),
        get_input_tensor_by_name=lambda r, name: r.get(name))
    xs = [torch.full((n, 2, 2, 3), k, dtype=torch.uint8) for k, n in enumerate((1, 3, 2))]
    reqs = [{"image": Tensor("image", xs[0])}, {}, {"image": Tensor("image", xs[1])},
            {"image": Tensor("image", torch.zeros(1, 2, 2, 3))}, {"image": Tensor("image", xs[2])}]

    def check(x):
        return None if x.dtype == torch.uint8 else f"input 'image' must be UINT8, got {x.dtype}"

    b = RequestBatch(reqs, pb, check=check)
    assert b.ok == [0, 2, 4] and torch.equal(b.images, torch.cat(xs))
    assert b.responses[1].error == "request has no input 'image'"
    assert b.responses[3].error == "input 'image' must be UINT8, got torch.float32"
    out = b.answer(double=b.images.int() * 2, first=b.images[:, 0, 0, 0])
    for i, x in zip((0, 2, 4), xs):
        got = {t.name: t.t for t in out[i].outputs}
        assert torch.equal(got["double"], x.int() * 2) and torch.equal(got["first"], x[:, 0, 0, 0])
    assert out[1].error and out[3].error
    failed = RequestBatch(reqs, pb, check=check).fail("hyperstyle: inversion failed", RuntimeError("boom\nmore"))
    assert [r.error for r in failed] == ["hyperstyle: inversion failed: RuntimeError: boom", "request has no input "
                                         "'image'", "hyperstyle: inversion failed: RuntimeError: boom",
                                         "input 'image' must be UINT8, got torch.float32",
                                         "hyperstyle: inversion failed: RuntimeError: boom"]
    assert RequestBatch([{}], pb).images is None
