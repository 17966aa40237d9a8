"""`hs-bench`'s tables on the terminal: a summary that fits 100 columns (the default) and the full table (--wide).

Summary columns: method, status (ok / noisy / skipped / failed), time per image in human units, speed-up vs
hyperstyle-ref, PSNR (dB, final quality only: a baseline stopped after K measured steps gets its PSNR in the note,
"after K steps"), and a short note (projection, noise, the reason a method did not run). The full table adds x vs
pti, the spread (min / median / max ms, cv), p95 / p99 where the sample count supports them, img/s, peak memory, MSE
and the error vs the reference. Numbers are never in e-notation: times < 1 s in ms, < 120 s in s, else in min.
"""

from __future__ import annotations

import math

from rich.markup import escape

SUMMARY_WIDTH = 100
REASON_CHARS = 70  # a skip / failure reason in the summary (bench.json and --wide hold all of it)


# ---- number formats --------------------------------------------------------------------------------------------------
def plain(v, sig: int = 3) -> str:
    """`v` with about `sig` significant digits in positional notation (never e-notation); None -> "-"."""
    if v is None:
        return "-"
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "0"
    dec = max(0, sig - 1 - math.floor(math.log10(abs(v))))
    return f"{v:.{dec}f}"  # the "f" format never switches to e-notation; a long integer part stays whole


def human_ms(ms) -> str:
    """A duration given in ms: "523 ms" below 1 s, "1.92 s" below 120 s, else "32.0 min"; None -> "-"."""
    if ms is None:
        return "-"
    ms = float(ms)
    if not math.isfinite(ms):
        return plain(ms)
    if ms < 1e3:
        return f"{plain(ms)} ms"
    if ms < 120e3:
        return f"{plain(ms / 1e3)} s"
    return f"{plain(ms / 60e3)} min"


def _short(text: str, n: int = REASON_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:n - 1] + "…"


# ---- rows ------------------------------------------------------------------------------------------------------------
def status_of(m: dict) -> str:
    """The table's status: "noisy" for an ok method whose spread is large, else the record's status."""
    st = m.get("status", "?")
    return "noisy" if st == "ok" and (m.get("spread") or {}).get("noisy") else st


def _final_psnr(m: dict) -> str:
    q = m.get("quality") or {}
    if q.get("final") is False:
        return "-"  # after K measured steps: in the note, never as the method's quality
    return plain(q.get("psnr_db"))


def summary_note(m: dict) -> str:
    """The summary's note: projection, quality after K steps, noise verdict or the sample count; the reason a method
    was skipped or failed."""
    if m.get("status") != "ok":
        return _short(m.get("reason", ""))
    parts = []
    if m.get("kind") == "optimization":
        parts.append(m.get("short_label") or m.get("label", ""))
    q = m.get("quality") or {}
    if q.get("final") is False:  # "after them": the measured steps the projection just named
        parts.append(f"PSNR {plain(q.get('psnr_db'))} dB after them" if m.get("short_label") else
                     f"PSNR {plain(q.get('psnr_db'))} dB after {q.get('after')}")
    sp = m.get("spread") or {}
    if sp.get("noisy"):
        parts.append("noisy: " + ", ".join(sp.get("why", [])))
    elif sp.get("n") == 1 and not m.get("projected"):
        parts.append("1 timed sample")
    return "; ".join(p for p in parts if p)


def _time(m: dict) -> str:
    if m.get("status") != "ok":
        return "-"
    return ("~" if m.get("projected") else "") + human_ms(m.get("ms_per_image"))


def _x(v) -> str:
    return "-" if v is None else plain(v) + "×"


def _title(record: dict) -> str:
    env = record["environment"]
    return f"hs-bench: batch {record['batch']}, T={record['iters']}, {env['config']} on {env['device']}"


def summary_table(record: dict, width: int = SUMMARY_WIDTH):
    """The rich Table of the summary, at most `width` columns wide."""
    from rich.table import Table

    t = Table(title=_title(record), width=width)
    t.add_column("method", no_wrap=True)
    t.add_column("status", no_wrap=True)
    t.add_column("time/image", justify="right", no_wrap=True)
    t.add_column("x vs ref", justify="right", no_wrap=True)
    t.add_column("PSNR dB", justify="right", no_wrap=True)
    t.add_column("note", ratio=1, overflow="fold")
    for name, m in record["methods"].items():
        sp = m.get("speedup") or {}
        t.add_row(name, status_of(m), _time(m), _x(sp.get("vs_hyperstyle-ref")),
                  _final_psnr(m) if m.get("status") == "ok" else "-", escape(summary_note(m)))
    return t


