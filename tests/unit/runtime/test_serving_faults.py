"""Faults against the real server (tritonserver 2.51.0 from `make triton`, 127.0.0.1 only), each through `hs-serve
start` as users run it (a child process, benchmarks.load.HsServe) on the tiny CPU model:

- the python-backend stub SIGKILLed under load: every request ends (answer or error) within the client's timeout,
  the supervisor says why and reloads the model, later answers are correct again (benchmarks.load.run_load checks
  each against the in-process Inverter), and a new stub serves; then the new stub killed too: reloaded again;
- SIGTERM to hs-serve under load: every request ends, hs-serve exits 0, no process of the server's session is
  left, and the three ports can be bound again;
- a repository whose weights are corrupt or changed, or whose export is stale or damaged, or whose model.py is
  another version's: `hs-serve start` refuses it with one line (exit 2) before a server runs; a model that
  tritonserver itself cannot load (no sidecar to check against): one line with the reason from the server's log.

Every load is bounded in count and time; whatever a failing test leaves is stopped by pid in its `finally`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from hyperstyle_trt.core.source import ModelSource
from hyperstyle_trt.runtime.serving.repository import RepoSpec, check_repository, write_repository
from tests.unit.runtime.test_serving import _in_session, _install

pytest.importorskip("tritonclient.http", reason="tritonclient missing: pip install -e .[serve]")

from hyperstyle_trt.benchmarks.load import HsServe, make_reference, run_load  # noqa: E402
from hyperstyle_trt.runtime.serving.server import python_stubs  # noqa: E402

S = 64  # tiny input size


@pytest.fixture(scope="module")
def pool_reference():
    """4 distinct images and their in-process inversions (tiny, torch fp32, T=5): what every answer is checked
    against."""
    pool = np.random.default_rng(23).integers(0, 256, (4, S, S, 3), dtype=np.uint8)
    return (pool, *make_reference(pool, 5, 8))


def _kill_session(pid: int | None) -> None:
    if pid is not None:
        for p, _ in _in_session(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)


def _load(serve: HsServe, ref, **kw) -> dict:
    args = dict(concurrency=3, duration=60.0, max_calls=2000, batch_sizes=(1, 2), pool_size=len(ref[0]), seed=1,
                timeout=30.0, sample_every=1.0, warmup=0.0, kill_stub_at=None, iters=5, max_batch=8,
                log=lambda m: None, reference=ref)
    args.update(kw)
    return run_load(serve.url, serve.pid, **args)


def test_stub_killed_under_load_is_reloaded_and_answers_are_correct_again(tmp_path, pool_reference):
    _install()
    serve = HsServe(tmp_path, ready_timeout=120)
    try:
        serve.ready(130)
        (old,) = python_stubs(serve.pid)["hyperstyle"]
        res = _load(serve, pool_reference, kill_stub_at=3.0, stop_after_recovery=6)
        k = res["kill"]
        assert k["stub_pids"] == [old]
        # nothing hung: every request ended (answer or error) within the client's timeout; no answer was wrong
        assert res["workers_still_running"] == 0 and res["unfinished_calls"] == 0, res
        assert res["slowest_call_s"] < 30.0 and res["wrong"] == 0, res
        assert k["errors_before_kill"] == 0, res
        why = (k, res["error_messages"], serve.lines[-3:])
        assert k["recovered"] and k["ok_after_recovery"] >= 6 and k["errors_after_recovery"] == 0, why
        # the outage's errors: the dead stub's, then (between the supervisor's unload and load) the model's absence
        assert set(res["error_messages"]) <= {"[500] Stub process 'hyperstyle_0_0' is not healthy.",
                                              "[404] Request for unknown model: 'hyperstyle' has no available "
                                              "versions"}, res["error_messages"]
        new = python_stubs(serve.pid)["hyperstyle"]
        assert len(new) == 1 and new != [old]
        why = serve.wait_for(rf"stub process\(es\) \[{old}\] of model 'hyperstyle' exited: reloading", 5)
        done = serve.wait_for(r"recovered by reload in [\d.]+ s", 5)
        assert why and done, serve.lines
        log = Path(f"{serve.repo}.tritonserver.log").read_text()
        assert "hs-serve supervisor" in log and f"[{old}] of model 'hyperstyle' exited" in log
        # again, on the reloaded model (2.51 ignores a plain load of a loaded, unchanged model the second time)
        os.kill(new[0], signal.SIGKILL)
        assert serve.wait_for(rf"recovered by reload in [\d.]+ s \(stub process\(es\) \[{new[0]}\]", 90), serve.lines
        newer = python_stubs(serve.pid)["hyperstyle"]
        assert len(newer) == 1 and newer[0] not in (old, new[0])
        res = _load(serve, pool_reference, max_calls=3, batch_sizes=(2,))
        assert res["ok"] == res["calls"] == 3, res
        assert not [ln for ln in serve.lines if "restarting" in ln], serve.lines
        assert serve.stop() == 0
    finally:
        serve.stop()
        _kill_session(serve.pid)


def test_sigterm_under_load_ends_every_request_and_frees_everything(tmp_path, pool_reference):
    _install()
    serve = HsServe(tmp_path, ready_timeout=120)
    try:
        serve.ready(130)
        stubs = python_stubs(serve.pid)["hyperstyle"]
        box: dict = {}
        th = threading.Thread(target=lambda: box.update(res=_load(serve, pool_reference, duration=40.0,
                                                                    worker_stop_errors=2)), daemon=True)
        th.start()
        time.sleep(3.0)  # load first
        serve.proc.send_signal(signal.SIGTERM)
        rc = serve.proc.wait(60)
        th.join(60)
        assert not th.is_alive()
        res = box["res"]
        assert rc == 0, serve.lines
        assert any(ln.startswith("stopped (tritonserver exit code") for ln in serve.lines), serve.lines
        # every request finished or failed, none hung, none answered wrong; some were answered before the stop
        assert res["workers_still_running"] == 0 and res["unfinished_calls"] == 0 and res["wrong"] == 0, res
        assert res["ok"] >= 1 and res["slowest_call_s"] < 30.0, res
        assert _in_session(serve.pid) == []  # neither tritonserver nor a stub is left
        for pid in [serve.pid, *stubs]:  # gone, or a zombie until init reaps it (a stub's parent has exited)
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
            except OSError:
                state = "gone"
            assert state in ("Z", "X", "gone"), (pid, state)
        for port in serve.ports:  # http, grpc, metrics: free again
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sk:
                sk.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sk.bind(("127.0.0.1", port))
    finally:
        serve.stop()
        _kill_session(serve.pid)


def _checkpoint_repo(tmp_path: Path) -> tuple[Path, Path]:
    from hyperstyle_trt.models.checkpoint import build_model
    from tests.unit._helpers.checkpoints import save_checkpoint, save_w_encoder_checkpoint

    model = build_model("tiny", quiet=True)
    save_checkpoint(model, tmp_path / "hs.pt")
    save_w_encoder_checkpoint(model, tmp_path / "w.pt")
    repo = tmp_path / "repo"
    write_repository(repo, RepoSpec(ModelSource(checkpoint=str(tmp_path / "hs.pt"), w_encoder=str(tmp_path / "w.pt"),
                                                device="cpu"), max_batch=2, threads=1))
    return repo, tmp_path / "hs.pt"


def _start_error(repo: Path, capsys) -> str:
    """`hs-serve start repo` run in this process: its exit code must be 2 and stderr one line; returns it."""
    from hyperstyle_trt.cli.serve import main
    from hyperstyle_trt.runtime.serving.server import free_port

    capsys.readouterr()
    rc = main(["start", str(repo), "--http-port", str(free_port()), "--grpc-port", str(free_port()),
               "--metrics-port", str(free_port()), "--ready-timeout", "120"])
    out, err = capsys.readouterr()
    assert rc == 2, out + err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    return err


def test_corrupt_or_changed_weights_are_refused_before_a_server_starts(tmp_path, capsys):
    repo, ck = _checkpoint_repo(tmp_path)
    assert check_repository(repo) == ["hyperstyle"]
    good = ck.read_bytes()
    ck.write_bytes(good[: len(good) // 2])  # truncated (a copy cut short)
    err = _start_error(repo, capsys)
    assert "HyperStyle checkpoint of model 'hyperstyle'" in err and "truncated" in err and str(ck) in err
    mid = len(good) // 2
    ck.write_bytes(good[:mid] + bytes(64) + good[mid + 64:])  # same size, damaged inside: only the hash tells
    err = _start_error(repo, capsys)
    assert f"{ck}, which model 'hyperstyle' is built from, changed since the repository was written" in err
    ck.write_bytes(good)
    assert check_repository(repo) == ["hyperstyle"]
    model_py = repo / "hyperstyle" / "1" / "model.py"
    model_py.write_text(model_py.read_text() + "\n# another version\n")
    err = _start_error(repo, capsys)
    assert "not this hyperstyle-trt's runtime/serving/model.py" in err and "hs-serve repo" in err


def test_stale_or_damaged_export_is_refused(tmp_path, capsys):
    from hyperstyle_trt.core.sidecar import sha256_files, write_sidecar

    exp = tmp_path / "export"
    exp.mkdir()
    (exp / "export_summary.json").write_text(json.dumps({"config": {"config": "tiny", "checkpoint": None}}))
    (exp / "generator.onnx").write_bytes(b"graph bytes")
    write_sidecar(exp / "generator.onnx", {"sha256": sha256_files([exp / "generator.onnx"]),
                                           "files": ["generator.onnx"]})
    repo = tmp_path / "repo"
    write_repository(repo, RepoSpec(ModelSource(export_dir=str(exp), device="cpu", precision=None)))
    assert check_repository(repo) == ["hyperstyle"]
    (exp / "generator.onnx").write_bytes(b"graph bytez")
    err = _start_error(repo, capsys)
    assert f"export artifact {exp / 'generator.onnx'} of model 'hyperstyle' is corrupt" in err
    assert "run hs-export again" in err
    (exp / "generator.onnx").write_bytes(b"graph bytes")
    (exp / "export_summary.json").write_text(json.dumps({"config": {"config": "tiny"}, "rerun": 1}))
    err = _start_error(repo, capsys)
    assert f"{exp / 'export_summary.json'}, which model 'hyperstyle' is built from, changed" in err
    (exp / "hypernet.onnx").write_bytes(b"new graph")
    write_sidecar(exp / "hypernet.onnx", {"sha256": sha256_files([exp / "hypernet.onnx"]), "files": ["hypernet.onnx"]})
    err = _start_error(repo, capsys)
    assert f"export {exp} of model 'hyperstyle' is stale" in err


def test_model_tritonserver_cannot_load_is_one_line_with_the_logged_reason(tmp_path, capsys):
    """No sidecar to check against (a hand-made or older repository): the corrupt checkpoint reaches the server;
    its stub's initialize fails, tritonserver exits, and hs-serve start says why in one line (exit 2), leaving no
    process behind."""
    _install()
    repo, ck = _checkpoint_repo(tmp_path)
    (repo / "hyperstyle" / "hs_serving.json").unlink()
    ck.write_bytes(ck.read_bytes()[:1000])
    assert check_repository(repo) == []
    err = _start_error(repo, capsys)
    assert "tritonserver exited with code 1 before it was ready" in err and "truncated" in err, err
    assert "hs.pt" in err
    log = Path(f"{repo}.tritonserver.log").read_text()
    assert "failed to load 'hyperstyle'" in log
