"""GPU tests compare against fp32 references: TF32 off (cuDNN convs and matmuls default to TF32). The `gate`
fixture records a test's observed value of a gate (make gpu-check collects them into gpu_summary.json).

Session-scoped and autouse, so it is set up before every other fixture of the session, module- and session-scoped
ones included (e.g. an fp32 reference computed once per module); the previous flags are restored at the end.
"""

import json
import math
import operator
import os

import pytest
import torch

from hyperstyle_trt.benchmarks.gpu_check import GATES_ENV


def _tf32_flags() -> tuple[bool, bool]:
    return torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32


def _set_tf32(cudnn: bool, matmul: bool) -> None:
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = cudnn, matmul


@pytest.fixture(scope="session", autouse=True)
def no_tf32_session():
    prev = _tf32_flags()
    _set_tf32(False, False)
    yield
    _set_tf32(*prev)


@pytest.fixture(autouse=True)
def no_tf32(no_tf32_session):
    """Per test: TF32 off again even if an earlier test switched it on (restored after the test)."""
    prev = _tf32_flags()
    _set_tf32(False, False)
    yield
    _set_tf32(*prev)


_OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt, "==": operator.eq}


def _jsonable(v):
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # inf / nan: strict JSON has no spelling for them
    return v


@pytest.fixture
def gate(request):
    """gate(name, observed, op, bound) -> bool: whether `observed op bound` holds (op one of <=, <, >=, >, ==; None:
    recorded only), after appending {test, gate, observed, op, bound, ok} as one JSON line to the file named by
    $HS_GPU_GATES (benchmarks.gpu_check sets it and copies the lines into gpu_summary.json's `gates`; unset: not
    recorded). The test still asserts the bound itself, after recording, so a failing gate's value is kept too."""
    path = os.environ.get(GATES_ENV)

    def record(name: str, observed, op: str | None = None, bound=None) -> bool:
        observed = float(observed) if hasattr(observed, "item") else observed
        ok = None if op is None else bool(_OPS[op](observed, bound))
        if path:
            line = json.dumps({"test": request.node.nodeid, "gate": name, "observed": _jsonable(observed), "op": op,
                               "bound": _jsonable(bound), "ok": ok})
            with open(path, "a") as f:  # one short write per line: xdist workers' lines do not interleave
                f.write(line + "\n")
        return ok is not False

    return record
