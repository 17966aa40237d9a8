"""How much batch composition alone moves the uint8 inversions (the serving tests' IMG_TOL_COUNT comes from this).

The same 8 images (tiny config, torch executor, CPU fp32, 1 thread) inverted as one batch of 8 and split 1x8, 3+3+2
and 4+4, 6 seeds; prints the largest level difference and the largest per-image count of differing uint8 values.

    python benchmarks/scripts/batch_composition.py [T]      # T: iterations (default 3)
"""

import sys

import numpy as np
import torch

from hyperstyle_trt.runtime import Inverter

T = int(sys.argv[1]) if len(sys.argv) > 1 else 3
torch.set_num_threads(1)
inv = Inverter.from_checkpoint(None, config="tiny", executor="torch", device="cpu", precision="fp32", max_batch=8)
worst = []
for seed in range(6):
    x = np.random.default_rng(200 + seed).integers(0, 256, (8, 64, 64, 3), dtype=np.uint8)
    full = inv.invert(x, n_iters=T).to_uint8().copy()
    for split in ([1] * 8, [3, 3, 2], [4, 4]):
        starts = np.cumsum([0, *split[:-1]])
        parts = np.concatenate([inv.invert(x[i:i + n], n_iters=T).to_uint8().copy() for i, n in zip(starts, split)])
        d = np.abs(parts.astype(int) - full.astype(int))
        worst.append((int(d.max()), int((d > 0).reshape(8, -1).sum(1).max())))
print(f"T={T}: max levels {max(w[0] for w in worst)}, max differing values per image {max(w[1] for w in worst)}")
