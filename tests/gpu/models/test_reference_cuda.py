"""The fp32 reference on CUDA (TF32 off) reproduces the golden generator and inversion within the README tolerances."""

import json

import numpy as np
import pytest
import torch

from hyperstyle_trt.models.checkpoint import build_model

pytestmark = pytest.mark.gpu


@torch.no_grad()
def test_golden_inversion_on_cuda(golden_dir):
    z = np.load(golden_dir / "inversion.npz")
    meta = json.loads(str(z["meta"]))
    m = build_model("ffhq1024", device="cuda", quiet=True)
    x = (torch.rand((2, 3, 256, 256), generator=torch.Generator().manual_seed(meta["seeds"]["inv_in"])) * 2 - 1).cuda()
    out = m.invert(x, n_iters=2, return_iterations=True)
    assert (out.codes.cpu() - torch.from_numpy(z["codes"])).abs().max() < 1e-5
    for t, y in enumerate(out.iterations):
        assert (m.pool(y).cpu() - torch.from_numpy(z[f"y{t}_pool256"])).abs().max() < 1e-4
    assert (out.deltas["convs.15"].cpu() - torch.from_numpy(z["acc2_L24_full"])).abs().max() < 1e-5
