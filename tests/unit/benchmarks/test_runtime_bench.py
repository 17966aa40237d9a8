"""benchmarks.runtime: the one-line refusal without a GPU and a CPU dry run of the harness (tiny config)."""

import json

import pytest
import torch

from benchmarks.runtime import main


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_refuses_without_gpu(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: benchmarks.runtime needs a CUDA GPU") and err.count("\n") == 1


def test_bad_batches(capsys):
    assert main(["--batches", "0,x"]) == 2
    assert capsys.readouterr().err.startswith("error: --batches must be positive integers")


def test_cpu_dry_run_writes_the_report(tmp_path):
    out = tmp_path / "runtime.json"
    assert main(["--cpu-dry-run", "--config", "tiny", "--batches", "1", "--iters", "1", "--reps", "1",
                 "--warmup", "0", "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["cpu_dry_run"] and rep["precision"] == "fp32" and rep["note"].startswith("CPU dry run")
    (row,) = rep["rows"]
    assert row["batch"] == 1 and row["goal_met"] is None
    assert row["fast"]["ms_per_image"] > 0 and row["reference"]["ms_per_image"] > 0
    assert set(row["fast"]["stages"]["per_inversion_ms"]) == {"w_encoder", "hypernet", "generator"}
    assert row["psnr_db"] > 100 and row["delta_rel_err"]["worst"] < 1e-5  # fp32 vs fp32 on the CPU reference ops
