"""benchmarks.runtime: the one-line refusal without a GPU, a CPU dry run of the harness (tiny config), and the
partial report after each batch size and on an interrupt (KeyboardInterrupt simulated in the dry run)."""

import json

import pytest
import torch

from hyperstyle_trt.benchmarks.runtime import main


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_refuses_without_gpu(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: benchmarks.runtime needs a CUDA GPU") and err.count("\n") == 1


def test_bad_batches(capsys):
    assert main(["--batches", "0,x"]) == 2
    assert capsys.readouterr().err.startswith("error: --batches must be positive integers")


def test_cpu_dry_run_writes_the_report(tmp_path):
    out = tmp_path / "hyperstyle_trt.runtime.json"
    assert main(["--cpu-dry-run", "--config", "tiny", "--batches", "1", "--iters", "1", "--reps", "1",
                 "--warmup", "0", "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["cpu_dry_run"] and rep["precision"] == "fp32" and rep["note"].startswith("CPU dry run")
    assert rep["complete"] is True and "interrupted" not in rep
    (row,) = rep["rows"]
    assert row["batch"] == 1 and row["goal_met"] is None
    assert row["fast"]["ms_per_image"] > 0 and row["reference"]["ms_per_image"] > 0
    assert set(row["fast"]["stages"]["per_inversion_ms"]) == {"w_encoder", "hypernet", "generator"}
    assert row["psnr_db"] > 100 and row["delta_rel_err"]["worst"] < 1e-5  # fp32 vs fp32 on the CPU reference ops


def test_interrupt_writes_the_partial_report(tmp_path, monkeypatch, capsys):
    """B=1 finishes, then SIGINT (KeyboardInterrupt) arrives during B=2: the B=1 row was already on disk before the
    interrupt (written after its row), the final file holds it marked incomplete, and the exit status is 130."""
    import hyperstyle_trt.benchmarks.runtime as rb

    out = tmp_path / "hyperstyle_trt.runtime.json"
    orig, seen = rb._bench_batch, []

    def bench(fast, eager, ref, b, *a, **k):
        if b == 2:
            seen.append(json.loads(out.read_text()))  # what was on disk when B=2 started
            raise KeyboardInterrupt
        return orig(fast, eager, ref, b, *a, **k)

    monkeypatch.setattr(rb, "_bench_batch", bench)
    rc = main(["--cpu-dry-run", "--config", "tiny", "--batches", "1,2", "--iters", "1", "--reps", "1",
               "--warmup", "0", "--json", str(out)])
    assert rc == 130
    assert "interrupted" in capsys.readouterr().err
    (before,) = seen
    assert before["complete"] is False and "interrupted" not in before and [r["batch"] for r in before["rows"]] == [1]
    rep = json.loads(out.read_text())
    assert rep["complete"] is False and rep["interrupted"] is True and [r["batch"] for r in rep["rows"]] == [1]
    assert rep["rows"][0]["fast"]["ms_per_image"] > 0 and rep["inverter"]["max_batch"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["hyperstyle_trt.runtime.json"]  # atomic writes: no temp file left


def test_interrupt_before_any_row(tmp_path, monkeypatch):
    """An interrupt while the Inverters are built still leaves a (rowless, incomplete) report."""
    from hyperstyle_trt import runtime

    out = tmp_path / "hyperstyle_trt.runtime.json"

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(runtime.Inverter, "from_model", boom)
    assert main(["--cpu-dry-run", "--config", "tiny", "--batches", "1", "--json", str(out)]) == 130
    rep = json.loads(out.read_text())
    assert rep["complete"] is False and rep["interrupted"] is True and rep["rows"] == [] and rep["inverter"] is None
