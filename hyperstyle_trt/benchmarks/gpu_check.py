"""`make gpu-check`'s runner: the GPU tests and benchmarks as steps with their own time limits, each run whatever
happened to the ones before, and one `gpu_summary.json` with every step's status, wall time, log and figures.

    python -m hyperstyle_trt.benchmarks.gpu_check --out DIR [--limit STEP=S ...] [--lpips-weights DIR]

Steps (STEPS; default limits in DEFAULT_LIMITS_S, their sum under nine minutes: one device call):
    wheels     pip-install the carried wheels (--wheels, `make gpu-wheels`) into --site, on every later PYTHONPATH
    gpu-tests  pytest tests/gpu (--junitxml; each never-observed gate appends its observed value to gates.jsonl)
    kernels    hs-bench kernels --json kernels.json (the kernel table)
    runtime    benchmarks.runtime --json runtime.json (B=1 and 8: fast path, eager fp16, fp32 reference)
    e2e-b8     hs-bench --batch 8: projector, pti (LPIPS from --lpips-weights), hyperstyle-ref, hyperstyle-fast
    e2e-b1     hs-bench --batch 1: hyperstyle-ref, hyperstyle-fast
A probe first runs `--python` to record the machine (GPU name, compute capability, memory, driver) and versions;
without torch or without a CUDA GPU every step is `skipped` with that reason and the exit status is 0.

Each step runs in its own process group, output to DIR/<step>.log. At its limit minus --grace it gets SIGINT
(pytest prints its summary and writes the XML, the benchmarks write the rows they finished), at its limit SIGKILL.
Status: passed (exit 0 and nothing failed in its files), failed (non-zero exit, a failed test, a failed hs-bench
method), timed_out (stopped at its limit; the figures are the partial ones), skipped (with the reason).
DIR/gpu_summary.json is rewritten atomically after every step and at the end (`complete`). Exit status: 1 when the
probe or any step failed, else 0 (a step stopped at its limit is recorded, not a failure); Ctrl-C: 130 after the
summary. Not yet run on a GPU.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import click

from hyperstyle_trt.benchmarks import gpu_figures as F
from hyperstyle_trt.benchmarks.gpu_probe import probe
from hyperstyle_trt.core.atomic import write_json_atomic
from hyperstyle_trt.core.entry import interruptible, run
from hyperstyle_trt.core.errors import HsError, one_line

STEPS = ("wheels", "gpu-tests", "kernels", "runtime", "e2e-b8", "e2e-b1")
DEFAULT_LIMITS_S = {"wheels": 20, "gpu-tests": 180, "kernels": 80, "runtime": 80, "e2e-b8": 110, "e2e-b1": 40}
PROBE_LIMIT_S = 30
SUMMARY = "gpu_summary.json"
GATES_ENV, LPIPS_ENV = "HS_GPU_GATES", "HS_LPIPS_WEIGHTS"
# what a step's figures hold when it runs (written beside a skipped step's reason, so a summary from a machine
# without a GPU says what a GPU run reports)
REPORTS = {"wheels": "the wheels installed",
           "gpu-tests": "pytest counts, failed tests, slowest tests; every never-observed gate's observed value "
                        "(top-level `gates`)",
           "kernels": "the kernel table (fused / staged / route µs, pick, speed-up, TFLOPS, errors per layer and "
                      "batch 1, 8) and the goal lines",
           "runtime": "ms/image at B=1 and 8 of the fast path, eager fp16 and the fp32 reference; PSNR, Δ error, "
                      "build and first-call times",
           "e2e-b8": "hs-bench B=8: ms/image of projector, pti (projected from 5 steps), hyperstyle-ref, "
                     "hyperstyle-fast; error vs the reference, peak memory (top-level `ms_per_image`)",
           "e2e-b1": "hs-bench B=1: ms/image of hyperstyle-ref and hyperstyle-fast (top-level `ms_per_image`)"}
# what each step imports beyond torch (module names; the probe reports which are importable)
NEEDS = {"gpu-tests": ("pytest",), "kernels": ("triton", "rich"), "runtime": ("triton",),
         "e2e-b8": ("matplotlib", "rich"), "e2e-b1": ("matplotlib", "rich")}


@dataclass(frozen=True)
class Step:
    """One command. figures(): what its files say (called after it ends, whatever its status); judge(figures): why
    it failed although it exited 0 (None: it did not); skip: why it is not run (None: run it); outputs: files it
    writes, removed before it starts (a reused --out never lends a step an earlier run's figures)."""

    name: str
    argv: tuple[str, ...]
    limit_s: float
    figures: Callable[[], dict] = dict
    judge: Callable[[dict], str | None] = lambda figures: None
    skip: str | None = None
    outputs: tuple[Path, ...] = ()


@dataclass
class StepResult:
    status: str  # passed | failed | timed_out | skipped
    reason: str | None = None
    wall_s: float = 0.0
    limit_s: float | None = None
    rc: int | None = None
    log: str | None = None
    figures: dict = field(default_factory=dict)


def _tail(log: Path, n: int = 3) -> list[str]:
    try:
        lines = [ln.rstrip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return []
    return lines[-n:]


def _stop(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # the step's whole process group (pytest-xdist workers, tee-less children)
    except ProcessLookupError:
        pass


def run_step(step: Step, out: Path, env: dict[str, str] | None = None, grace_s: float = 15.0) -> StepResult:
    """Run one step (module docstring: limits, signals, status). Never raises for the step's own failures."""
    if step.skip is not None:
        return StepResult("skipped", step.skip, limit_s=step.limit_s)
    log = out / f"{step.name}.log"
    for p in step.outputs:
        Path(p).unlink(missing_ok=True)
    t0 = time.perf_counter()
    timed_out = False
    try:
        with open(log, "wb") as f:
            proc = subprocess.Popen(step.argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, start_new_session=True)
            try:
                try:
                    rc = proc.wait(timeout=max(step.limit_s - grace_s, 0.1))
                except subprocess.TimeoutExpired:
                    timed_out = True
                    _stop(proc, signal.SIGINT)
                    try:
                        rc = proc.wait(timeout=grace_s)
                    except subprocess.TimeoutExpired:
                        _stop(proc, signal.SIGKILL)
                        rc = proc.wait()
            except BaseException:  # Ctrl-C of the runner: the step goes with it
                _stop(proc, signal.SIGKILL)
                proc.wait()
                raise
    except OSError as e:
        return StepResult("failed", f"could not start {step.argv[0]}: {e.strerror or one_line(e)}",
                          time.perf_counter() - t0, step.limit_s, log=log.name)
    wall = time.perf_counter() - t0
    try:
        figures = step.figures()
    except Exception as e:  # noqa: BLE001 - a reader bug must not lose the step's status
        figures = {"error": f"reading the figures: {type(e).__name__}: {one_line(e)}"}
    why = step.judge(figures)
    res = StepResult("passed", None, wall, step.limit_s, rc, log.name, figures)
    if timed_out:
        res.status, res.reason = "timed_out", f"stopped at its {step.limit_s:g} s limit (exit {rc}); partial figures"
        if why:
            res.status, res.reason = "failed", f"{why}; {res.reason}"
    elif rc != 0:
        tail = _tail(log, 1)
        res.status, res.reason = "failed", f"exit {rc}" + (f": {one_line(tail[0])}" if tail else "")
        if why:
            res.reason = f"{why}; {res.reason}"
    elif why:
        res.status, res.reason = "failed", why
    return res


@dataclass(frozen=True)
class CheckConfig:
    """What the runner's flags resolve into (module docstring)."""

    out: Path
    python: str = sys.executable
    wheels: Path = Path(".whl")
    site: Path = Path("/tmp/hs_site")
    lpips_weights: Path | None = None
    limits_s: dict = field(default_factory=lambda: dict(DEFAULT_LIMITS_S))
    pytest_args: tuple[str, ...] = ("-n", "8", "--dist", "loadgroup")
    grace_s: float = 15.0


def _bench_argv(cfg: CheckConfig, batch: int, methods: str, out: str) -> tuple[str, ...]:
    lp = cfg.lpips_weights
    return (cfg.python, "-m", "hyperstyle_trt.benchmarks.cli", "--batch", str(batch), "--methods", methods,
            "--baseline-steps", "5", "--repeats", "10", "--warmup", "2", "--out", str(cfg.out / out),
            *(("--lpips-weights", str(lp)) if lp is not None and "pti" in methods else ()))


def _unreadable(figures: dict) -> str | None:
    """Why a step that exited 0 still failed: its JSON is missing or unreadable."""
    bad = figures.get("missing") or figures.get("error")
    return None if bad is None else f"no figures: {'missing ' if 'missing' in figures else ''}{bad}"


def _bench_step(cfg: CheckConfig, name: str, batch: int, methods: str) -> tuple[tuple[str, ...], Callable, Callable]:
    path = cfg.out / f"bench_b{batch}" / "bench.json"
    return (_bench_argv(cfg, batch, methods, f"bench_b{batch}"), lambda: F.bench_figures(path),
            lambda f: _unreadable(f) or "; ".join(F.failed_methods(f)) or None)


def build_steps(cfg: CheckConfig, machine: dict) -> list[Step]:
    """The STEPS for this machine: all skipped with the probe's reason without a CUDA GPU, a step skipped when a
    module it needs is missing from --python."""
    out, py = cfg.out, cfg.python
    wheels = sorted(cfg.wheels.glob("*.whl")) if cfg.wheels.is_dir() else []
    xml, gates = out / "gpu_tests.xml", out / "gates.jsonl"
    cmds: dict[str, tuple] = {
        "wheels": ((py, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--target",
                    str(cfg.site), *map(str, wheels)), lambda: {"wheels": [w.name for w in wheels]}, lambda f: None),
        "gpu-tests": ((py, "-m", "pytest", "tests/gpu", "-q", *cfg.pytest_args, "-p", "no:cacheprovider", "-rs",
                       "--durations=10", f"--junitxml={xml}"),
                      lambda: F.pytest_figures(xml) | {"gates_recorded": len(F.read_gates(gates))},
                      lambda f: (f"{f['failed']} failed, {f['errors']} errors: "
                                 + ", ".join(t["test"] for t in f["failed_tests"][:5]))
                      if f.get("failed") or f.get("errors") else _unreadable(f)),
        "kernels": ((py, "-m", "hyperstyle_trt.benchmarks.cli", "kernels", "--json", str(out / "kernels.json")),
                    lambda: F.kernel_figures(out / "kernels.json"), _unreadable),
        "runtime": ((py, "-m", "hyperstyle_trt.benchmarks.runtime", "--json", str(out / "runtime.json")),
                    lambda: F.runtime_figures(out / "runtime.json"), _unreadable),
        "e2e-b8": _bench_step(cfg, "e2e-b8", 8, "projector,pti,hyperstyle-ref,hyperstyle-fast"),
        "e2e-b1": _bench_step(cfg, "e2e-b1", 1, "hyperstyle-ref,hyperstyle-fast"),
    }
    outputs = {"gpu-tests": (xml, gates), "kernels": (out / "kernels.json",), "runtime": (out / "runtime.json",),
               "e2e-b8": (out / "bench_b8" / "bench.json",), "e2e-b1": (out / "bench_b1" / "bench.json",)}
    mods = machine.get("modules") or {}
    steps = []
    for name in STEPS:
        argv, figs, judge = cmds[name]
        skip = None if machine.get("cuda") else machine.get("reason") or "no CUDA GPU"
        if skip is None and name == "wheels" and not wheels:
            skip = f"no wheels in {cfg.wheels} (`make gpu-wheels` puts them there)"
        missing = [m for m in NEEDS.get(name, ()) if not mods.get(m)]
        if skip is None and name == "gpu-tests" and "-n" in cfg.pytest_args and not mods.get("xdist"):
            missing.append("xdist (pytest-xdist, for -n)")
        if skip is None and missing:
            skip = f"{py} cannot import {', '.join(missing)}"
        steps.append(Step(name, argv, float(cfg.limits_s[name]), figs, judge, skip, outputs.get(name, ())))
    return steps


def step_env(cfg: CheckConfig) -> dict[str, str]:
    """The steps' environment: this one plus PYTHONPATH = source tree, --site, then what was set; unbuffered output;
    the gates file and the LPIPS weights folder for tests/gpu."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.getcwd(), str(cfg.site), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env[GATES_ENV] = str(cfg.out / "gates.jsonl")
    if cfg.lpips_weights is not None:
        env[LPIPS_ENV] = str(cfg.lpips_weights)
    return env


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def summarize(cfg: CheckConfig, machine: dict, results: dict[str, StepResult], complete: bool, started: str) -> dict:
    """The gpu_summary.json record (docs/benchmark.md, "make gpu-check")."""
    statuses = [r.status for r in results.values()]
    result = ("failed" if "failed" in statuses or machine.get("probe_failed") else
              "timed_out" if "timed_out" in statuses else
              "passed" if "passed" in statuses else "skipped")
    benches = [r.figures for n, r in results.items() if n.startswith("e2e-")]
    return {"schema": "hs-gpu-check/1", "started": started, "finished": _now() if complete else None,
            "complete": complete, "result": result if complete else "running",
            "machine": {k: v for k, v in machine.items() if k not in ("versions", "modules")},
            "versions": machine.get("versions"), "modules": machine.get("modules"),
            "limits_s": dict(cfg.limits_s), "total_limit_s": sum(cfg.limits_s.values()) + PROBE_LIMIT_S,
            "lpips_weights": None if cfg.lpips_weights is None else str(cfg.lpips_weights),
            "steps": {n: dataclasses.asdict(r) | ({"reports": REPORTS[n]} if r.status == "skipped" and n in REPORTS
                                                  else {}) for n, r in results.items()},
            "gates": F.read_gates(cfg.out / "gates.jsonl"),
            "ms_per_image": F.ms_per_image(benches)}


def run_check(cfg: CheckConfig, steps: list[Step] | None = None, machine: dict | None = None,
              echo: Callable[[str], None] = print) -> dict:
    """Probe (unless `machine` is given), run every step (build_steps unless `steps` is given), rewrite the summary
    after each; returns the final summary. KeyboardInterrupt: the summary so far is written, then re-raised."""
    started = _now()
    try:
        cfg.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise HsError(f"--out {cfg.out}: cannot create it ({e.strerror or e})") from None
    (cfg.out / "gates.jsonl").unlink(missing_ok=True)  # an earlier run's gates are not this run's
    if machine is None:
        machine = probe(cfg.python, step_env(cfg), PROBE_LIMIT_S)
    echo(f"gpu-check: {machine.get('gpu', {}).get('name') if machine.get('cuda') else machine.get('reason')}")
    steps = build_steps(cfg, machine) if steps is None else steps
    results: dict[str, StepResult] = {}
    path = cfg.out / SUMMARY
    env = step_env(cfg)
    try:
        for st in steps:
            results[st.name] = r = run_step(st, cfg.out, env, cfg.grace_s)
            echo(f"[{st.name}] {r.status}" + (f" in {r.wall_s:.1f} s" if r.status != "skipped" else "")
                 + (f": {r.reason}" if r.reason else "") + (f" (log {r.log})" if r.log else ""))
            if r.status == "failed" and r.log:
                for line in _tail(cfg.out / r.log):
                    echo(f"    {line[:200]}")
            write_json_atomic(path, summarize(cfg, machine, results, False, started))
    except KeyboardInterrupt:
        write_json_atomic(path, summarize(cfg, machine, results, False, started) | {"interrupted": True})
        raise
    final = summarize(cfg, machine, results, True, started)
    write_json_atomic(path, final)
    echo(f"gpu-check: {final['result']}; wrote {path}")
    return final


def _limits(_ctx, _param, values: tuple[str, ...]) -> dict:
    limits = dict(DEFAULT_LIMITS_S)
    for v in values:
        name, _, sec = v.partition("=")
        if name not in STEPS:
            raise click.BadParameter(f"{v!r}: unknown step {name!r}; expected one of {', '.join(STEPS)}")
        try:
            limits[name] = float(sec)
        except ValueError:
            raise click.BadParameter(f"{v!r}: expected STEP=SECONDS, e.g. gpu-tests=190") from None
        if limits[name] <= 0:
            raise click.BadParameter(f"{v!r}: the limit must be > 0 seconds")
    return limits


@click.command("gpu-check", help=__doc__.splitlines()[0], context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--out", type=click.Path(path_type=Path), required=True, help="folder for logs, JSON and the summary")
@click.option("--python", "python", default=sys.executable, show_default=True, help="interpreter of every step")
@click.option("--wheels", type=click.Path(path_type=Path), default=Path(".whl"), show_default=True)
@click.option("--site", type=click.Path(path_type=Path), default=Path("/tmp/hs_site"), show_default=True)
@click.option("--lpips-weights", type=click.Path(path_type=Path), default=None,
              help="folder of vgg16 / alexnet LPIPS weights (.ckpt or fp16 .npz) for projector, PTI and tests/gpu")
@click.option("--limit", "limits", multiple=True, callback=_limits, metavar="STEP=SECONDS",
              help=f"a step's time limit (defaults {DEFAULT_LIMITS_S})")
@click.option("--pytest-args", default="-n 8 --dist loadgroup", show_default=True)
@click.option("--grace", type=click.FloatRange(min=0), default=15.0, show_default=True,
              help="seconds between SIGINT and SIGKILL, inside each limit")
@interruptible
def cli(out, python, wheels, site, lpips_weights, limits, pytest_args, grace) -> int:
    if lpips_weights is not None and not lpips_weights.is_dir():
        click.echo(f"gpu-check: no LPIPS weights folder {lpips_weights} (`make gpu-carry`): projector and PTI "
                   "will be skipped", err=True)
        lpips_weights = None
    cfg = CheckConfig(Path(out), python, Path(wheels), Path(site).absolute(),
                      None if lpips_weights is None else Path(lpips_weights).absolute(), limits,
                      tuple(pytest_args.split()), grace)
    summary = run_check(cfg)
    return 1 if summary["result"] == "failed" else 0


def main(argv: list[str] | None = None) -> int:
    return run(cli, argv)


if __name__ == "__main__":
    main()
