"""What a stopped tritonserver leaves behind, and the memory pool flags on the real server (2.51.0 from `make
triton`, 127.0.0.1 only): python-backend stubs run in the server's session and keep it after their parent dies,
so `TritonServer.stop` (and `hs-serve start` on SIGTERM) kills what is left there. Every wait here is bounded in
count and time; whatever a failing test leaves is killed by pid in its `finally`.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.runtime.serving.server import PROJECT_ROOT, TritonServer, free_port
from tests.unit.runtime.test_serving import _ECHO_MODEL, _in_session, _install


_BAD_MODEL = '''
import json

class TritonPythonModel:
    def initialize(self, args):
        value = json.loads(args["model_config"])["parameters"]["scale"]["string_value"]
        raise ValueError(f"corrupt parameter scale={value!r}: expected a number")

    def execute(self, requests):
        return []
'''
_SLOW_MODEL = '''
import time

class TritonPythonModel:
    def initialize(self, args):
        time.sleep(600)  # stands in for a long load (torch import, engine deserialization)

    def execute(self, requests):
        return []
'''


def _model(repo: Path, name: str, code: str, params: str = "") -> None:
    (repo / name / "1").mkdir(parents=True)
    (repo / name / "1" / "model.py").write_text(code)
    (repo / name / "config.pbtxt").write_text(f'name: "{name}"\nbackend: "python"\nmax_batch_size: 4\n'
                                              'input [ { name: "x", data_type: TYPE_UINT8, dims: [ 3 ] } ]\n'
                                              'output [ { name: "y", data_type: TYPE_UINT8, dims: [ 3 ] } ]\n'
                                              + params)


def _kill_all(pids) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)


def test_failed_load_leaves_no_stub_behind(tmp_path):
    """A model whose `initialize` fails on a corrupt parameter: the server exits before it is ready, the start
    fails with the model's message, and after stop() nothing the server started is left (/proc)."""
    install = _install()
    _model(tmp_path / "repo", "bad", _BAD_MODEL, 'parameters: { key: "scale", value: { string_value: "x1" } }\n')
    s = TritonServer(tmp_path / "repo", install=install).start()
    try:
        with pytest.raises(HsError, match=r"exited with code 1 .*corrupt parameter scale='x1'"):
            s.wait_ready(timeout=60)
        s.stop()
        assert _in_session(s.pid) == []
    finally:
        if s.proc.poll() is None:
            s.proc.kill()
        _kill_all(p for p, _ in _in_session(s.pid))


def test_sigterm_to_hs_serve_during_a_failed_load_kills_the_orphaned_stub(tmp_path):
    """One model fails in `initialize` while another is still inside its `initialize`: SIGTERM to `hs-serve start`
    ends the server before its own shutdown runs, and the loading model's stub (same session, re-parented to init)
    would outlive it; hs-serve kills it and says so."""
    import signal
    import sys

    _install()
    repo = tmp_path / "repo"
    _model(repo, "bad", _BAD_MODEL, 'parameters: { key: "scale", value: { string_value: "x1" } }\n')
    _model(repo, "slow", _SLOW_MODEL)
    cmd = [sys.executable, "-m", "hyperstyle_trt.cli.serve", "start", str(repo), "--http-port", str(free_port()),
           "--grpc-port", str(free_port()), "--metrics-port", str(free_port()), "--ready-timeout", "120"]
    p = subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    server_pid, stubs = None, []
    try:
        log = repo.parent / "repo.tritonserver.log"
        for _ in range(600):  # up to 60 s: the server has started, `bad` has failed, `slow`'s stub is loading
            time.sleep(0.1)
            if server_pid is None:
                server_pid = next((pid for pid, name in _in_session(p.pid) if name == "tritonserver"), None)
            if server_pid is not None and log.exists() and "failed to load 'bad'" in log.read_text():
                stubs = [pid for pid, name in _in_session(server_pid) if name.startswith("triton_python")]
                if stubs:
                    break
        assert server_pid is not None and stubs, (server_pid, log.read_text()[-2000:] if log.exists() else "")
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0, out
        assert re.search(r"stopped \(tritonserver exit code -?\d+, killed [1-9]\d* process\(es\) it left behind\)",
                         out), out
        assert _in_session(server_pid) == []  # no stub whose parent or session was that server remains
        for pid in stubs:  # killed: gone, or a zombie until init reaps it
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
            except OSError:
                state = "gone"
            assert state in ("Z", "X", "gone"), (pid, state)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if server_pid is not None:
            _kill_all(pid for pid, _ in _in_session(server_pid))


def test_pool_flags_reach_the_real_server(tmp_path):
    """The flags runtime.serving.pools derives from a sidecar are accepted by tritonserver 2.51 and show in its
    option table (on this GPU-less machine it then disables the pools, harmlessly)."""
    import json

    from hyperstyle_trt.runtime.serving.pools import repository_pools, transfer_record

    install = _install()
    repo = tmp_path / "repo"
    _model(repo, "echo", _ECHO_MODEL)
    rec = transfer_record("ngc", "KIND_GPU", 1, 8, 5, 1000, {"call_inputs": 100 << 20})
    (repo / "echo" / "hs_serving.json").write_text(json.dumps({"pools": rec}))
    pools = repository_pools(repo, gpus=(0, 1))
    assert pools.cuda == ((0, 125 << 20), (1, 125 << 20)) and pools.pinned == 256 << 20
    with TritonServer(repo, install=install, extra_args=tuple(pools.flags())) as s:
        assert s.is_ready()
        log = s.log_tail(400)
    table = {ln.split("|")[1].strip(): ln.split("|")[2].strip() for ln in log.splitlines() if ln.count("|") >= 3}
    assert table["cuda_memory_pool_byte_size{0}"] == table["cuda_memory_pool_byte_size{1}"] == str(125 << 20)
    assert table["pinned_memory_pool_byte_size"] == str(256 << 20)
