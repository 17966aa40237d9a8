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

The server runs with explicit model control (`--model-control-mode=explicit --load-model=*`: every model of the
repository is loaded at start, and a model can be reloaded in place through `POST v2/repository/models/<m>/load`).
`serve_forever` supervises it (`Supervisor`): tritonserver 2.51 does not restart a python-backend stub that died
(every later request of that model fails with `Stub process '<instance>' is not healthy`, while the model's ready
endpoint still answers 200), so the supervisor watches the stub processes of each model and the model's readiness,
reloads a broken model, restarts the whole server when a reload fails or the server itself exits, and logs each
reason and how long the recovery took.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from hyperstyle_trt.core.errors import HsError, one_line

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


def python_stubs(server_pid: int, repo: str | os.PathLike | None = None, started_since: int = 0) \
        -> dict[str, list[int]]:
    """{model: pids} of the python-backend stubs a tritonserver (session leader `server_pid`) runs now, one per
    model instance: live processes of its session whose argv[0] is the stub and whose argv[1] is
    <repo>/<model>/<version>/model.py (`repo` None: the model is the folder two levels above model.py). Models
    without stubs (not python-backend) are absent."""
    root = Path(repo).resolve() if repo is not None else None
    out: dict[str, list[int]] = {}
    for pid in session_processes(server_pid, started_since):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(argv) < 2 or Path(argv[0].decode(errors="replace")).name != STUB:
            continue
        model_py = Path(argv[1].decode(errors="replace"))
        if root is None:
            model = model_py.parent.parent.name
        else:
            try:
                model = model_py.resolve().relative_to(root).parts[0]
            except ValueError:
                continue
        out.setdefault(model, []).append(pid)
    return out


