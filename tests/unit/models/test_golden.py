"""The golden verification (official implementation outputs) and the verifier's own behaviour."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from hyperstyle_trt.models.golden import main, verify_dir


@pytest.mark.slow
def test_golden_reference_all_cases_pass(golden_dir):
    """The proof the reference is right: python -m models.golden verify tests/data/golden."""
    r = subprocess.run([sys.executable, "-m", "hyperstyle_trt.models.golden", "verify", str(golden_dir)],
                       capture_output=True,
                       text=True, timeout=1800)
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
    for case in ("generator", "hypernet", "w_encoder", "inversion"):
        assert f"{case}: PASS" in r.stdout
    assert "4/4 cases PASS" in r.stdout


def _rewrite(src, dst, fn):
    z = np.load(src)
    arrays = {k: z[k] for k in z.files}
    fn(arrays)
    np.savez_compressed(dst, **arrays)


@pytest.mark.slow  # the full-size (FFHQ) W encoder is rebuilt and run
def test_w_encoder_case_passes_and_perturbation_fails(golden_dir, tmp_path, capsys):
    shutil.copy(golden_dir / "w_encoder.npz", tmp_path / "w_encoder.npz")
    assert main(["verify", str(tmp_path)]) == 0
    assert "w_encoder: PASS" in capsys.readouterr().out

    def perturb(a):
        a["codes"] = a["codes"].copy()
        a["codes"][1, 5, 7] += 1e-4  # ten times the code tolerance, one element, second sample

    _rewrite(golden_dir / "w_encoder.npz", tmp_path / "w_encoder.npz", perturb)
    assert main(["verify", str(tmp_path)]) == 1
    assert "FAIL codes" in capsys.readouterr().out


@pytest.mark.slow  # the full-size (FFHQ) W encoder is rebuilt and run
def test_seeds_come_from_meta(golden_dir, tmp_path):
    def reseed(a):
        meta = json.loads(str(a["meta"]))
        meta["seeds"]["enc_in"] += 1
        a["meta"] = np.array(json.dumps(meta))

    _rewrite(golden_dir / "w_encoder.npz", tmp_path / "w_encoder.npz", reseed)
    (res,) = verify_dir(tmp_path, log=lambda s: None)
    failed = {c.name for c in res.checks if not c.ok}
    assert "x (regenerated)" in failed and "codes" in failed


def test_empty_or_missing_dir_is_an_error(tmp_path, capsys):
    assert main(["verify", str(tmp_path)]) == 2
    assert "no golden files" in capsys.readouterr().err
    assert main(["verify", str(tmp_path / "nope")]) == 2
