"""The figures `make gpu-check` (benchmarks.gpu_check) copies into gpu_summary.json, read from the files its steps
write. Every reader takes paths and returns a JSON-able dict; a missing, partial or unreadable file gives
{"missing": path} or {"error": one line}, never an exception, so a step that crashed or was stopped still leaves a
summary. Standard library only (no torch, no numpy): the runner reads them on any python3.

    pytest_figures(junit_xml)   counts (tests, passed, failed, errors, skipped), failed test ids, slowest tests
    read_gates(jsonl)           {"<test id>::<gate>": {"observed", "op", "bound", "ok"}}: what each GPU test recorded
    kernel_figures(json)        the kernel table: one compact row per (layer, batch), the goal lines, complete
    runtime_figures(json)       per batch: ms/image of the fast path, eager fp16 and the fp32 reference, errors
    bench_figures(json)         hs-bench: per method status, ms/image (projected or measured), error vs the reference
    ms_per_image(benches)       {method: {"B": ms/image}} from several hs-bench runs
"""

from __future__ import annotations

import json
from pathlib import Path
import xml.etree.ElementTree as ET

from hyperstyle_trt.core.errors import one_line

KERNEL_COLUMNS = ("layer", "batch", "kind", "res", "cin", "cout", "fused_us", "staged_us", "route_us", "route_layout",
                  "pick", "kernel_us", "speedup", "kernel_tflops", "kernel_err", "route_err", "timing")


def _json(path: Path) -> dict:
    """The JSON object in `path`, or {"missing": path} / {"error": ...}."""
    try:
        obj = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return {"missing": str(path)}
    except (OSError, ValueError) as e:
        return {"error": f"{path}: {one_line(e, 200)}"}
    return obj if isinstance(obj, dict) else {"error": f"{path}: expected a JSON object, got {type(obj).__name__}"}


def pytest_figures(junit_xml: Path) -> dict:
    """Counts from pytest's --junitxml file (written at the end, also after SIGINT): tests, passed, failed, errors,
    skipped; `failed_tests` the ids of failed / erroring tests (first 30) with the first line of each message;
    `slowest` the five longest tests (s)."""
    try:
        root = ET.parse(junit_xml).getroot()
    except FileNotFoundError:
        return {"missing": str(junit_xml)}
    except (OSError, ET.ParseError) as e:
        return {"error": f"{junit_xml}: {one_line(e, 200)}"}
    counts = dict.fromkeys(("tests", "passed", "failed", "errors", "skipped"), 0)
    failed, times = [], []
    for case in root.iter("testcase"):
        tid = f"{case.get('classname', '')}::{case.get('name', '')}"
        times.append((float(case.get("time") or 0.0), tid))
        counts["tests"] += 1
        kinds = {child.tag for child in case}
        bad = next((c for c in case if c.tag in ("failure", "error")), None)
        if bad is not None:
            counts["failed" if bad.tag == "failure" else "errors"] += 1
            failed.append({"test": tid, "kind": bad.tag, "message": one_line(bad.get("message") or bad.text or "")})
        elif "skipped" in kinds:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    times.sort(reverse=True)
    return counts | {"failed_tests": failed[:30],
                     "slowest": [{"test": t, "s": round(s, 2)} for s, t in times[:5]]}


def read_gates(jsonl: Path) -> dict:
    """{"<test id>::<gate>": record} from the JSON lines the GPU tests append (tests/gpu/conftest.py's `gate`
    fixture: test, gate, observed, op, bound, ok); a later line of the same key wins; an unreadable line is kept
    under "<unreadable line N>"."""
    try:
        lines = Path(jsonl).read_text().splitlines()
    except FileNotFoundError:
        return {}
    except OSError as e:
        return {"<unreadable file>": {"error": one_line(e, 200)}}
    gates: dict = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            gates[f"{rec['test']}::{rec['gate']}"] = {k: rec.get(k) for k in ("observed", "op", "bound", "ok")}
        except (ValueError, KeyError, TypeError) as e:
            gates[f"<unreadable line {n}>"] = {"error": one_line(e, 200)}
    return gates


