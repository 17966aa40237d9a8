"""Sustained load against `hs-serve start` (tritonclient[http], 127.0.0.1 only), every answer checked.

    python -m hyperstyle_trt.benchmarks.load --concurrency 4 --duration 120 --out benchmarks/results/serve_load.json
    python -m hyperstyle_trt.benchmarks.load --concurrency 6 --duration 45 --kill-stub-at 10 \\
        --out benchmarks/results/serve_faults.json          # SIGKILL the model's stub 10 s in: recovery time
    python -m hyperstyle_trt.benchmarks.load --url 127.0.0.1:8000 --server-pid 1234 --duration 30   # a running one
    python -m hyperstyle_trt.benchmarks.load --hostile 2 ...   # first, every malformed request (hostile_requests)

Without --url it writes a model repository for the tiny preset on the CPU (runtime.serving.repository: KIND_CPU x 1,
max batch 8, T=5, 1 torch thread) into a temporary folder, runs `hs-serve start` on it (a child process, free ports,
its supervisor on) and stops it with SIGTERM at the end; its output lines (the supervisor's) go into the report.

Load: `--concurrency` threads, each with its own HTTP client, send requests back to back (0.2 s pause after an
error) until `--duration` s have
passed or `--max-calls` requests were sent (both bound the run; each request also has the client's `--timeout`, so
nothing waits forever). Batch sizes are drawn (numpy seed `--seed`) from `--batch-sizes`; each request's images are
drawn from a pool of `--pool` distinct uint8 images whose inversions the in-process Inverter computed up front
(torch, fp32, the served settings, one image at a time). Every answer is compared with them at the serving tests'
gates (<= 1 grey level on <= 3 values per image, codes <= 1e-6: the server merges requests into other batch sizes,
and torch's CPU kernels are not batch-invariant): a mismatch counts as `wrong`.

Figures (JSON, with the command that made it): calls / images answered, ok, wrong, errors (by message), calls and
images per second, latency p50 / p99 / max of the answered calls; RSS of tritonserver and of its stubs (VmRSS, KiB)
every `--sample-every` s with the calls done by then, and the growth of the server's RSS per 1,000 calls (least-
squares slope over the samples after the first `--warmup` s). With `--kill-stub-at S`: the stubs' pids, the kill
time, the errors between the kill and the first correct answer after it (expected: requests in that window fail),
`recovery_s` (kill to the end of the first correct answer sent after it) and the errors after recovery (must be 0).
With `--hostile N`, before the load: every request of `hostile_requests` (wrong dtype, rank, shape, batch 0, batch
above the max, missing / extra inputs, a header claiming a huge tensor, random bytes, a very large body, an unknown
model, ...) and 200 connections opened and dropped, N rounds (`hostile_battery`): each answer's status and message,
RSS before and after each round, the stubs before and after. Exit 0 when nothing was wrong, no error fell outside
the kill's window and (with a kill) the model came back; else 1.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import click

from hyperstyle_trt.benchmarks.soak import growth_per_1000
from hyperstyle_trt.core.entry import interruptible, run
from hyperstyle_trt.core.errors import HsError, one_line

IMG_TOL_LEVELS, IMG_TOL_COUNT, CODES_TOL = 1, 3, 1e-6  # the serving tests' gates (tests/unit/runtime/test_serving.py)


def check_answer(img, codes, ref_img, ref_codes) -> str | None:
    """None when a served answer matches the reference rows at the gates above, else what differs (one line)."""
    import numpy as np

    if img is None or codes is None or img.shape != ref_img.shape or codes.shape != ref_codes.shape:
        return f"shape {None if img is None else img.shape} / {None if codes is None else codes.shape}"
    d = np.abs(img.astype(np.int16) - ref_img.astype(np.int16))
    per_image = (d > 0).reshape(d.shape[0], -1).sum(1)
    if d.max() > IMG_TOL_LEVELS or per_image.max() > IMG_TOL_COUNT:
        return f"image differs by up to {int(d.max())} levels on up to {int(per_image.max())} values"
    err = float(np.abs(codes - ref_codes).max())
    return None if err <= CODES_TOL else f"codes differ by {err:.3g}"


def _percentile(xs: list[float], q: float) -> float | None:
    import numpy as np

    return float(np.percentile(xs, q)) if xs else None


class HsServe:
    """`hs-serve start` as a child process on `repo` (default: a tiny CPU repository written into `work/repo`),
    with free ports; `ready(timeout)` waits for its `ready after ... (pid N)` line (`pid`: tritonserver's), `stop()`
    sends SIGTERM and waits. `lines`: everything it printed. `extra`: more `hs-serve start` options."""

    def __init__(self, work: Path, max_batch: int = 8, iters: int = 5, ready_timeout: float = 300.0,
                 repo: Path | None = None, extra: tuple[str, ...] = ("--exit-timeout", "5")):
        from hyperstyle_trt.core.source import ModelSource
        from hyperstyle_trt.runtime.serving.repository import RepoSpec, write_repository
        from hyperstyle_trt.runtime.serving.server import PROJECT_ROOT, free_port

        if repo is None:
            repo = Path(work) / "repo"
            write_repository(repo, RepoSpec(ModelSource(config="tiny", device="cpu", precision=None),
                                            max_batch=max_batch, iters=iters, threads=1))
        self.repo = Path(repo)
        self.ports = (free_port(), free_port(), free_port())  # http, grpc, metrics
        self.port = self.ports[0]
        cmd = [sys.executable, "-m", "hyperstyle_trt.cli.serve", "start", str(self.repo), "--http-port",
               str(self.ports[0]), "--grpc-port", str(self.ports[1]), "--metrics-port", str(self.ports[2]),
               "--ready-timeout", str(ready_timeout), *extra]
        self.proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.lines: list[str] = []
        self._ready = threading.Event()
        self.pid: int | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            m = re.match(r"ready after [\d.]+ s \(pid (\d+)\)", line)
            if m:
                self.pid = int(m.group(1))
                self._ready.set()
        self._ready.set()

    def ready(self, timeout: float) -> None:
        self._ready.wait(timeout)
        if self.pid is None:
            self.stop()
            raise HsError("hs-serve start did not become ready: " + (" | ".join(self.lines[-3:]) or "no output"))

    def wait_for(self, pattern: str, timeout: float) -> str | None:
        """The first output line matching `pattern` (re.search), waiting up to `timeout` s; None if none came."""
        end = time.monotonic() + timeout
        while True:
            hit = next((ln for ln in list(self.lines) if re.search(pattern, ln)), None)
            if hit is not None or time.monotonic() > end or self.proc.poll() is not None:
                return hit
            time.sleep(0.1)

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(10)
        return self.proc.returncode


def post(port: int, body: bytes, headers: dict | None = None, path: str = "/v2/models/hyperstyle/infer",
          timeout: float = 30.0) -> tuple[int, bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("POST", path, body=body, headers={"Content-Type": "application/octet-stream", **(headers or {})})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def _binary(shape, datatype: str, data: bytes, claim: int | None = None, extra_inputs=()) -> tuple[bytes, dict]:
    """A KServe v2 binary-tensor request: JSON header (its length in Inference-Header-Content-Length) + raw data."""
    inputs = [{"name": "image", "shape": list(shape), "datatype": datatype,
               "parameters": {"binary_data_size": len(data) if claim is None else claim}}, *extra_inputs]
    head = json.dumps({"inputs": inputs}).encode()
    return head + data, {"Inference-Header-Content-Length": str(len(head))}


def _json(obj) -> tuple[bytes, dict]:
    return json.dumps(obj).encode(), {"Content-Type": "application/json"}


def hostile_requests(s: int = 64, max_batch: int = 8) -> dict:
    """name -> (body, headers, path or None): requests to the `hyperstyle` model (input `image` UINT8 [B,s,s,3]),
    each malformed in one way."""
    import numpy as np

    item = s * s * 3
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (1, s, s, 3), dtype=np.uint8).tobytes()
    junk = {"name": "junk", "shape": [1, 3], "datatype": "UINT8", "data": [1, 2, 3]}
    big = 48 << 20
    return {
        "wrong dtype (FP32)": (*_binary((1, s, s, 3), "FP32", bytes(4 * item)), None),
        "wrong rank [1,64,64]": (*_binary((1, s, s), "UINT8", bytes(s * s)), None),
        "wrong shape [1,32,32,3]": (*_binary((1, 32, 32, 3), "UINT8", bytes(32 * 32 * 3)), None),
        "negative dim [-1,64,64,3]": (*_binary((-1, s, s, 3), "UINT8", img), None),
        "batch 0": (*_binary((0, s, s, 3), "UINT8", b""), None),
        "batch above max (9)": (*_binary((max_batch + 1, s, s, 3), "UINT8", bytes((max_batch + 1) * item)), None),
        "missing input": (*_json({"inputs": []}), None),
        "extra input": (*_binary((1, s, s, 3), "UINT8", img, extra_inputs=[junk]), None),
        "JSON data of the wrong length": (*_json({"inputs": [{"name": "image", "shape": [1, s, s, 3],
                                                              "datatype": "UINT8", "data": [1, 2, 3]}]}), None),
        "header claims a huge tensor (2**40 bytes)": (*_binary((max_batch, s, s, 3), "UINT8", img, claim=1 << 40),
                                                      None),
        "header length beyond the body": (img, {"Inference-Header-Content-Length": str(10 ** 9)}, None),
        "random bytes": (rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(), {}, None),
        "random bytes with a header length": (rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
                                              {"Inference-Header-Content-Length": "100"}, None),
        f"very large body ({big >> 20} MiB)": (*_binary((1, s, s, 3), "UINT8", bytes(big), claim=item), None),
        "unknown model": (*_binary((1, s, s, 3), "UINT8", img), "/v2/models/nope/infer"),
    }


def drop_connections(port: int, n: int = 200) -> None:
    """Open `n` connections and drop them: a third at once, a third after half a request line, a third after a
    header promising a 1 MB body of which 10 bytes came."""
    for i in range(n):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sk:
            if i % 3 == 1:
                sk.sendall(b"POST /v2/models/hyperstyle/inf")
            elif i % 3 == 2:
                sk.sendall(b"POST /v2/models/hyperstyle/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"
                           b"0123456789")


def hostile_battery(port: int, server_pid: int | None, rounds: int = 2, s: int = 64, max_batch: int = 8) -> dict:
    """Send every `hostile_requests` request and `drop_connections`, `rounds` times; RSS of tritonserver + its stubs
    (KiB) before and after each round, the stubs before and after, each request's answer (HTTP status, the start
    of the body) from the last round, and whether the server and model answered ready afterwards."""
    from hyperstyle_trt.runtime.serving.server import python_stubs, rss_kib

    def rss() -> int:
        if server_pid is None:
            return 0
        return rss_kib(server_pid) + sum(rss_kib(p) for ps in python_stubs(server_pid).values() for p in ps)

    stubs0 = python_stubs(server_pid) if server_pid else {}
    rss_kib_rounds, answers = [rss()], {}
    for _ in range(rounds):
        for name, (body, headers, path) in hostile_requests(s, max_batch).items():
            try:
                status, text = post(port, body, headers, **({"path": path} if path else {}))
            except (OSError, http.client.HTTPException) as e:
                status, text = 0, f"no answer: {one_line(e, 120)}".encode()
            answers[name] = {"status": status, "body": text[:160].decode(errors="replace")}
        drop_connections(port)
        rss_kib_rounds.append(rss())
    ready = {}
    for path in ("/v2/health/ready", "/v2/models/hyperstyle/ready"):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            ready[path] = r.status
        except (OSError, http.client.HTTPException):
            ready[path] = 0
        finally:
            c.close()
    return {"answers": answers, "dropped_connections_per_round": 200, "rss_kib_before_and_after_each_round":
            rss_kib_rounds, "stubs_before": stubs0, "stubs_after": python_stubs(server_pid) if server_pid else {},
            "ready_after": ready,
            "all_answered_with_an_error": all(400 <= a["status"] < 600 and '"error"' in a["body"]
                                              for a in answers.values())}


def make_reference(pool, iters: int, max_batch: int):
    """Per-image (uint8 inversion, fp32 codes) of the pool by the in-process Inverter with the served settings."""
    import numpy as np
    import torch

    from hyperstyle_trt.runtime import Inverter

    inv = Inverter.from_checkpoint(None, config="tiny", executor="torch", device="cpu", precision="fp32",
                                   max_batch=max_batch)
    torch.set_num_threads(1)
    imgs, codes = [], []
    for x in pool:
        r = inv.invert(x[None], n_iters=iters)  # its tensors are views of the Inverter's buffers: copy them
        imgs.append(np.array(r.to_uint8()[0]))
        codes.append(r.codes.detach().float().cpu().numpy()[0].copy())
    return np.stack(imgs), np.stack(codes)


def run_load(url: str, server_pid: int | None, concurrency: int, duration: float, max_calls: int,
             batch_sizes: tuple[int, ...], pool_size: int, seed: int, timeout: float, sample_every: float,
             warmup: float, kill_stub_at: float | None, iters: int, max_batch: int, log=print,
             stop_after_recovery: int | None = None, worker_stop_errors: int | None = None,
             reference=None, error_backoff: float = 0.2) -> dict:
    """The load itself (module docstring) against the `hyperstyle` model at `url`; returns the report's figures.
    `stop_after_recovery`: end the load once that many correct answers came after the stub kill;
    `worker_stop_errors`: a client thread stops after that many errors in a row (a server that is gone);
    `error_backoff`: seconds a client thread waits after an error before its next request;
    `reference`: (pool uint8 [P,S,S,3], inversions, codes) computed already (else computed here)."""
    import numpy as np
    import tritonclient.http as httpclient

    from hyperstyle_trt.runtime.serving.server import python_stubs, rss_kib

    probe = httpclient.InferenceServerClient(url, network_timeout=timeout)
    meta = probe.get_model_metadata("hyperstyle")
    probe.close()
    s = int(next(i for i in meta["inputs"] if i["name"] == "image")["shape"][1])
    t_ref = time.perf_counter()
    if reference is None:
        pool = np.random.default_rng(seed).integers(0, 256, (pool_size, s, s, 3), dtype=np.uint8)
        reference = (pool, *make_reference(pool, iters, max_batch))
    pool, ref_img, ref_codes = reference
    pool_size = len(pool)
    log(f"reference inversions of {pool_size} images in {time.perf_counter() - t_ref:.1f} s; load: {concurrency} "
        f"clients, {duration:.0f} s, batch sizes {list(batch_sizes)}")

    calls: list[dict] = []
    kill: dict = {}
    lock = threading.Lock()
    stop = threading.Event()
    t0 = time.monotonic()
    deadline = t0 + duration

    after_kill_ok = [0]

    def worker(k: int) -> None:
        r = np.random.default_rng(seed * 1000 + k)
        c = httpclient.InferenceServerClient(url, network_timeout=timeout, connection_timeout=timeout)
        errors_in_a_row = 0
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                with lock:
                    if len(calls) >= max_calls:
                        return
                    rec = {"t": 0.0}
                    calls.append(rec)
                b = int(r.choice(batch_sizes))
                idx = r.integers(0, pool_size, b)
                inp = httpclient.InferInput("image", [b, s, s, 3], "UINT8")
                inp.set_data_from_numpy(pool[idx], binary_data=True)
                outs = [httpclient.InferRequestedOutput(n, binary_data=True) for n in ("inversion", "codes")]
                ts = time.monotonic()
                rec.update(t=ts - t0, b=b)
                try:
                    res = c.infer("hyperstyle", [inp], outputs=outs)
                    why = check_answer(res.as_numpy("inversion"), res.as_numpy("codes"), ref_img[idx],
                                       ref_codes[idx])
                    rec["status"] = "ok" if why is None else "wrong"
                    if why:
                        rec["error"] = why
                except Exception as e:  # noqa: BLE001 - every failure of a call is a counted result, not a crash
                    rec["status"] = "error"
                    rec["error"] = re.sub(r"\d{4,}", "N", one_line(e, 160))  # pids / ports out: errors group
                rec["end"] = time.monotonic() - t0
                errors_in_a_row = errors_in_a_row + 1 if rec["status"] == "error" else 0
                if worker_stop_errors is not None and errors_in_a_row >= worker_stop_errors:
                    return
                if errors_in_a_row:
                    stop.wait(error_backoff)  # a failing server answers at once: do not spin
                if rec["status"] == "ok" and kill and ts - t0 >= kill["t"]:
                    with lock:
                        after_kill_ok[0] += 1
                        if stop_after_recovery is not None and after_kill_ok[0] >= stop_after_recovery:
                            stop.set()
        finally:
            c.close()

    samples: list[dict] = []

    def sampler() -> None:
        while not stop.is_set():
            if server_pid is not None:
                stubs = [p for ps in python_stubs(server_pid).values() for p in ps]
                with lock:
                    done = sum(1 for c in calls if "end" in c)
                samples.append({"t": round(time.monotonic() - t0, 2), "calls": done, "server_kib": rss_kib(server_pid),
                                "stubs_kib": sum(rss_kib(p) for p in stubs), "stubs": len(stubs)})
            stop.wait(sample_every)

    def killer() -> None:
        if stop.wait(kill_stub_at):
            return
        stubs = python_stubs(server_pid).get("hyperstyle", [])
        for p in stubs:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        kill.update(t=time.monotonic() - t0, pids=stubs)
        log(f"killed stub(s) {stubs} at {kill['t']:.1f} s")

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(concurrency)]
    threads.append(threading.Thread(target=sampler, daemon=True))
    if kill_stub_at is not None and server_pid is not None:
        threads.append(threading.Thread(target=killer, daemon=True))
    for th in threads:
        th.start()
    for th in threads[:concurrency]:
        th.join(duration + timeout + 30)
    stop.set()
    for th in threads[concurrency:]:
        th.join(10)
    wall = time.monotonic() - t0
    hung = sum(th.is_alive() for th in threads[:concurrency])

    done = [c for c in calls if "end" in c]
    ok = [c for c in done if c["status"] == "ok"]
    lat = [1000 * (c["end"] - c["t"]) for c in ok]
    out: dict = {
        "wall_s": round(wall, 2), "calls": len(done), "unfinished_calls": len(calls) - len(done),
        "workers_still_running": hung, "images": sum(c["b"] for c in done), "ok": len(ok),
        "wrong": sum(c["status"] == "wrong" for c in done), "errors": sum(c["status"] == "error" for c in done),
        "calls_per_s": round(len(ok) / wall, 2), "images_per_s": round(sum(c["b"] for c in ok) / wall, 2),
        "latency_ms": {"p50": _r(_percentile(lat, 50)), "p99": _r(_percentile(lat, 99)),
                       "max": _r(max(lat, default=None)), "n": len(lat)},
        "latency_ms_p50_by_batch": {b: _r(_percentile([1000 * (c["end"] - c["t"]) for c in ok if c["b"] == b], 50))
                                    for b in sorted({c["b"] for c in ok})},
        "slowest_call_s": _r(max((c["end"] - c["t"] for c in done), default=None)),
        "batch_sizes_sent": dict(sorted(Counter(c["b"] for c in done).items())),
        "error_messages": dict(Counter(c["error"] for c in done if c["status"] != "ok").most_common(8)),
    }
    if samples:
        steady = [(x["calls"], x["server_kib"]) for x in samples if x["t"] >= warmup]
        steady_all = [(x["calls"], x["server_kib"] + x["stubs_kib"]) for x in samples if x["t"] >= warmup]
        out["rss"] = {
            "server_kib_first_last": [samples[0]["server_kib"], samples[-1]["server_kib"]],
            "stubs_kib_first_last": [samples[0]["stubs_kib"], samples[-1]["stubs_kib"]],
            "server_growth_kib_per_1000_calls": None if kill else _r(growth_per_1000(steady)),
            "server_and_stubs_growth_kib_per_1000_calls": None if kill else _r(growth_per_1000(steady_all)),
            "warmup_s": warmup, "samples": samples}
    if kill:
        tk = kill["t"]
        after = sorted((c for c in done if c["t"] >= tk), key=lambda c: c["t"])
        first_ok = next((c for c in after if c["status"] == "ok"), None)
        rec_t = first_ok["end"] if first_ok else None
        out["kill"] = {
            "at_s": round(tk, 2), "stub_pids": kill["pids"],
            "recovered": first_ok is not None, "recovery_s": _r(rec_t - tk) if rec_t is not None else None,
            "errors_before_kill": sum(c["status"] != "ok" for c in done if c["end"] < tk),
            "errors_in_outage": sum(c["status"] != "ok" for c in done
                                    if c["end"] >= tk and (first_ok is None or c["t"] < first_ok["t"])),
            "errors_after_recovery": sum(c["status"] != "ok" for c in after
                                         if first_ok is not None and c["t"] >= first_ok["t"]),
            "ok_after_recovery": sum(c["status"] == "ok" for c in after)}
    return out


def _r(x, nd: int = 2):
    return None if x is None else round(float(x), nd)


def passed(res: dict) -> bool:
    """Nothing wrong, nothing hung; errors only inside the kill's window; with a kill, the model came back."""
    if res["wrong"] or res["workers_still_running"] or res["unfinished_calls"]:
        return False
    k = res.get("kill")
    if k is None:
        return res["errors"] == 0
    return k["recovered"] and k["errors_before_kill"] == 0 and k["errors_after_recovery"] == 0


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--concurrency", type=int, default=4, show_default=True,
              help="Client threads, each with one request in flight.")
