"""`hs-bench`'s outputs: speed-ups between methods, bench.json (strict JSON: inf / nan as strings) and the PNG plots
(ms_per_image.png, log scale; with --sweep, ms_per_image_vs_batch.png). The terminal tables are benchmarks.table's.

ms_per_image.png: one bar per method that ran, coloured by kind (HyperStyle measured; optimisation measured over the
full run; optimisation projected from measured steps); a method that did not run gets its reason and no bar; the
legend names only the kinds that have a bar."""

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


# ---- files ----------------------------------------------------------------------------------------------------------
def _save_fig(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return path


# legend label of each bar colour
BAR_KINDS = {"#4c72b0": "HyperStyle (measured)", "#dd8452": "optimisation (measured, full run)",
             "#c44e52": "optimisation (projected from measured steps)"}


def _bar_colour(name: str, m: dict) -> str:
    return "#c44e52" if m.get("projected") else "#4c72b0" if name.startswith("hyperstyle") else "#dd8452"


def ms_per_image_figure(record: dict):
    """(fig, ax) of ms_per_image.png: the methods' bars (module docstring), the legend naming only plotted kinds."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from hyperstyle_trt.benchmarks.table import human_ms

    methods = record["methods"]
    fig, ax = plt.subplots(figsize=(8, 0.6 * max(3, len(methods)) + 1))
    names = list(methods)
    vals = [methods[n].get("ms_per_image") if methods[n].get("status") == "ok" else None for n in names]
    colors = [_bar_colour(n, methods[n]) for n in names]
    ys = list(range(len(names)))
    ax.set_xlim(1, 1e3)
    ax.set_xscale("log")
    bars = [(y, v, c) for y, v, c in zip(ys, vals, colors) if v]  # a skipped method gets its reason, no bar
    if bars:
        ax.barh([b[0] for b in bars], [b[1] for b in bars], color=[b[2] for b in bars])
    for y, n, v in zip(ys, names, vals):
        m = methods[n]
        txt = (human_ms(v) + (" (projected)" if m.get("projected") else "")) if v else \
            f"{m.get('status')}: {str(m.get('reason', ''))[:60]}"
        at = v if v else (min(u for u in vals if u) / 3 if bars else 1.0)
        ax.text(at, y, " " + txt, va="center", fontsize=8)
    plotted = [c for c in BAR_KINDS if any(b[2] == c for b in bars)]
    if plotted:
        ax.legend(handles=[Patch(color=c, label=BAR_KINDS[c]) for c in plotted], loc="lower right", fontsize=7)
    ax.set_yticks(ys, names)
    ax.set_ylim(len(names) - 0.5, -0.5)  # first method on top
    ax.set_xlabel("ms per image (log scale)")
    env = record["environment"]
    ax.set_title(f"hs-bench: batch {record['batch']}, T={record['iters']}, {env['config']} on "
                 f"{env.get('gpu') or env['device']}", fontsize=9)
    if bars:
        lo = min(b[1] for b in bars)
        hi = max(b[1] for b in bars)
        ax.set_xlim(lo / 3, hi * 30)
    return fig, ax


def write_plots(record: dict, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    paths = []
    fig, _ = ms_per_image_figure(record)
    env = record["environment"]
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


def write_partial(record: dict, out: Path) -> Path:
    """bench.json as it stands (`complete: false`), rewritten after each method, so a run stopped early (Ctrl-C,
    gpu-check's time limit) still leaves every finished method's figures."""
    return write_json_atomic(out / "bench.json", _clean({**record, "complete": False}))


def write_outputs(record: dict, out: Path) -> list[Path]:
    record["complete"] = True
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
