"""The NGC layout (runtime.serving.ngc): three tensorrt_plan sub-models + the BLS loop model.

No TensorRT engine can execute here (no TensorRT runtime for Triton, no GPU, no NGC container), so:
- the tensorrt_plan configs are written for fake engine files and checked against Triton's ModelConfig schema and
  the graph contract (names, dims, dtypes, fixed batch), never loaded;
- the BLS loop model itself (runtime/serving/bls_model.py) runs on the real tritonserver, with python stand-ins for
  the three engines (tests/unit/runtime/serving_graph_standin.py: the torch executor's graphs, same I/O), and is
  compared with Inverter.invert in this process: bitwise for a request that ran alone.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from hyperstyle_trt.core.config import get_config
from hyperstyle_trt.core.contract import GRAPHS, delta_modes, graph_io
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.core.source import ModelSource
from hyperstyle_trt.runtime.serving.pbtxt import read_parameters, validate_config
from hyperstyle_trt.runtime.serving.repository import RepoSpec, write_env_dir
from hyperstyle_trt.runtime.serving.server import PROJECT_ROOT, TritonServer, find_tritonserver
from tests.unit.runtime.test_serving import CODES_TOL, IMG_TOL_COUNT, IMG_TOL_LEVELS

tritonclient_http = pytest.importorskip("tritonclient.http", reason="tritonclient missing: pip install -e .[serve]")
from hyperstyle_trt.runtime.serving.ngc import SUBMODELS, write_graph_repository, write_ngc_repository  # noqa: E402
from hyperstyle_trt.runtime.executors.tensorrt_executor import engine_name  # noqa: E402

STANDIN = Path(__file__).with_name("serving_graph_standin.py")


def _fake_export(tmp_path: Path, variant: str, prec: str, max_batch: int = 8, plain_batch: int = 1) -> Path:
    d = tmp_path / f"export_{variant}_{prec}"
    d.mkdir()
    for g in GRAPHS:
        (d / engine_name(g, variant, prec)).write_bytes(b"not an engine")
    (d / "export_summary.json").write_text(json.dumps({"config": {"config": "tiny", "checkpoint": None,
                                                                  "max_batch": max_batch, "plain_batch": plain_batch}}))
    return d


def _pb2():
    from hyperstyle_trt.runtime.serving.pbtxt import _model_config_pb2

    return _model_config_pb2()


def _parsed(path: Path):
    cfg = validate_config(path.read_text(), str(path))
    if cfg is None:
        pytest.skip("tritonclient's model_config_pb2 / protobuf not importable")
    return cfg


@pytest.mark.parametrize("variant,prec", [("plugin", "fp16"), ("plain", "fp32")])
def test_ngc_configs_follow_the_contract(tmp_path, variant, prec):
    exp = _fake_export(tmp_path, variant, prec)
    dirs = write_ngc_repository(tmp_path / "ngc", exp, max_batch=4, iters=3, instances=2)
    assert [d.name for d in dirs] == [SUBMODELS[g] for g in GRAPHS] + ["hyperstyle"]
    cfg = get_config("tiny")
    ios = {g: graph_io(cfg, g, delta_modes(cfg, per_channel=variant == "plugin"), "B", variant == "plugin", prec)
           for g in GRAPHS}
    want_type = {"fp16": "TYPE_FP16", "fp32": "TYPE_FP32"}[prec]
    for g in GRAPHS:
        m = _parsed(tmp_path / "ngc" / SUBMODELS[g] / "config.pbtxt")
        assert m.platform == "tensorrt_plan" and m.name == SUBMODELS[g]
        fixed = variant == "plain" and g == "generator"
        assert m.max_batch_size == (0 if fixed else 4)
        got = {t.name: (list(t.dims), _pb2().DataType.Name(t.data_type)) for t in [*m.input, *m.output]}
        want = {t.name: (([1] if fixed else []) + [int(d) for d in t.shape[1:]], want_type)
                for t in [*ios[g].inputs, *ios[g].outputs]}
        assert got == want
        assert [(m.instance_group[0].KIND_GPU, 2)] == [(i.kind, i.count) for i in m.instance_group]
        plan = tmp_path / "ngc" / SUBMODELS[g] / "1" / "model.plan"
        assert plan.is_symlink() and plan.resolve() == (exp / engine_name(g, variant, prec)).resolve()
    bls = _parsed(tmp_path / "ngc" / "hyperstyle" / "config.pbtxt")
    assert bls.backend == "python" and bls.max_batch_size == 4 and list(bls.dynamic_batching.preferred_batch_size) \
        == [2, 4]
    assert bls.parameters["project_root"].string_value == str(PROJECT_ROOT)  # where the stub imports the package
    contract = json.loads(bls.parameters["contract"].string_value)
    assert contract["dtype"] == {"fp16": "float16", "fp32": "float32"}[prec]
    assert [d["input"] for d in contract["deltas"]] == [s.input_name for s in cfg.tuned]
    assert contract["graphs"]["generator"].get("fixed_batch") == (1 if variant == "plain" else None)


def test_ngc_layout_rejects_what_the_engines_cannot_serve(tmp_path):
    exp = _fake_export(tmp_path, "plugin", "fp16", max_batch=4)
    with pytest.raises(HsError, match="exceeds the engines' profile"):
        write_ngc_repository(tmp_path / "ngc", exp, max_batch=8)
    with pytest.raises(HsError, match="no complete TensorRT engine set"):
        write_ngc_repository(tmp_path / "ngc2", exp, precision="fp32")


@pytest.mark.parametrize("variant,prec", [("plugin", "fp16"), ("plain", "fp32")])
def test_ngc_sidecar_sizes_the_pools_from_the_contract(tmp_path, variant, prec):
    """The BLS model's sidecar records what crosses Triton's CUDA pool per inversion (runtime.serving.pools): the
    Δ / image terms from the contract, the fixed batch of the plain generator padded; `hs-serve start` reads it."""
    import math

    from hyperstyle_trt.runtime.serving.pools import HEADROOM, MIB, repository_pools

    exp = _fake_export(tmp_path, variant, prec, plain_batch=2)
    write_ngc_repository(tmp_path / "ngc", exp, max_batch=3, iters=2, instances=2)
    side = json.loads((tmp_path / "ngc" / "hyperstyle" / "hs_serving.json").read_text())
    assert (side["layout"], side["variant"], side["precision"]) == ("ngc", variant, prec)
    assert side["export_dir"] == str(exp.resolve())
    rec = side["pools"]
    assert (rec["kind"], rec["instances"], rec["max_batch"], rec["iters"]) == ("KIND_GPU", 2, 3, 2)
    cfg = get_config("tiny")
    ios = {g: graph_io(cfg, g, delta_modes(cfg, per_channel=variant == "plugin"), "B", variant == "plugin", prec)
           for g in GRAPHS}
    size = {"fp16": 2, "fp32": 4}[prec]

    def nbytes(ts):
        return size * sum(math.prod(int(d) for d in t.shape[1:]) for t in ts)

    gen_items = 4 if variant == "plain" else 3  # 3 images through a generator fixed at batch 2: two calls of 2
    gen_call = 2 if variant == "plain" else 3
    assert rec["device_terms"] == {
        "call_inputs": max(3 * nbytes(ios["w_encoder"].inputs), 3 * nbytes(ios["hypernet"].inputs),
                           gen_call * nbytes(ios["generator"].inputs)),
        "w_encoder_outputs": 3 * nbytes(ios["w_encoder"].outputs),
        "generator_outputs": 3 * gen_items * nbytes(ios["generator"].outputs),
        "hypernet_outputs": 2 * 3 * nbytes(ios["hypernet"].outputs)}
    assert rec["device_bytes"] == sum(rec["device_terms"].values())
    pools = repository_pools(tmp_path / "ngc", gpus=(0,))
    assert pools.cuda == ((0, max(64 * MIB, math.ceil(HEADROOM * 2 * rec["device_bytes"] / MIB) * MIB)),)
    assert pools.flags()[0].startswith("--cuda-memory-pool-byte-size=0:")


def _install():
    try:
        return find_tritonserver()
    except HsError:
        pass
    p = subprocess.run(["make", "-s", "triton"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"tritonserver not found and `make triton` failed (nvidia-pytriton wheel not fetched): {last}")
    return find_tritonserver()


def test_bls_loop_on_real_server_matches_inverter(tmp_path):
    from hyperstyle_trt.runtime import Inverter
    from hyperstyle_trt.runtime.executors.torch_executor import TorchExecutor
    from hyperstyle_trt.models.checkpoint import build_model

    install = _install()
    cfg = get_config("tiny")
    ex = TorchExecutor.from_model(build_model("tiny", quiet=True), "cpu", "fp32")
    ios = {g: ex.io(g) for g in GRAPHS}
    repo = tmp_path / "bls_repo"
    env = write_env_dir(tmp_path / "env_home", RepoSpec(ModelSource(config="tiny", device="cpu"), threads=1))
    # (the env folder outside the repository); the BLS config names project_root itself
    params = f'parameters: {{ key: "EXECUTION_ENV_PATH", value: {{ string_value: "{env}" }} }}\n'
    standin = (params + f'parameters: {{ key: "project_root", value: {{ string_value: "{PROJECT_ROOT}" }} }}\n'
               'parameters: { key: "config", value: { string_value: "tiny" } }\n')
    write_graph_repository(repo, cfg, ios, {}, max_batch=4, iters=3, device="cpu", backend="python",
                           submodel_py=STANDIN, submodel_extra=standin, bls_extra=params, queue_delay_us=100_000)
    inv = Inverter.from_checkpoint(None, config="tiny", executor="torch", device="cpu", max_batch=4)
    x = np.random.default_rng(7).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    s = TritonServer(repo, install=install, stub_env=False).start()
    try:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            r = inv.invert(x, n_iters=3)
            ref_img, ref_codes = r.to_uint8(), r.codes.float().numpy().copy()
        finally:
            torch.set_num_threads(threads)
        s.wait_ready(timeout=120)
        c = tritonclient_http.InferenceServerClient(s.http_url, network_timeout=60)
        inp = tritonclient_http.InferInput("image", list(x.shape), "UINT8")
        inp.set_data_from_numpy(x, binary_data=True)
        res = c.infer("hyperstyle", [inp])
        # the in-process loop's uint8 rounding may flip by 1 level (observed 1 value of 98,304; the gate is
        # test_serving's, from benchmarks/results/cpu_test_observations.json)
        d = np.abs(res.as_numpy("inversion").astype(np.int16) - ref_img.astype(np.int16))
        assert d.max() <= IMG_TOL_LEVELS and (d > 0).reshape(len(x), -1).sum(1).max() <= IMG_TOL_COUNT, d.max()
        np.testing.assert_allclose(res.as_numpy("codes"), ref_codes, rtol=0, atol=CODES_TOL)
        # 2T+2 sub-model calls for the one BLS execution: w_encoder once, hypernet T times, generator T+1 times
        counts = {m["name"]: int(m["execution_count"]) for m in c.get_inference_statistics()["model_stats"]}
        assert counts == {"hyperstyle": 1, "hs_w_encoder": 1, "hs_hypernet": 3, "hs_generator": 4}, counts
        assert read_parameters(c.get_model_config("hyperstyle"))["iters"] == "3"
        c.close()
        from hyperstyle_trt.runtime.serving.pools import repository_pools

        assert repository_pools(repo, gpus=(0,)).flags() == []  # KIND_CPU: Triton's default pools
    finally:
        rc = s.stop()
    assert rc == 0, s.log_tail()


def test_cli_ngc_layout(tmp_path, capsys):
    from hyperstyle_trt.cli.serve import main

    exp = _fake_export(tmp_path, "plugin", "fp16")
    assert main(["repo", str(tmp_path / "ngc"), "--export-dir", str(exp), "--device", "cuda", "--layout", "ngc",
                 "--max-batch", "8"]) == 0
    assert (tmp_path / "ngc" / "hs_generator" / "1" / "model.plan").is_symlink()
    capsys.readouterr()
    assert main(["repo", str(tmp_path / "x"), "--config", "tiny", "--layout", "ngc"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --layout ngc") and len(err.strip().splitlines()) == 1
