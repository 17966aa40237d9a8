"""Serving on a GPU: the wheel's tritonserver 2.51.0 with the `hyperstyle` model on KIND_GPU (torch executor on
cuda:0, CUDA tensors handed to Triton through DLPack), compared with Inverter.invert on the same GPU.
Needs a CUDA GPU and the `make triton` folder (or $TRITONSERVER); skipped with the reason otherwise. Never run yet
(no GPU was lent when it was written): the gate is the CPU test's (<= 1 level on <= 3 uint8 values per image,
codes <= 1e-6) for one request that runs alone, same batch and kernels as the reference; the observed values are
recorded (tests/gpu/conftest.py's `gate`, collected into gpu_summary.json by make gpu-check)."""

from __future__ import annotations

import numpy as np
import pytest

from hyperstyle_trt.core.errors import HsError

pytestmark = pytest.mark.gpu


def test_kind_gpu_instance_matches_inverter(tmp_path, gate):
    tritonclient_http = pytest.importorskip("tritonclient.http", reason="tritonclient missing: pip install -e .[serve]")
    from hyperstyle_trt.core.source import ModelSource
    from hyperstyle_trt.runtime import Inverter
    from hyperstyle_trt.runtime.serving.pools import repository_pools
    from hyperstyle_trt.runtime.serving.repository import RepoSpec, write_repository
    from hyperstyle_trt.runtime.serving.server import TritonServer, find_tritonserver

    try:
        install = find_tritonserver()
    except HsError as e:
        pytest.skip(f"no tritonserver on this machine ({e})")
    write_repository(tmp_path / "repo", RepoSpec(ModelSource(config="tiny", device="cuda"), instances=1,
                                                          max_batch=4, iters=3))
    x = np.random.default_rng(3).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    inv = Inverter.from_checkpoint(None, config="tiny", executor="torch", device="cuda", max_batch=4)
    r = inv.invert(x, n_iters=3)
    ref_img, ref_codes = r.to_uint8(), r.codes.float().cpu().numpy()
    pools = repository_pools(tmp_path / "repo")  # the sized CUDA / pinned pools, as hs-serve start passes them
    with TritonServer(tmp_path / "repo", install=install, stub_env=False, extra_args=tuple(pools.flags())) as s:
        c = tritonclient_http.InferenceServerClient(s.http_url, network_timeout=120)
        cfg = c.get_model_config("hyperstyle")
        assert [g["kind"] for g in cfg["instance_group"]] == ["KIND_GPU"]
        inp = tritonclient_http.InferInput("image", list(x.shape), "UINT8")
        inp.set_data_from_numpy(x, binary_data=True)
        res = c.infer("hyperstyle", [inp])
        c.close()
    d = np.abs(res.as_numpy("inversion").astype(np.int16) - ref_img.astype(np.int16))
    err = float(np.abs(res.as_numpy("codes") - ref_codes).max())
    gate("max_levels", int(d.max()), "<=", 1)
    gate("changed_values_per_image", int((d > 0).reshape(len(d), -1).sum(1).max()), "<=", 3)
    gate("codes_max_abs", err, "<=", 1e-6)
    assert d.max() <= 1 and (d > 0).reshape(len(d), -1).sum(1).max() <= 3, (d.max(), (d > 0).sum())
    assert err <= 1e-6, err