def rss_kib(pid: int) -> int:
    """Resident set size of process `pid` in KiB (VmRSS from /proc/<pid>/status); 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


class TritonServer:
    """One local tritonserver process for `repo`.

    `start()` launches it (ports: given or free ones), `wait_ready(timeout)` polls /v2/health/ready, `stop()` sends
    SIGTERM and waits (SIGKILL after `kill_after` s), then kills what the server left in its session
    (`reap_stubs`; their pids in `reaped`). Also a context manager (start + wait_ready / stop). The server's
    stdout and stderr go to `log_file` (default: <repo>/../<repo name>.tritonserver.log). `stub_env`: set PATH /
    LD_LIBRARY_PATH / OMP_NUM_THREADS for the stubs (`stub_environment`); False passes this process's environment
    unchanged (repositories written by hs-serve repo carry their own EXECUTION_ENV_PATH). `exit_timeout`: seconds
    Triton's own shutdown waits for in-flight requests and open client connections (--exit-timeout-secs).
    `explicit`: explicit model control, every model loaded at start (`reload_model` needs it)."""

    def __init__(self, repo: str | os.PathLike, install: TritonInstall | None = None, host: str = "127.0.0.1",
                 http_port: int | None = None, grpc_port: int | None = None, metrics_port: int | None = None,
                 log_file: str | os.PathLike | None = None, python_env: str | os.PathLike | None = None,
                 omp_threads: int | None = 1, gpu_metrics: bool | None = None, extra_args: tuple[str, ...] = (),
                 stub_env: bool = True, exit_timeout: int = 30, explicit: bool = True):
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
        if not isinstance(exit_timeout, int) or exit_timeout < 0:
            raise HsError(f"--exit-timeout must be an integer >= 0 (seconds), got {exit_timeout!r}")
        self.exit_timeout = exit_timeout
        self.explicit = explicit
        self.proc: subprocess.Popen | None = None
        self.started_ticks = 0
        self.reaped: list[int] = []
        self.supervisor: Supervisor | None = None  # set by serve_forever

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
               f"--exit-timeout-secs={self.exit_timeout}"]
        if self.explicit:
            cmd += ["--model-control-mode=explicit", "--load-model=*"]
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

    def _http(self, method: str, path: str, timeout: float, body: bytes | None = None) -> tuple[int, bytes]:
        """(status, body) of one request to the server's HTTP endpoint; (0, reason) when no answer came."""
        req = urllib.request.Request(f"http://{self.http_url}{path}", data=body, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except (urllib.error.URLError, OSError) as e:
            return 0, one_line(e, 200).encode()

    def model_ready(self, model: str) -> bool:
        """GET /v2/models/<model>/ready answered 200. (After its stub died, 2.51 still answers 200: see `stubs`.)"""
        return self._http("GET", f"/v2/models/{model}/ready", timeout=5)[0] == 200

    def repository_index(self) -> dict[str, str]:
        """{model: state} from POST /v2/repository/index (READY, UNAVAILABLE, LOADING, ...); {} without an answer."""
        status, body = self._http("POST", "/v2/repository/index", timeout=5, body=b"{}")
        if status != 200:
            return {}
        try:
            return {m["name"]: m.get("state", "") for m in json.loads(body)}
        except (ValueError, KeyError, TypeError):
            return {}

    def reload_model(self, model: str, timeout: float = 300.0) -> None:
        """Unload `model`, then load it again (explicit model control): Triton starts new stubs. A plain
        `POST .../load` of a loaded model whose files did not change is a no-op in 2.51 after the first time (seen
        here: `200` in 0.0 s, no new stub), so the model is unloaded first. HsError with the server's reason when
        either call fails."""
        for action in ("unload", "load"):
            status, body = self._http("POST", f"/v2/repository/models/{model}/{action}", timeout=timeout,
                                      body=b"{}")
            if status != 200:
                try:
                    why = json.loads(body).get("error", "")
                except (ValueError, AttributeError):
                    why = body.decode(errors="replace")
                raise HsError(f"{action}ing model '{model}' failed (HTTP {status or 'no answer'}): "
                              f"{one_line(why, 300)}")

    def stubs(self) -> dict[str, list[int]]:
        """{model: pids} of the python-backend stubs the server runs now (`python_stubs`); {} before start."""
        return {} if self.proc is None else python_stubs(self.proc.pid, self.repo, self.started_ticks)

    def restart(self, ready_timeout: float = 300.0) -> float:
        """Stop the server (and what it left), start it again on the same ports and wait until ready. Returns the
        seconds waited for readiness."""
        self.stop()
        self.proc = None
        self.start()
        return self.wait_ready(ready_timeout)

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

    def stop(self, kill_after: float | None = None) -> int | None:
        """SIGTERM, wait up to `kill_after` s (default: the exit timeout + 15 s), then SIGKILL the server's process
        group; once it has exited, kill what it left in its session (`reap_stubs`). Returns the server's exit
        code."""
        if self.proc is None:
            return None
        if kill_after is None:
            kill_after = self.exit_timeout + 15.0
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


@dataclass
class Recovery:
    """One repair the supervisor made: `reason` (what it saw), `action` ("reload" or "restart"), `seconds` from
    noticing to the model (or server) being ready again, `ok` False when it gave up."""

    reason: str
    action: str
    seconds: float
    ok: bool = True


@dataclass
class Supervisor:
    """Watches a ready `server` and repairs it; `poll()` once per `interval` s (serve_forever calls it).

    What counts as broken:
    - the tritonserver process exited (not asked to): restart it;
    - a stub process of a model, seen when the model became ready, is gone (killed, crashed): 2.51 answers every
      later request of that model with `Stub process ... is not healthy` and never starts a new stub, while the
      model's ready endpoint keeps answering 200; reload the model (`TritonServer.reload_model`: unload + load,
      new stubs), and check that it is ready with as many new stubs as before;
    - a model the repository index listed READY at start is no longer ready (unloaded by a client, failed): reload.
    A reload that fails restarts the whole server. At most `max_restarts` restarts within `window` s (the server
    is then stopped, and `poll` raises HsError with the last reason). Every event is a line through `log`
    (reason, action, seconds until ready again); `recoveries` keeps them."""

    server: TritonServer
    log: object = print
    interval: float = 1.0
    ready_timeout: float = 300.0
    max_restarts: int = 5
    window: float = 600.0
    recoveries: list = field(default_factory=list)
    _models: dict = field(default_factory=dict)  # model -> stub pids when it was last seen healthy
    _broken: list = field(default_factory=list)  # models diagnose() found broken
    _restarts: list = field(default_factory=list)
    _next: float = 0.0

    def baseline(self) -> None:
        """Record what a healthy server looks like now: its READY models and each one's stubs."""
        index = self.server.repository_index()
        stubs = self.server.stubs()
        self._models = {m: sorted(stubs.get(m, [])) for m, state in index.items() if state == "READY"}

    def diagnose(self) -> tuple[str, str | None]:
        """("restart", reason), ("reload", reason) naming the model(s) in `_broken`, or ("", None) when healthy."""
        proc = self.server.proc
        if proc is None or proc.poll() is not None:
            return "restart", f"tritonserver (pid {self.server.pid}) exited with code {proc and proc.returncode}"
        stubs = self.server.stubs()
        self._broken = []
        reasons = []
        for m, pids in self._models.items():
            gone = sorted(set(pids) - set(stubs.get(m, [])))
            if gone:
                self._broken.append(m)
                reasons.append(f"stub process(es) {gone} of model '{m}' exited")
        if not self._broken:
            for m in self._models:
                if not self.server.model_ready(m):
                    self._broken.append(m)
                    reasons.append(f"model '{m}' is not ready")
        return ("reload", "; ".join(reasons)) if reasons else ("", None)

    def _check_reloaded(self, models: list[str]) -> None:
        """After a reload: each model answers ready and, if it had stubs, runs as many new ones; else HsError."""
        stubs = self.server.stubs()
        for m in models:
            before, now = self._models.get(m, []), stubs.get(m, [])
            if not self.server.model_ready(m):
                raise HsError(f"model '{m}' is not ready after its reload")
            if before and (len(now) < len(before) or set(now) & set(before)):
                raise HsError(f"model '{m}' runs stubs {now} after its reload, expected {len(before)} new one(s)")

    def _say(self, msg: str) -> None:
        if self.log is not None:
            self.log(msg)
        try:  # the reason also goes into the server's own log, next to what tritonserver wrote
            with open(self.server.log_file, "a") as f:
                f.write(f"hs-serve supervisor {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}: {msg}\n")
        except OSError:
            pass

    def _restart(self, reason: str, t0: float) -> Recovery:
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < self.window] + [now]
        if len(self._restarts) > self.max_restarts:
            self._say(f"{reason}; {self.max_restarts} restarts within {self.window:.0f} s already: giving up")
            self.server.stop()
            raise HsError(f"tritonserver keeps failing ({reason}); gave up after {self.max_restarts} restarts "
                          f"within {self.window:.0f} s (log {self.server.log_file})")
        self._say(f"{reason}: restarting tritonserver")
        old = self.server.pid
        self.server.restart(self.ready_timeout)
        return Recovery(f"{reason}; pid {old} -> {self.server.pid}", "restart", time.monotonic() - t0)

    def poll(self, force: bool = False) -> Recovery | None:
        """Check once (at most once per `interval` s unless `force`); repair what is broken. Returns the Recovery
        made, or None."""
        now = time.monotonic()
        if not force and now < self._next:
            return None
        self._next = now + self.interval
        action, reason = self.diagnose()
        if not action:
            return None
        t0 = time.monotonic()
        if action == "reload":
            self._say(f"{reason}: reloading {', '.join(repr(m) for m in self._broken)}")
            try:
                for m in self._broken:
                    self.server.reload_model(m, timeout=self.ready_timeout)
                self._check_reloaded(self._broken)
                rec = Recovery(reason, "reload", time.monotonic() - t0)
            except HsError as e:
                rec = self._restart(f"{reason}; {one_line(e)}", t0)
        else:
            rec = self._restart(reason, t0)
        self.baseline()
        self._say(f"recovered by {rec.action} in {rec.seconds:.1f} s ({rec.reason})")
        self.recoveries.append(rec)
        self._next = time.monotonic() + self.interval
        return rec


def serve_forever(server: TritonServer, ready_timeout: float = 300.0, on_ready=None, supervise: bool = True,
                  interval: float = 1.0, log=print) -> int:
    """Start `server`, wait until ready, call `on_ready(server, seconds)`, then block until SIGINT / SIGTERM
    arrives (also while it is still starting) and stop it. With `supervise` (needs the server's explicit model
    control), a `Supervisor` checks it every `interval` s and repairs it (lines through `log`); without, serving
    ends when the server exits. Returns the server's exit code, 0 after a requested stop. HsError when the server
    does not become ready, or keeps failing."""

    def _handler(signum, frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the orderly stop
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise _StopServing()

    old = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        waited = server.wait_ready(ready_timeout)
        sup = None
        if supervise and server.explicit:
            sup = Supervisor(server, log=log, interval=interval, ready_timeout=ready_timeout)
            sup.baseline()
            server.supervisor = sup
        if on_ready is not None:
            on_ready(server, waited)
        while sup is not None or server.proc.poll() is None:
            time.sleep(0.2)
            if sup is not None:
                sup.poll()
        return server.proc.returncode
    except _StopServing:
        server.stop()
        return 0
    finally:
        server.stop()
        for s, h in old.items():
            signal.signal(s, h)
