"""GPU tests compare against fp32 references: TF32 off (cuDNN convs and matmuls default to TF32)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def no_tf32():
    prev = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = prev
