"""`hs-bench`'s outputs: speed-ups between methods, the rich table, bench.json (strict JSON: inf / nan as strings)
and the PNG plots (ms_per_image.png, log scale; with --sweep, ms_per_image_vs_batch.png)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from hyperstyle_trt.core.atomic import atomic_path, write_json_atomic


def speedups(record: dict) -> None:
    """Each ok method's speed-up vs hyperstyle-ref and vs pti (labelled when a time is projected); record["sweep"]."""
    ms = {k: v.get("ms_per_image") for k, v in record["methods"].items() if v.get("status") == "ok"}
    for k, v in record["methods"].items():
        if v.get("status") != "ok":
            continue
        v["speedup"] = {f"vs_{b}": (ms[b] / ms[k] if b in ms and ms[k] else None) for b in ("hyperstyle-ref", "pti")}
        if v.get("projected"):
            v["speedup"]["note"] = f"this method's time is {v['label']}"
        elif "pti" in ms and record["methods"]["pti"].get("projected"):
            v["speedup"]["note"] = f"vs_pti uses pti's time {record['methods']['pti']['label']}"
    record["sweep"] = {k: v["sweep"] for k, v in record["methods"].items() if v.get("sweep")}


# ---- table and files ------------------------------------------------------------------------------------------------
def _fmt(v, spec: str = ".3g") -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return format(v, spec)


def print_table(record: dict, console) -> None:
    from rich.table import Table

    t = Table(title=f"hs-bench: batch {record['batch']}, T={record['iters']}, {record['environment']['config']} on "
                    f"{record['environment']['device']}", show_lines=False)
    for col in ("method", "status", "ms/image", "x vs ref", "x vs pti", "p50 ms", "p95 ms", "p99 ms", "img/s",
                "peak MB", "MSE", "PSNR dB", "max|Δ| ref", "PSNR ref", "note"):
        t.add_column(col, justify="left" if col in ("method", "status", "note") else "right",
                     overflow="fold", max_width=48 if col == "note" else None)
    for name, m in record["methods"].items():
        if m.get("status") != "ok":
            t.add_row(name, m.get("status", "?"), *["-"] * 12, m.get("reason", ""))
            continue
        lat = m.get("latency_ms_per_batch") or m.get("latency_ms_per_step") or {}
        per = " (per step)" if "latency_ms_per_step" in m else ""
        mem = (m.get("memory") or {}).get("peak_torch_bytes")
        vs = m.get("vs_ref") or {}
        note = m.get("label") or (m.get("runner") or {}).get("note", "")
        if per:
            note = f"{note}; p50-p99 per step"
        sp = m.get("speedup") or {}
        t.add_row(name, "ok", _fmt(m["ms_per_image"], ".4g") + (" *" if m.get("projected") else ""),
                  _fmt(sp.get("vs_hyperstyle-ref")), _fmt(sp.get("vs_pti")), _fmt(lat.get("p50")),
                  _fmt(lat.get("p95")), _fmt(lat.get("p99")), _fmt(m["throughput"]["images_per_s"]),
                  _fmt(None if mem is None else mem / 2**20, ".1f"), _fmt(m["quality"]["mse"]),
                  _fmt(m["quality"]["psnr_db"], ".2f"), _fmt(vs.get("max_abs_err")), _fmt(vs.get("psnr_db"), ".2f"),
                  note)
    console.print(t)
    if any(m.get("projected") for m in record["methods"].values()):
        console.print("* projected: full-run time from the measured steps (see the note column); "
                      "--full-baselines runs them to completion")
    for n in record["notes"]:
        console.print(f"note: {n}")
    for name, rows in record["sweep"].items():
        console.print(f"sweep {name}: " + ", ".join(f"B={r['batch']}: {r['ms_per_image']:.3g} ms/image" for r in rows))


def _save_fig(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return path


def write_plots(record: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    paths = []
    ok = [(k, v) for k, v in record["methods"].items() if v.get("status") == "ok"]
    fig, ax = plt.subplots(figsize=(8, 0.6 * max(3, len(record["methods"])) + 1))
    names = list(record["methods"])
    vals = [record["methods"][n].get("ms_per_image") if record["methods"][n].get("status") == "ok" else None
            for n in names]
    colors = ["#c44e52" if record["methods"][n].get("projected") else
              "#4c72b0" if n.startswith("hyperstyle") else "#dd8452" for n in names]
    ys = list(range(len(names)))
    ax.set_xlim(1, 1e3)
    ax.set_xscale("log")
    bars = [(y, v, c) for y, v, c in zip(ys, vals, colors) if v]  # a skipped method gets its reason, no bar
    if bars:
        ax.barh([b[0] for b in bars], [b[1] for b in bars], color=[b[2] for b in bars])
    for y, n, v in zip(ys, names, vals):
        m = record["methods"][n]
        txt = (f"{v:.3g} ms" + (" (projected)" if m.get("projected") else "")) if v else \
            f"{m.get('status')}: {str(m.get('reason', ''))[:60]}"
        at = v if v else (min(u for u in vals if u) / 3 if ok else 1.0)
        ax.text(at, y, " " + txt, va="center", fontsize=8)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color="#4c72b0", label="HyperStyle (measured)"),
                       Patch(color="#dd8452", label="optimisation (measured, full run)"),
                       Patch(color="#c44e52", label="optimisation (projected from measured steps)")],
              loc="lower right", fontsize=7)
    ax.set_yticks(ys, names)
    ax.set_ylim(len(names) - 0.5, -0.5)  # first method on top
    ax.set_xlabel("ms per image (log scale)")
    env = record["environment"]
    ax.set_title(f"hs-bench: batch {record['batch']}, T={record['iters']}, {env['config']} on "
                 f"{env.get('gpu') or env['device']}", fontsize=9)
    if ok:
        lo = min(v for v in vals if v)
        hi = max(v for v in vals if v)
        ax.set_xlim(lo / 3, hi * 30)
    paths.append(_save_fig(fig, out / "ms_per_image.png"))
    plt.close(fig)
    if record["sweep"]:
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, rows in record["sweep"].items():
            ax.plot([r["batch"] for r in rows], [r["ms_per_image"] for r in rows], marker="o", label=name)
        ax.set_xscale("log", base=2)
        bs = sorted({r["batch"] for rows in record["sweep"].values() for r in rows})
        ax.set_xticks(bs, [str(b) for b in bs])
        ax.minorticks_off()
        ax.set_yscale("log")
        ax.set_xlabel("batch")
        ax.set_ylabel("ms per image (log scale)")
        ax.set_title(f"ms/image vs batch ({env['config']} on {env.get('gpu') or env['device']})", fontsize=9)
        ax.legend()
        ax.grid(True, which="both", alpha=0.3)
        paths.append(_save_fig(fig, out / "ms_per_image_vs_batch.png"))
        plt.close(fig)
    return paths


def write_outputs(record: dict, out: Path) -> list[Path]:
    record["plots"] = [p.name for p in (out / "ms_per_image.png",
                                        *([out / "ms_per_image_vs_batch.png"] if record["sweep"] else []))]
    j = write_json_atomic(out / "bench.json", _clean(record))
    return [j, *write_plots(record, out)]


def _clean(o):
    """A JSON-safe copy: inf / nan -> "inf" / "nan" strings (strict JSON has neither), numpy scalars -> Python."""
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, (np.floating, np.integer)):
        o = o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    return o if isinstance(o, (str, int, float, bool, type(None))) else str(o)
