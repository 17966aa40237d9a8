"""The `tensorrt` executor on a GPU: a fresh `hs-export --fp16` of the tiny config, Inverter.from_export(...,
executor="tensorrt") against the torch executor (fp16), CUDA-graph replay against eager, and batch changes (one
execution context per engine and batch size, all of an engine's contexts on one shared device-memory block).

NEVER RUN: no TensorRT engine has executed anywhere in this project yet (the only GPU lent so far is an H200, where
TensorRT-RTX refuses SM 9.0 and full TensorRT was not installable). The gates below are set from the exporter's fp16
per-graph tolerance (export.verify.TOLERANCES["fp16"] = 3e-2 relative to max(1, |ref|max)) and fp16 rounding, not
from an observed figure; each test prints its errors and records them (tests/gpu/conftest.py's `gate`, collected
into gpu_summary.json by make gpu-check) so the first run can tighten the gates.
"""

import json

import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.trt]

FP16_REL = 3e-2  # = export.verify.TOLERANCES["fp16"]; applied to the whole T=5 loop, not one graph: never observed
REPLAY_ABS = 2e-3  # graph replay vs eager on the same engines: 2 fp16 ulps at 1.0 (split-K order may differ)
B, T, MAX_B = 3, 5, 4


def _rel(a, b) -> float:
    a, b = a.float(), b.float()
    return float((a - b).abs().max()) / max(1.0, float(b.abs().max()))


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    """`hs-export --config tiny --fp16 --max-batch 4 --out <tmp>`; skipped with the reason when this GPU cannot
    run the importable flavor's engines."""
    from hyperstyle_trt.core.flavor import get_flavor

    fl = get_flavor()
    major, minor = torch.cuda.get_device_capability()
    if fl.is_rtx and not hasattr(fl.module.ComputeCapability, f"SM{major}{minor}"):
        pytest.skip(f"TensorRT-RTX {fl.version} does not run engines on sm_{major}{minor} "
                    f"({torch.cuda.get_device_name()}); needs full TensorRT")
    from hyperstyle_trt.cli.export import main

    d = tmp_path_factory.mktemp("hs_export_tiny")
    rc = main(["--config", "tiny", "--fp16", "--max-batch", str(MAX_B), "--out", str(d)])
    summary = json.loads((d / "export_summary.json").read_text())
    engines = {a["path"].rsplit("/", 1)[-1]: a["status"] for a in summary["artifacts"] if a["kind"] == "engine"}
    assert rc == 0 and engines, f"hs-export failed (rc {rc}): {engines or summary.get('engines_skipped')}"
    return d


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    from hyperstyle_trt.core.config import get_config

    s = get_config("tiny").hypernet.input_size
    return (torch.rand(B, 3, s, s, generator=g) * 2 - 1).cuda()


def test_tensorrt_equals_torch_executor(export_dir, images, gate):
    from hyperstyle_trt.runtime import Inverter

    trt_inv = Inverter.from_export(export_dir, executor="tensorrt", max_batch=MAX_B)
    assert trt_inv.executor.variant == "plugin" and trt_inv.precision == "fp16"
    ref_inv = Inverter.from_checkpoint(None, config="tiny", executor="torch", device="cuda", precision="fp16",
                                       max_batch=MAX_B)
    got, ref = trt_inv.invert(images, n_iters=T, copy=True), ref_inv.invert(images, n_iters=T, copy=True)
    errs = {"codes": _rel(got.codes, ref.codes), "images": _rel(got.images, ref.images),
            "images_pooled": _rel(got.images_pooled, ref.images_pooled)}
    errs |= {f"delta {k}": _rel(got.deltas[k], ref.deltas[k]) for k in ref.deltas}
    print("tensorrt vs torch executor (fp16, B=3, T=5), max rel error:", json.dumps(errs))
    worst = max(errs, key=errs.get)
    gate(f"worst_rel_err ({worst})", errs[worst], "<=", FP16_REL)
    gate("image0_vs_image1_rel", _rel(got.images[0], got.images[1]), ">", 1e-3)
    assert errs[worst] <= FP16_REL, f"{worst}: {errs[worst]:.3e} > {FP16_REL}"
    assert _rel(got.images[0], got.images[1]) > 1e-3  # distinct images stay distinct (rows not mixed up)


def test_graph_replay_equals_eager(export_dir, images, gate):
    from hyperstyle_trt.runtime import Inverter

    eager = Inverter.from_export(export_dir, executor="tensorrt", max_batch=MAX_B, cuda_graphs=False)
    graphs = Inverter.from_export(export_dir, executor="tensorrt", max_batch=MAX_B)
    assert graphs.use_graphs and not eager.use_graphs
    a, b = eager.invert(images, n_iters=T, copy=True), graphs.invert(images, n_iters=T, copy=True)
    err = float((a.images.float() - b.images.float()).abs().max())
    print(f"tensorrt graph replay vs eager: max abs image difference {err:.3e}")
    gate("images_max_abs", err, "<=", REPLAY_ABS)
    assert err <= REPLAY_ABS
    c = graphs.invert(images, n_iters=T, copy=True)  # a second replay of the same graph
    assert float((c.images.float() - b.images.float()).abs().max()) <= REPLAY_ABS


def test_batch_changes(export_dir, images, gate):
    """B=3, then B=1, then B=3 again through one Inverter: B=3's graph is replayed after B=1's was captured. Each
    batch has its own execution contexts (made at warm-up, shapes set once), so the replay must reproduce the first
    B=3 result. All contexts of an engine share one device-memory block, so this also checks that the graphs'
    sharing it is harmless."""
    from hyperstyle_trt.runtime import Inverter

    inv = Inverter.from_export(export_dir, executor="tensorrt", max_batch=MAX_B)
    ex = inv.executor
    assert ex.describe()["contexts"] == {g: list(range(1, MAX_B + 1)) for g in ("w_encoder", "hypernet", "generator")}
    r3 = inv.invert(images, n_iters=T, copy=True)
    r1 = inv.invert(images[:1], n_iters=T, copy=True)
    r3b = inv.invert(images, n_iters=T, copy=True)
    assert sorted(inv._graphs) == [(1, T), (3, T)]
    e1, e3 = _rel(r1.images[0], r3.images[0]), float((r3b.images.float() - r3.images.float()).abs().max())
    print(f"tensorrt batch 1 vs row 0 of batch 3: {e1:.3e} rel; batch 3 twice: {e3:.3e} abs; context memory "
          f"{ex.describe()['context_memory_bytes']} bytes per engine")
    gate("b1_vs_b3_row0_rel", e1, "<=", FP16_REL)
    gate("b3_twice_max_abs", e3, "<=", REPLAY_ABS)
    assert e1 <= FP16_REL and e3 <= REPLAY_ABS
