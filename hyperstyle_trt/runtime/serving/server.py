"""Start, wait for, and stop a local Triton Inference Server (`tritonserver`) for a generated model repository.

Where the binary comes from, in order: an explicit path (`hs-serve start --tritonserver`), `$TRITONSERVER`, then the
folder `make triton` fills (`.triton/` at the project root: the nvidia-pytriton 0.7.0 wheel unpacked, which holds
tritonserver 2.51.0 and its python backend). Nothing here downloads anything.

The server binds 127.0.0.1 unless told otherwise (HTTP, gRPC and metrics alike), writes its log to a file, and is
stopped with SIGTERM (Triton's graceful shutdown), then SIGKILL after a bounded wait. It runs in a session of its
own, which its python-backend stubs (`triton_python_backend_stub`) inherit: once the server has exited, whatever is
left in that session (a stub still inside `initialize` when a failed load or a SIGTERM ended the server, re-parented
to init) is killed (`session_processes`, `TritonServer.reap_stubs`). The python backend's stubs run
the interpreter of the environment given as `python_env` (default: the one running this code): its `bin` goes
first on PATH (the stub's isolated interpreter finds its venv through the `python3` on PATH) and its libpython's
directory first on LD_LIBRARY_PATH (the stub must load the same libpython as that environment's own).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from hyperstyle_trt.core.errors import HsError

PROJECT_ROOT = Path(__file__).resolve().parents[3]
#: Where `make triton` unpacks the wheel (relative to the project root).
MAKE_TRITON_HOME = PROJECT_ROOT / ".triton" / "wheel" / "pytriton" / "tritonserver"
STUB = "triton_python_backend_stub"


@dataclass(frozen=True)
class TritonInstall:
    """A tritonserver binary with its backend and cache directories (the wheel's layout: <home>/bin/tritonserver,
    <home>/backends/python/{libtriton_python.so, triton_python_backend_stub}, <home>/caches)."""

    binary: Path
    backend_dir: Path
    cache_dir: Path | None


def _install_from_binary(binary: Path, origin: str) -> TritonInstall:
    if not binary.is_file() or not os.access(binary, os.X_OK):
        raise HsError(f"tritonserver from {origin} is not an executable file: {binary}")
    home = binary.resolve().parent.parent
    backends = home / "backends"
    if not (backends / "python" / "libtriton_python.so").is_file():
        # Not the wheel's layout (e.g. an NGC install in /opt/tritonserver): trust the server's own default.
        return TritonInstall(binary=binary, backend_dir=backends if backends.is_dir() else Path(), cache_dir=None)
    if not (backends / "python" / STUB).is_file():
        ver = "%d.%d" % sys.version_info[:2]
        raise HsError(f"{backends / 'python' / STUB} is missing: copy {home}/python_backend_stubs/{ver}/{STUB} "
                      f"there (make triton does)")
    caches = home / "caches"
    return TritonInstall(binary=binary, backend_dir=backends, cache_dir=caches if caches.is_dir() else None)


def find_tritonserver(explicit: str | os.PathLike | None = None) -> TritonInstall:
    """The tritonserver to run: `explicit`, else $TRITONSERVER, else the `make triton` folder. HsError (one line)
    when none is there."""
    if explicit:
        return _install_from_binary(Path(explicit), "--tritonserver")
    env = os.environ.get("TRITONSERVER")
    if env:
        return _install_from_binary(Path(env), "$TRITONSERVER")
    default = MAKE_TRITON_HOME / "bin" / "tritonserver"
    if default.exists():
        return _install_from_binary(default, "`make triton`")
    raise HsError("no tritonserver found: pass --tritonserver PATH, set $TRITONSERVER, or run `make triton` "
                  f"(it unpacks one into {MAKE_TRITON_HOME.parent.parent.parent})")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on `host` a moment ago (the OS picks it; another process may take it later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def stub_environment(python_env: str | os.PathLike | None = None, base: dict | None = None,
                     omp_threads: int | None = 1) -> dict:
    """Environment variables for the server process so that python-backend stubs run `python_env` (a venv or
    prefix; default: the running interpreter's `sys.prefix`) with the libpython of the running interpreter.
    `omp_threads`: OMP_NUM_THREADS for the stubs (one per instance avoids oversubscribing a few cores); None
    leaves it as it is."""
    env = dict(os.environ if base is None else base)
    prefix = Path(python_env) if python_env else Path(sys.prefix)
    if not (prefix / "bin").is_dir():
        raise HsError(f"python environment {prefix} has no bin/ directory")
    env["PATH"] = f"{prefix / 'bin'}{os.pathsep}{env.get('PATH', '')}".rstrip(os.pathsep)
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir:
        env["LD_LIBRARY_PATH"] = f"{libdir}{os.pathsep}{env.get('LD_LIBRARY_PATH', '')}".rstrip(os.pathsep)
    env.pop("PYTHONHOME", None)
    if omp_threads is not None:
        env["OMP_NUM_THREADS"] = str(omp_threads)
    return env


def _stat(pid: int) -> tuple[str, int, int, int, int] | None:
    """(state, ppid, process group, session, start time in clock ticks after boot) from /proc/<pid>/stat, or None
    when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    f = text[text.rindex(")") + 2:].split()  # after "pid (comm) ": state ppid pgrp session ... starttime (22nd)
    return f[0], int(f[1]), int(f[2]), int(f[3]), int(f[19])


def session_processes(sid: int, started_since: int = 0) -> list[int]:
    """Live (not zombie) processes of session `sid` that started at or after `started_since` (clock ticks after
    boot): what a server started as session leader `sid` left behind once it has exited."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None and st[3] == sid and st[0] not in "ZX" and st[4] >= started_since:
                found.append(int(entry))
    return found


class TritonServer:
    """One local tritonserver process for `repo`.

    `start()` launches it (ports: given or free ones), `wait_ready(timeout)` polls /v2/health/ready, `stop()` sends
    SIGTERM and waits (SIGKILL after `kill_after` s), then kills what the server left in its session
    (`reap_stubs`; their pids in `reaped`). Also a context manager (start + wait_ready / stop). The server's
    stdout and stderr go to `log_file` (default: <repo>/../<repo name>.tritonserver.log). `stub_env`: set PATH /
    LD_LIBRARY_PATH / OMP_NUM_THREADS for the stubs (`stub_environment`); False passes this process's environment
    unchanged (repositories written by hs-serve repo carry their own EXECUTION_ENV_PATH)."""

    def __init__(self, repo: str | os.PathLike, install: TritonInstall | None = None, host: str = "127.0.0.1",
                 http_port: int | None = None, grpc_port: int | None = None, metrics_port: int | None = None,
                 log_file: str | os.PathLike | None = None, python_env: str | os.PathLike | None = None,
                 omp_threads: int | None = 1, gpu_metrics: bool | None = None, extra_args: tuple[str, ...] = (),
                 stub_env: bool = True):
        self.repo = Path(repo).resolve()
        if not self.repo.is_dir():
            raise HsError(f"model repository {self.repo} is not a directory")
        self.install = install or find_tritonserver()
        self.host = host
        self.http_port = http_port or free_port(host)
        self.grpc_port = grpc_port or free_port(host)
        self.metrics_port = metrics_port or free_port(host)
        self.log_file = Path(log_file) if log_file else self.repo.parent / f"{self.repo.name}.tritonserver.log"
        self.python_env = python_env
        self.omp_threads = omp_threads
        self.gpu_metrics = Path("/dev/nvidiactl").exists() if gpu_metrics is None else gpu_metrics
        self.extra_args = tuple(extra_args)
        self.stub_env = stub_env
        self.proc: subprocess.Popen | None = None
        self.started_ticks = 0
        self.reaped: list[int] = []

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    @property
    def http_url(self) -> str:
        """host:port for tritonclient.http (no scheme)."""
        return f"{self.host}:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.metrics_port}/metrics"

    def command(self) -> list[str]:
        cmd = [str(self.install.binary), f"--model-repository={self.repo}",
               f"--http-address={self.host}", f"--http-port={self.http_port}",
               f"--grpc-address={self.host}", f"--grpc-port={self.grpc_port}",
               f"--metrics-address={self.host}", f"--metrics-port={self.metrics_port}",
               f"--allow-gpu-metrics={'true' if self.gpu_metrics else 'false'}",
               "--exit-timeout-secs=30"]
        if self.install.backend_dir != Path():
            cmd.append(f"--backend-directory={self.install.backend_dir}")
        if self.install.cache_dir is not None:
            cmd.append(f"--cache-directory={self.install.cache_dir}")
        return cmd + list(self.extra_args)

    def start(self) -> "TritonServer":
        if self.proc is not None:
            raise HsError(f"server already started (pid {self.proc.pid})")
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        env = stub_environment(self.python_env, omp_threads=self.omp_threads) if self.stub_env else dict(os.environ)
        with open(self.log_file, "ab") as log:
            # A session of its own: a Ctrl-C in the terminal reaches hs-serve, which stops the server in order.
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        st = _stat(self.proc.pid)
        self.started_ticks = st[4] if st is not None else 0
        return self

    def log_tail(self, n: int = 12) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.http_url}/v2/health/ready", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Poll readiness (all models loaded) until `timeout` s. Returns the seconds waited. HsError when the server
        exits first or the time runs out (the server is stopped then); the message ends with the log file's path."""
        assert self.proc is not None, "start() first"
        t0 = time.monotonic()
        while True:
            if self.proc.poll() is not None:
                tail = self.log_tail(400)
                raise HsError(f"tritonserver exited with code {self.proc.returncode} before it was ready "
                              f"(log {self.log_file}): {_last_error(tail)}")
            if self.is_ready():
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                self.stop()
                raise HsError(f"tritonserver was not ready after {timeout:.0f} s (log {self.log_file})")
            time.sleep(0.2)

    def stop(self, kill_after: float = 45.0) -> int | None:
        """SIGTERM, wait up to `kill_after` s, then SIGKILL the server's process group; once it has exited, kill
        what it left in its session (`reap_stubs`). Returns the server's exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(kill_after)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.reaped += self.reap_stubs()
        return self.proc.returncode

    def reap_stubs(self, timeout: float = 10.0) -> list[int]:
        """After the server has exited: SIGKILL every process still in its session (the python-backend stubs it
        started; they keep the server's session and process group), and wait up to `timeout` s until they are
        gone. Returns their pids. HsError when one outlives the wait."""
        assert self.proc is not None and self.proc.returncode is not None, "the server must have exited"
        left = {pid: st[4] for pid in session_processes(self.proc.pid, self.started_ticks)
                if (st := _stat(pid)) is not None}
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        alive = list(left)
        for _ in range(int(timeout / 0.05) + 1):  # gone, a zombie, or its pid reused (another start time)
            alive = [p for p in alive if (st := _stat(p)) is not None and st[0] not in "ZX" and st[4] == left[p]]
            if not alive or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if alive:
            raise HsError(f"processes {alive} left by tritonserver (pid {self.proc.pid}) survived SIGKILL for "
                          f"{timeout:.0f} s")
        return list(left)

    def __enter__(self) -> "TritonServer":
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


_HARMLESS = ("CudaDriverHelper has not been initialized", "Unable to allocate pinned system memory",
             "CUDA memory pool disabled", "failed to enable peer access")


def _last_error(log: str) -> str:
    """The most telling line of a failed start: the first error line (Triton's E... lines, a Python traceback's
    last line) that is not one of the harmless no-GPU notices, else the last line."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    errors = [ln for ln in lines if (ln[:1] == "E" and ln[1:5].isdigit() or "rror" in ln)
              and not any(h in ln for h in _HARMLESS) and "failed to load all models" not in ln]
    pick = errors[0] if errors else (lines[-1] if lines else "no log output")
    return pick[:400]


class _StopServing(Exception):
    pass


def serve_forever(server: TritonServer, ready_timeout: float = 300.0, on_ready=None) -> int:
    """Start `server`, wait until ready, call `on_ready(server, seconds)`, then block until the server exits or
    SIGINT / SIGTERM arrives (also while it is still starting), and stop it. Returns the server's exit code, 0 after
    a requested stop."""

    def _handler(signum, frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the orderly stop
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise _StopServing()

    old = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        waited = server.wait_ready(ready_timeout)
        if on_ready is not None:
            on_ready(server, waited)
        while server.proc.poll() is None:
            time.sleep(0.2)
        return server.proc.returncode
    except _StopServing:
        server.stop()
        return 0
    finally:
        server.stop()
        for s, h in old.items():
            signal.signal(s, h)
