"""hs-bench writes bench.json after every method (`complete: false`), so a run stopped early (Ctrl-C, gpu-check's
time limit) keeps the figures of the methods that finished; a finished run says `complete: true`."""

from __future__ import annotations

import json

import pytest
import torch

from hyperstyle_trt.benchmarks import e2e
from hyperstyle_trt.benchmarks.cli import main

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU hyperstyle-trt would build engines; "
                                "this checks the CPU run, where it is skipped")
ARGS = ["--config", "tiny", "--device", "cpu", "--batch", "1", "--repeats", "1", "--warmup", "0",
        "--methods", "hyperstyle-ref,hyperstyle-trt"]


def test_interrupted_run_keeps_finished_methods(tmp_path, monkeypatch, capsys):
    real = e2e._run_method

    def second_is_interrupted(ctx, m, prog):
        if m.name == "hyperstyle-trt":
            raise KeyboardInterrupt
        return real(ctx, m, prog)

    monkeypatch.setattr(e2e, "_run_method", second_is_interrupted)
    assert main([*ARGS, "--out", str(tmp_path)]) == 130
    r = json.loads((tmp_path / "bench.json").read_text())
    assert r["complete"] is False and list(r["methods"]) == ["hyperstyle-ref"]
    assert r["methods"]["hyperstyle-ref"]["status"] == "ok" and r["methods"]["hyperstyle-ref"]["ms_per_image"] > 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".bench")] == []  # nothing half-written


def test_finished_run_is_complete(tmp_path, capsys):
    assert main([*ARGS, "--out", str(tmp_path)]) == 0
    r = json.loads((tmp_path / "bench.json").read_text())
    assert r["complete"] is True and set(r["methods"]) == {"hyperstyle-ref", "hyperstyle-trt"}
