"""GPU tests compare against fp32 references: TF32 off (cuDNN convs and matmuls default to TF32).

Session-scoped and autouse, so it is set up before every other fixture of the session, module- and session-scoped
ones included (e.g. an fp32 reference computed once per module); the previous flags are restored at the end.
"""

import pytest
import torch


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