def wide_table(record: dict):
    """The rich Table with every figure (--wide)."""
    from rich.table import Table

    t = Table(title=_title(record))
    cols = ("method", "status", "time/image", "x vs ref", "x vs pti", "min ms", "median ms", "max ms", "cv",
            "p95 ms", "p99 ms", "img/s", "peak MB", "MSE", "PSNR dB", "max|Δ| ref", "PSNR ref", "note")
    for col in cols:
        left = col in ("method", "status", "note")
        t.add_column(col, justify="left" if left else "right", no_wrap=col != "note", overflow="fold",
                     max_width=48 if col == "note" else None)
    for name, m in record["methods"].items():
        if m.get("status") != "ok":
            t.add_row(name, m.get("status", "?"), *["-"] * (len(cols) - 3), escape(str(m.get("reason", ""))))
            continue
        lat = m.get("latency_ms_per_batch") or m.get("latency_ms_per_step") or {}
        sp, spd = m.get("spread") or {}, m.get("speedup") or {}
        mem = (m.get("memory") or {}).get("peak_torch_bytes")
        vs, q = m.get("vs_ref") or {}, m.get("quality") or {}
        mark = "" if q.get("final", True) else " †"
        notes = [m.get("label") or (m.get("runner") or {}).get("note", "")]
        if "latency_ms_per_step" in m:
            notes.append(f"min/median/max in {sp.get('unit', 'ms per step')}, p95/p99 per step")
        if sp.get("noisy"):
            notes.append("noisy: " + ", ".join(sp.get("why", [])))
        t.add_row(name, status_of(m), _time(m), _x(spd.get("vs_hyperstyle-ref")), _x(spd.get("vs_pti")),
                  plain(sp.get("min")), plain(sp.get("median")), plain(sp.get("max")), plain(sp.get("cv"), 2),
                  plain(lat.get("p95")), plain(lat.get("p99")), plain(m["throughput"]["images_per_s"]),
                  plain(None if mem is None else mem / 2**20), plain(q.get("mse")) + mark,
                  plain(q.get("psnr_db")) + mark, plain(vs.get("max_abs_err"), 2), plain(vs.get("psnr_db")),
                  escape("; ".join(n for n in notes if n)))
    return t


def _load_line(record: dict) -> str | None:
    m = record.get("machine") or {}
    a, b = m.get("load_start"), m.get("load_end")
    if not a:
        return None
    end = f", {b[0]:.2f} at the end" if b else ""
    return f"machine: {m.get('cpu_count')} CPUs, load average (1 min) {a[0]:.2f} at the start{end}"


def print_table(record: dict, console, wide: bool = False) -> None:
    """The summary (or with `wide` the full table), then the footnotes, notes and sweep lines; the summary and its
    lines stay within 100 columns even on a wider terminal."""
    methods = record["methods"].values()
    width = None if wide else min(SUMMARY_WIDTH, console.width)

    def out(text: str) -> None:
        console.print(text, width=width)

    console.print(wide_table(record) if wide else summary_table(record, width))
    if any(m.get("projected") for m in methods):
        out("~ projected: full-run time from the measured steps; --full-baselines runs them to completion")
    if wide and any((m.get("quality") or {}).get("final") is False for m in methods):
        out("† quality after the measured steps only, not the baseline's final quality")
    if any((m.get("spread") or {}).get("noisy") for m in methods if m.get("status") == "ok"):
        out("noisy: the timed samples spread widely (the rule: bench.json's trust); rerun on a quiet machine with "
            "more --repeats")
    line = _load_line(record)
    if line:
        out(line)
    for n in record["notes"]:
        out(f"note: {escape(n)}")
    for name, rows in record["sweep"].items():
        out(f"sweep {name}: " + ", ".join(f"B={r['batch']}: {human_ms(r['ms_per_image'])}/image" for r in rows))
    if not wide:
        out("full detail: bench.json, or hs-bench --wide")