def kernel_figures(path: Path) -> dict:
    """`hs-bench kernels --json`'s file: complete, the goal lines and the table (KERNEL_COLUMNS per row)."""
    d = _json(path)
    if "rows" not in d:
        return d
    rows = [{k: r.get(k) for k in KERNEL_COLUMNS} for r in d["rows"]]
    return {"complete": d.get("complete"), "gpu": d["rows"][0].get("gpu") if d["rows"] else None,
            "goals": d.get("goals"), "rows": rows}


def runtime_figures(path: Path) -> dict:
    """`benchmarks.runtime --json`'s file: build time and, per batch size, ms/image of the fast path (CUDA graphs),
    eager fp16 and the fp32 reference, the speed-up, PSNR and worst relative Δ error against the reference."""
    d = _json(path)
    if "rows" not in d:
        return d
    rows = []
    for r in d["rows"]:
        rows.append({"batch": r.get("batch"), "fast_ms_per_image": (r.get("fast") or {}).get("ms_per_image"),
                     "fast_latency_ms": (r.get("fast") or {}).get("latency_ms"),
                     "eager16_ms_per_image": (r.get("eager16") or {}).get("ms_per_image"),
                     "reference_ms_per_image": (r.get("reference") or {}).get("ms_per_image"),
                     "speedup_vs_reference": r.get("speedup_vs_reference"), "psnr_db": r.get("psnr_db"),
                     "delta_rel_err_worst": (r.get("delta_rel_err") or {}).get("worst"),
                     "goal_ms_per_image": r.get("goal_ms_per_image"), "goal_met": r.get("goal_met"),
                     "first_call_s": r.get("first_call_s")})
    return {"complete": d.get("complete"), "device": d.get("device"), "precision": d.get("precision"),
            "build_s": d.get("build_s"), "max_memory_allocated": d.get("max_memory_allocated"), "rows": rows}


def bench_figures(path: Path) -> dict:
    """hs-bench's bench.json: batch, config, and per method status with ms/image (and whether it is projected from
    measured steps), the error vs hyperstyle-ref, the speed-up vs it, peak torch memory; or the reason."""
    d = _json(path)
    if "methods" not in d:
        return d
    methods = {}
    for name, m in d["methods"].items():
        if m.get("status") != "ok":
            methods[name] = {"status": m.get("status"), "reason": m.get("reason")}
            continue
        methods[name] = {"status": "ok", "ms_per_image": m.get("ms_per_image"), "projected": bool(m.get("projected")),
                         "label": m.get("label"), "vs_ref": m.get("vs_ref"),
                         "speedup_vs_ref": (m.get("speedup") or {}).get("vs_hyperstyle-ref"),
                         "peak_torch_bytes": (m.get("memory") or {}).get("peak_torch_bytes"),
                         "noisy": (m.get("spread") or {}).get("noisy"),
                         "quality_final": (m.get("quality") or {}).get("final")}
    return {"batch": d.get("batch"), "iters": d.get("iters"), "config": (d.get("config") or {}).get("config"),
            "gpu": (d.get("environment") or {}).get("gpu"), "machine": d.get("machine"), "methods": methods}


def failed_methods(figures: dict) -> list[str]:
    """`name: reason` of each hs-bench method whose status is "failed" (skipped ones are not failures)."""
    return [f"{k}: {v.get('reason')}" for k, v in (figures.get("methods") or {}).items() if v.get("status") == "failed"]


def ms_per_image(benches: list[dict]) -> dict:
    """{method: {"<batch>": ms/image}} over several bench_figures records (methods that ran, status ok)."""
    out: dict = {}
    for b in benches:
        for name, m in (b.get("methods") or {}).items():
            if m.get("status") == "ok" and b.get("batch") is not None:
                out.setdefault(name, {})[str(b["batch"])] = m.get("ms_per_image")
    return out
