"""`hs-bench kernels`' report: the rich table of its rows and the issue's speed goals judged on them (reported,
never asserted)."""

from __future__ import annotations

from hyperstyle_trt.benchmarks.timing import CAPTURE_FAILURES


def print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    gpu = rows[0]["gpu"] if rows else "?"
    tab = Table(title=f"modulated-conv kernels vs PyTorch route, fp16 ({gpu}; median µs; pick = what the op runs)")
    for col in ("layer", "B", "shape", "fused µs", "staged µs", "route µs", "route layout", "pick", "route/pick",
                "pick TFLOPS", "pick err", "route err", "timing"):
        tab.add_column(col, justify="left" if col in ("layer", "shape", "pick") else "right")
    opt = lambda v, fmt: "-" if v is None else format(v, fmt)  # noqa: E731
    for r in rows:
        shape = f"{r['cin']}->{r['cout']} @{r['res']}²" + (" up" if r["kind"] == "up" else "")
        tab.add_row(r["layer"], str(r["batch"]), shape, f"{r['fused_us']:.1f}", opt(r["staged_us"], ".1f"),
                    f"{r['route_us']:.1f}", r["route_layout"], r["pick"], f"{r['speedup']:.2f}x",
                    f"{r['kernel_tflops']:.1f}", f"{r['kernel_err']:.2e}", f"{r['route_err']:.2e}", r["timing"])
    con = Console()
    if not con.is_terminal:  # a log (| tee): rich would fall back to 80 columns and cut the cells
        con = Console(width=200)
    con.print(tab)


def goals(rows: list[dict], expected: int | None = None) -> list[str]:
    """The issue's speed goals, judged on `rows` (report only; never asserted) with our pick per layer (kernel_us):
    ours >= route on every layer, >= 2x at <= 32^2 (output resolution), and the summed StyledConv time at B=8 >= 3x
    lower than the route's. Then a `strategy` line: rows whose pick was > 5% slower than the other path, and a
    `timing` line when any row was timed eagerly. expected: the run's row count; fewer rows (a run stopped by a time
    limit) mark every line partial."""
    lines = _goal_lines(rows)
    eager = [f"{r['layer']}@B{r['batch']} ({r['timing']})" for r in rows if "eager" in r.get("timing", "")]
    eager += [f"{r['layer']}@B{r['batch']} route {k} ({v})" for r in rows
              for k, v in r.get("route_timing_by_layout", {}).items() if k != r.get("route_layout")
              and v not in ("graph", "cpu")]  # the other route layout: eager or failed
    if eager:
        why = f"; capture failures: {'; '.join(dict.fromkeys(CAPTURE_FAILURES))}" if CAPTURE_FAILURES else ""
        lines.append(f"NOTE timing: eager (not CUDA-graph) or failed on {len(eager)} rows: {', '.join(eager)}{why}")
    if expected is not None and len(rows) < expected:
        lines = [f"{line} [partial: {len(rows)}/{expected} rows]" for line in lines]
    return lines


def _goal_lines(rows: list[dict]) -> list[str]:
    lines = []
    slow = [f"{r['layer']}@B{r['batch']} {r['speedup']:.2f}x" for r in rows if r["speedup"] < 1.0]
    lines.append(("MET  " if not slow else "MISS ") + "ours >= route on every layer" +
                 (f": slower on {', '.join(slow)}" if slow else f" ({len(rows)} rows)"))
    small = [r for r in rows if r["res"] <= 32]
    miss = [f"{r['layer']}@B{r['batch']} {r['speedup']:.2f}x" for r in small if r["speedup"] < 2.0]
    if small:
        lines.append(("MET  " if not miss else "MISS ") + ">= 2x at <= 32^2" +
                     (f": {', '.join(miss)}" if miss else f" ({len(small)} rows)"))
    for b in sorted({r["batch"] for r in rows}):
        conv = [r for r in rows if r["batch"] == b and r["kind"] != "rgb"]
        if conv:
            f, t = sum(r["kernel_us"] for r in conv), sum(r["route_us"] for r in conv)
            allr = [r for r in rows if r["batch"] == b]
            fa, ta = sum(r["kernel_us"] for r in allr), sum(r["route_us"] for r in allr)
            tag = ("MET  " if t / f >= 3.0 else "MISS ") if b == 8 else "     "
            lines.append(f"{tag}B={b}: StyledConvs summed {f:.0f} µs ours vs {t:.0f} µs route = {t / f:.2f}x"
                         f"{' (goal >= 3x)' if b == 8 else ''}; with toRGBs {fa:.0f} vs {ta:.0f} µs = {ta / fa:.2f}x")
    both = [r for r in rows if r.get("staged_us") is not None]
    if both:
        other = lambda r: r["fused_us"] if r["pick"] == "staged" else r["staged_us"]  # noqa: E731
        wrong = [f"{r['layer']}@B{r['batch']} ({r['pick']} {r['kernel_us']:.1f} vs {other(r):.1f} µs)"
                 for r in both if r["kernel_us"] > 1.05 * other(r)]
        lines.append("     strategy: " + (f"the other path was > 5% faster on {', '.join(wrong)}" if wrong else
                                          f"the pick is within 5% of the faster path on all {len(both)} rows"))
    return lines


