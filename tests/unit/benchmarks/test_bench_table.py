"""hs-bench's trust and readability (issue #21 items 1, 2, 7, 8): human time units without e-notation, the summary
table within 100 columns (also in a terminal), --wide, the spread / percentile / noisy rules, machine load, a skipped
method's progress bar with its reason, and a plot legend naming only what is plotted."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from rich.console import Console

from hyperstyle_trt.benchmarks import spread, table
from hyperstyle_trt.benchmarks.cli import main
from hyperstyle_trt.benchmarks.e2e import bar_status

E_NOTATION = re.compile(r"\d(\.\d+)?[eE][+-]\d")
REPO = Path(__file__).resolve().parents[3]


# ---- number formats --------------------------------------------------------------------------------------------------
def test_human_ms_units():
    assert table.human_ms(0.0123) == "0.0123 ms"
    assert table.human_ms(523.4) == "523 ms"
    assert table.human_ms(999.0) == "999 ms"
    assert table.human_ms(1000.0) == "1.00 s"
    assert table.human_ms(1921.0) == "1.92 s"
    assert table.human_ms(119_000.0) == "119 s"
    assert table.human_ms(120_000.0) == "2.00 min"
    assert table.human_ms(1.921e6) == "32.0 min"  # the issue's projector figure, once "1.92 / 1e+0 / 6 *"
    assert table.human_ms(None) == "-"


def test_no_e_notation_at_any_magnitude():
    for k in range(-9, 12):
        for v in (1.0 * 10**k, 3.14159 * 10**k, -2.5 * 10**k):
            assert not E_NOTATION.search(table.plain(v)), (v, table.plain(v))
            assert not E_NOTATION.search(table.human_ms(abs(v))), v
    assert table.plain(1.921e6) == "1921000" and table.plain(0.000191) == "0.000191"
    assert table.plain(float("inf")) == "inf" and table.plain(0) == "0" and table.plain(None) == "-"


# ---- spread, percentiles, noisy ------------------------------------------------------------------------------------
def test_percentiles_need_enough_samples():
    s2 = spread.timing_stats([1.0, 3.0])
    assert s2["n"] == 2 and s2["min"] == 1.0 and s2["median"] == 2.0 == s2["p50"] and s2["max"] == 3.0
    assert "p95" not in s2 and "p99" not in s2
    assert s2["omitted"] == "p95 needs >= 20 samples; p99 needs >= 100 samples; 2 taken"
    s20 = spread.timing_stats([float(i) for i in range(1, 21)])
    assert s20["p95"] == pytest.approx(19.05) and "p99" not in s20 and "p99 needs >= 100" in s20["omitted"]
    s100 = spread.timing_stats([float(i) for i in range(100)])
    assert s100["p95"] == pytest.approx(94.05) and s100["p99"] == pytest.approx(98.01) and "omitted" not in s100
    one = spread.timing_stats([5.0])
    assert one["cv"] is None and one["max_over_min"] is None and one["median"] == 5.0
    with pytest.raises(ValueError):
        spread.timing_stats([])


def test_noisy_rule():
    # the issue's run: 522, 2163, 249 and 54 ms/image for the same command
    issue = spread.timing_stats([522.0, 2163.0, 249.0, 54.0])
    v = spread.verdict(issue)
    assert v["noisy"] and any(w.startswith("cv ") for w in v["why"]) and any("max/min" in w for w in v["why"])
    steady = spread.timing_stats([100.0, 104.0, 98.0, 101.0])
    assert spread.verdict(steady) == {"noisy": False, "why": []}
    assert spread.verdict(spread.timing_stats([100.0, 210.0]))["noisy"]  # max/min 2.1 > 2
    # one latency sample: only throughput vs median latency can tell (the issue's 12x)
    one = spread.timing_stats([1200.0])
    assert spread.verdict(one) == {"noisy": False, "why": []}
    assert spread.verdict(one, throughput_ms=100.0)["why"] == ["throughput vs latency 12.0x"]
    assert not spread.verdict(one, throughput_ms=700.0)["noisy"]
    rules = spread.rules()
    assert rules["noisy"]["cv_above"] == 0.2 and rules["noisy"]["max_over_min_above"] == 2.0
    assert rules["percentile_min_samples"] == {"p95": 20, "p99": 100}
    json.dumps(rules)


def test_machine_load_and_busy():
    m = spread.machine_load()
    assert m["cpu_count"] == os.cpu_count()
    if hasattr(os, "getloadavg"):
        assert len(m["load"]) == 3
    assert spread.busy({"load": [3.1, 2.0, 1.0], "cpu_count": 2}).startswith("the machine was busy at the start "
                                                                            "(load 3.10 on 2 CPUs)")
    assert spread.busy({"load": [0.5, 2.0, 1.0], "cpu_count": 2}) is None
    assert spread.busy({"load": None, "cpu_count": 2}) is None


# ---- the summary on a made-up record --------------------------------------------------------------------------------
def _ok(ms_per_image, kind="feedforward", **kw):
    m = {"status": "ok", "kind": kind, "ms_per_image": ms_per_image, "throughput": {"images_per_s": 1e3 / ms_per_image},
         "quality": {"mse": 0.01, "psnr_db": 20.0, "final": True},
         "spread": {"unit": "ms per batch", "n": 20, "min": 1.0, "median": 1.1, "max": 1.2, "cv": 0.05,
                    "max_over_min": 1.2, "noisy": False, "why": []},
         "latency_ms_per_batch": {"n": 20, "p50": 1.1, "p95": 1.2, "min": 1.0, "max": 1.2}}
    m.update(kw)
    return m


def _record():
    reason = "onnxruntime not installed (pip install 'hyperstyle-trt[export]') " + "and a long tail " * 20
    methods = {
        "projector": _ok(1.921e6, kind="optimization", projected=True, label="projected from 2 measured steps",
                         short_label="projected from 2 steps",
                         quality={"mse": 0.12, "psnr_db": 9.3, "final": False, "after": "2 steps"}),
        "pti": _ok(4.0e5, kind="optimization", projected=False, label="measured over the full run",
                   short_label="full run", quality={"mse": 0.02, "psnr_db": 17.0, "final": True}),
        "hyperstyle-ref": _ok(522.0),
        "hyperstyle-fast": _ok(0.00054),
        "hyperstyle-trt": {"status": "skipped", "reason": "no CUDA GPU (TensorRT engines run on a GPU)"},
        "hyperstyle-ort": {"status": "failed", "reason": reason},
    }
    methods["hyperstyle-fast"]["spread"] = methods["hyperstyle-fast"]["spread"] | {"noisy": True,
                                                                                   "why": ["cv 0.45"]}
    for m in methods.values():
        if m["status"] == "ok":
            m["speedup"] = {"vs_hyperstyle-ref": 522.0 / m["ms_per_image"], "vs_pti": 4.0e5 / m["ms_per_image"]}
    return {"batch": 8, "iters": 5, "environment": {"config": "ffhq1024", "device": "cuda:0"}, "methods": methods,
            "notes": ["a note with [brackets] kept"], "sweep": {"hyperstyle-fast": [{"batch": 1, "ms_per_image": 5e4}]},
            "machine": {"cpu_count": 16, "load_start": [0.2, 0.1, 0.1], "load_end": [1.0, 0.5, 0.2]},
            "trust": spread.rules()}


def _render(record, width, wide=False) -> str:
    buf = io.StringIO()
    table.print_table(record, Console(file=buf, width=width, force_terminal=False), wide=wide)
    return buf.getvalue()


def _cells(text: str, name: str) -> list[str]:
    row = next(x for x in text.splitlines() if x.startswith(f"│ {name} "))
    return [c.strip() for c in row.strip("│").split("│")]


@pytest.mark.parametrize("width", [100, 80, 230])
def test_summary_fits_and_labels(width):
    r = _record()
    text = _render(r, width)
    assert max(len(x) for x in text.splitlines()) <= min(width, 100)
    assert not E_NOTATION.search(text)
    # method, status, time/image, x vs ref, PSNR dB, note: numbers never break across lines
    assert _cells(text, "projector")[1:5] == ["ok", "~32.0 min", "0.000272×", "-"]  # no after-2-steps PSNR here
    assert _cells(text, "pti")[1:5] == ["ok", "6.67 min", "0.00130×", "17.0"]  # a full run's PSNR is final
    assert _cells(text, "hyperstyle-ref")[1:5] == ["ok", "522 ms", "1.00×", "20.0"]
    assert _cells(text, "hyperstyle-fast")[1:3] == ["noisy", "0.000540 ms"]
    assert _cells(text, "hyperstyle-trt")[1:5] == ["skipped", "-", "-", "-"]
    assert _cells(text, "hyperstyle-ort")[1] == "failed"
    assert "load average (1 min) 0.20" in text and "B=1: 50.0 s/image" in text
    m = r["methods"]
    assert table.summary_note(m["projector"]) == "projected from 2 steps; PSNR 9.30 dB after them"
    assert table.summary_note(m["pti"]) == "full run"
    assert table.summary_note(m["hyperstyle-fast"]) == "noisy: cv 0.45"
    assert table.summary_note(m["hyperstyle-ref"]) == ""
    assert table.summary_note(m["hyperstyle-trt"]) == "no CUDA GPU (TensorRT engines run on a GPU)"
    note = table.summary_note(m["hyperstyle-ort"])
    assert note.startswith("onnxruntime not installed (pip install 'hyperstyle-trt[export]')") and note.endswith("…")
    assert len(note) == table.REASON_CHARS
    if width >= 100:  # wide enough for the bracketed words to stay on one line: rich markup left them alone
        assert "[export]" in text and "[brackets]" in text


def test_wide_table_has_every_figure():
    text = _render(_record(), 260, wide=True)
    for col in ("x vs pti", "min ms", "median ms", "max ms", "cv", "p95 ms", "p99 ms", "img/s", "peak MB", "MSE",
                "max|Δ| ref", "PSNR ref"):
        assert col in text, col
    assert "† quality after the measured steps only" in text and "9.30 †" in text
    assert not E_NOTATION.search(text)


# ---- the progress bar of a method that does not run ------------------------------------------------------------------
def test_bar_status():
    assert bar_status({"status": "ok", "spread": {"noisy": False}}) == ""
    assert bar_status({"status": "ok", "spread": {"noisy": True}}) == "noisy"
    assert bar_status({"status": "skipped", "reason": "no CUDA GPU"}) == "skipped: no CUDA GPU"
    long = bar_status({"status": "failed", "reason": "x" * 100})
    assert long.startswith("failed: xxx") and long.endswith("…") and len(long) == 36


def test_skipped_method_shows_in_the_progress_and_wide(tmp_path, capsys):
    """A cheap run: hyperstyle-ref and a method that cannot run here; its bar carries "skipped: <reason>"."""
    pytest.importorskip("matplotlib", reason="hs-bench needs the bench extra (matplotlib)")
    if torch.cuda.is_available():
        pytest.skip("hyperstyle-trt runs with a GPU; this checks its skipped bar")
    rc = main(["--config", "tiny", "--device", "cpu", "--batch", "1", "--repeats", "1", "--warmup", "0",
               "--methods", "hyperstyle-ref,hyperstyle-trt", "--out", str(tmp_path), "--wide"])
    assert rc == 0
    err = capsys.readouterr().err
    bar = [x for x in err.splitlines() if x.startswith("hyperstyle-trt ") and "0/" in x]
    assert bar and "skipped: no CUDA GPU" in bar[0], err
    assert "median ms" in err and "p95 ms" in err and "full detail" not in err  # --wide: the full table
    assert max(len(x) for x in err.splitlines()) > 100  # the full table is wider than the summary
    r = json.loads((tmp_path / "bench.json").read_text())
    assert r["config"]["wide"] is True and r["methods"]["hyperstyle-trt"]["status"] == "skipped"


# ---- a terminal of 100 columns -------------------------------------------------------------------------------------
@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_summary_fits_a_100_column_terminal(tmp_path):
    """The make-demo command in a pseudo-terminal with COLUMNS=100: no line (between cursor moves) longer than 100
    characters, no e-notation, times in ms / s / min."""
    pytest.importorskip("matplotlib", reason="hs-bench needs the bench extra (matplotlib)")
    import pty

    master, slave = pty.openpty()
    env = dict(os.environ, COLUMNS="100", LINES="40", TERM="xterm-256color")
    cmd = [sys.executable, "-m", "hyperstyle_trt.benchmarks.cli", "--config", "tiny", "--device", "cpu", "--batch",
           "2", "--repeats", "1", "--warmup", "0", "--baseline-steps", "1", "--out", str(tmp_path / "out")]
    p = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=REPO, close_fds=True)
    os.close(slave)
    buf, t0 = b"", time.monotonic()
    try:
        while time.monotonic() - t0 < 600:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            buf += chunk
    finally:
        os.close(master)
        rc = p.wait(timeout=60)
    assert rc == 0, buf.decode("utf-8", "replace")[-2000:]
    text = re.sub(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07", "", buf.decode("utf-8", "replace"))
    pieces = re.split(r"[\r\n]", text)
    assert max(len(x) for x in pieces) <= 100, max(pieces, key=len)
    assert not E_NOTATION.search(text), E_NOTATION.search(text)
    rows = [x for x in pieces if x.startswith("│ projector") or x.startswith("│ hyperstyle-ref")]
    assert len(rows) == 2 and all(re.search(r"│ +~?[0-9.]+ (ms|s|min) │", x) for x in rows), rows
