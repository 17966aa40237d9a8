"""export.verify.GATES against the measured errors they were set from (benchmarks/results/cpu_verify_errors.json):
every gate has a measured worst, is at least that worst times the recorded minimum factor and at most the maximum
factor (2-4x, docs/verification.md), and still covers the other figures recorded for the tiny config."""

import json
from pathlib import Path

import pytest

from hyperstyle_trt.export.verify import GATES

RESULTS = json.loads((Path(__file__).resolve().parents[3] / "benchmarks" / "results" / "cpu_verify_errors.json")
                     .read_text())


@pytest.mark.parametrize("family", ["tiny", "ffhq"])
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_gate_is_within_the_documented_factor_of_the_worst(family, precision):
    lo, hi = RESULTS["gate_factor"]["min"], RESULTS["gate_factor"]["max"]
    worst = RESULTS[family]["worst"][precision]
    gates = GATES[family][precision]
    assert {f"{g}/{o}" for g, o in gates} == set(worst)  # one measured figure per gate, no more
    for (graph, output), tol in gates.items():
        w = worst[f"{graph}/{output}"]
        assert lo * w <= tol <= hi * w, (family, precision, graph, output, tol, w)


def test_tiny_gates_cover_the_other_recorded_figures():
    also = RESULTS["tiny"]["also"]
    assert GATES["tiny"]["fp16"][("hypernet", "acc")] >= also["fp16 hypernet/acc, plugin variant alone"]
    onnx_ref = next(v for k, v in also.items() if k.startswith("fp16 generator_plain/image in onnx.reference"))
    assert GATES["tiny"]["fp16"][("generator_plain", "image")] >= max(onnx_ref)