@click.option("--duration", type=float, default=60.0, show_default=True, help="Seconds of load.")
@click.option("--max-calls", "max_calls", type=int, default=100_000, show_default=True,
              help="At most this many requests.")
@click.option("--batch-sizes", "batch_sizes", default="1,2,3,4,8", show_default=True, help="Drawn per request.")
@click.option("--pool", "pool", type=int, default=16, show_default=True,
              help="Distinct images (their references are computed first).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds each request may take.")
@click.option("--sample-every", "sample_every", type=float, default=1.0, show_default=True,
              help="RSS sample period, s.")
@click.option("--warmup", type=float, default=10.0, show_default=True, help="Seconds left out of the RSS growth.")
@click.option("--kill-stub-at", "kill_stub_at", type=float, default=None,
              help="SIGKILL the model's stub(s) this many s into the load.")
@click.option("--url", default=None,
              help="host:port of a running hs-serve start (default: start one on the tiny CPU model).")
@click.option("--server-pid", "server_pid", type=int, default=None,
              help="With --url: its tritonserver pid (RSS, stubs).")
@click.option("--iters", type=int, default=5, show_default=True, help="T of the served model (for the reference).")
@click.option("--max-batch", "max_batch", type=int, default=8, show_default=True)
@click.option("--hostile", type=int, default=0, show_default=True,
              help="Before the load: send every hostile request (and drop 200 connections) this many rounds.")
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="Write the report as JSON here.")
@interruptible
def cli(concurrency, duration, max_calls, batch_sizes, pool, seed, timeout, sample_every, warmup, kill_stub_at, url,
        server_pid, iters, max_batch, hostile, out):
    """Sustained, bounded load against hs-serve (module docstring); prints a summary, writes the JSON report."""
    from hyperstyle_trt.benchmarks.spread import machine_load
    from hyperstyle_trt.core.atomic import write_json_atomic

    try:
        sizes = tuple(int(b) for b in batch_sizes.split(","))
    except ValueError:
        raise HsError(f"--batch-sizes must be comma-separated integers, got {batch_sizes!r}") from None
    if not sizes or min(sizes) < 1 or max(sizes) > max_batch:
        raise HsError(f"--batch-sizes must lie in 1..{max_batch} (--max-batch), got {list(sizes)}")
    for name, v in (("--concurrency", concurrency), ("--pool", pool), ("--max-calls", max_calls)):
        if v < 1:
            raise HsError(f"{name} must be >= 1, got {v}")
    if not 0 < duration <= 3600 or timeout <= 0 or sample_every <= 0:
        raise HsError("--duration must be in (0, 3600] s and --timeout, --sample-every > 0")
    if kill_stub_at is not None and not 0 < kill_stub_at < duration:
        raise HsError(f"--kill-stub-at must lie inside the run (0, {duration:g}) s, got {kill_stub_at:g}")
    if kill_stub_at is not None and url is not None and server_pid is None:
        raise HsError("--kill-stub-at with --url needs --server-pid (whose stubs to kill)")
    load0 = machine_load()
    serve = None
    with tempfile.TemporaryDirectory(prefix="hs_load_") as work:
        if url is None:
            click.echo("starting hs-serve start on the tiny CPU model ...")
            serve = HsServe(Path(work), max_batch, iters, ready_timeout=300)
            serve.ready(320)
            url, server_pid = f"127.0.0.1:{serve.port}", serve.pid
            click.echo(f"ready: {url}, tritonserver pid {server_pid}")
        try:
            battery = None
            if hostile:
                battery = hostile_battery(int(url.rsplit(":", 1)[1]), server_pid, rounds=hostile, max_batch=max_batch)
                click.echo(f"hostile requests: {len(battery['answers'])} kinds x {hostile} rounds, all answered with "
                           f"an error: {battery['all_answered_with_an_error']}; server + stub RSS (KiB) "
                           f"{battery['rss_kib_before_and_after_each_round']}")
            res = run_load(url, server_pid, concurrency, duration, max_calls, sizes, pool, seed, timeout, sample_every,
                           warmup, kill_stub_at, iters, max_batch, log=click.echo)
        finally:
            if serve is not None:
                t = time.monotonic()
                rc = serve.stop()
                stop_s = time.monotonic() - t
    report = {"command": "python -m hyperstyle_trt.benchmarks.load " + " ".join(sys.argv[1:]),
              "settings": {"concurrency": concurrency, "duration_s": duration, "max_calls": max_calls,
                           "batch_sizes": list(sizes), "pool": pool, "seed": seed, "timeout_s": timeout,
                           "served": "tiny preset, KIND_CPU x 1, max batch %d, T=%d, 1 torch thread, torch fp32"
                                     % (max_batch, iters) if serve else f"--url {url}"},
              "machine": {"load_start": load0, "load_end": machine_load(), "host": os.uname().nodename},
              "result": res, "passed": passed(res)}
    if battery is not None:
        report["hostile"] = battery
        report["passed"] = report["passed"] and battery["all_answered_with_an_error"] and \
            battery["stubs_before"] == battery["stubs_after"]
    if serve is not None:
        report["hs_serve"] = {"exit_code": rc, "stop_s": round(stop_s, 2),
                              "lines": [ln for ln in serve.lines if re.match(r"\d{4}-\d\d-\d\dT", ln)
                                        or ln.startswith(("ready", "stopped"))]}
    lat = res["latency_ms"]
    click.echo(f"{res['calls']} calls ({res['images']} images) in {res['wall_s']:.0f} s: {res['ok']} ok, "
               f"{res['wrong']} wrong, {res['errors']} errors; {res['images_per_s']} img/s, p50 {lat['p50']} ms, "
               f"p99 {lat['p99']} ms")
    if "rss" in res:
        r = res["rss"]
        click.echo(f"server RSS {r['server_kib_first_last'][0]} -> {r['server_kib_first_last'][1]} KiB "
                   f"({r['server_growth_kib_per_1000_calls']} KiB per 1,000 calls after {warmup:g} s)")
    if "kill" in res:
        k = res["kill"]
        click.echo(f"stub killed at {k['at_s']} s: recovered {k['recovered']} after {k['recovery_s']} s, "
                   f"{k['errors_in_outage']} errors in the outage, {k['errors_after_recovery']} after")
    if out:
        write_json_atomic(Path(out), report)
        click.echo(f"wrote {out}")
    return 0 if report["passed"] else 1


def main(argv: list[str] | None = None) -> int:
    return run(cli, argv)


if __name__ == "__main__":
    main()
