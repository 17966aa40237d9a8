"""runtime.Inverter.from_export(..., executor="onnxruntime") on a tiny hs-export directory (plain fp32 graphs, CPU).

The plain generator is exported with plain_batch=2, so every batch runs it on padded 2-row chunks (B=3 -> rows
0-1, 2-3 with row 3 a pad row). Tolerances vs HyperStyle.invert (fp32 max abs, the conftest images, T=2): images /
pooled (ORT's grouped conv vs torch's conv), Δ (the plain layout is the official OIHW), codes, and the fine-tuned
weights in the plain Generator vs the ORT images; each at least 2x what was observed
(benchmarks/results/cpu_verify_errors.json, "onnxruntime_executor_tiny"; test_tolerances_are_the_recorded_gates).
(hs-export's own per-graph gates: export.verify.GATES.)
"""

import json
import shutil
from pathlib import Path

import pytest
import torch

from hyperstyle_trt.core.errors import HsError

IMG_TOL, DELTA_TOL, CODES_TOL = 3e-6, 2e-7, 1e-6
RESULTS = Path(__file__).resolve().parents[3] / "benchmarks" / "results" / "cpu_verify_errors.json"


def _err(a, b) -> float:
    return float((a.float() - b.float()).abs().max())


@pytest.fixture(scope="session")
def ort_export_dir(tmp_path_factory, tiny_model):
    """hs-export --config tiny --plain --fp32 --no-engines --no-verify --plain-batch 2 --max-batch 4. Not the
    session's tiny_export (tests/conftest.py): that one's plain generator has batch 1 (the fp16 mutation test needs
    it), and plain_batch=2 is what this module tests."""
    from hyperstyle_trt.export.config import ExportConfig
    from hyperstyle_trt.export.pipeline import run_onnx_export

    out = tmp_path_factory.mktemp("hs_export_tiny_plain_b2")
    cfg = ExportConfig(config="tiny", variants=("plain",), precisions=("fp32",), build_engines=False, verify=False,
                       plain_batch=2, max_batch=4, out=out)
    rep = run_onnx_export(cfg, model=tiny_model)
    assert not rep.failed, [a.status for a in rep.failed]
    return out


@pytest.fixture(scope="module")
def ort_inv(ort_export_dir):
    from hyperstyle_trt.runtime import Inverter

    return Inverter.from_export(ort_export_dir, executor="onnxruntime", max_batch=4)


@pytest.fixture(scope="module")
def ort_res(ort_inv, images_f):
    return ort_inv.invert(images_f, n_iters=2, copy=True)


def test_tolerances_are_the_recorded_gates():
    rec = json.loads(RESULTS.read_text())["onnxruntime_executor_tiny"]
    assert rec["gates"] == {"images": IMG_TOL, "deltas": DELTA_TOL, "codes": CODES_TOL,
                            "fine_tuned_generator_images": IMG_TOL}
    for k, observed in rec["observed"].items():
        assert rec["gates"][k] >= 2 * observed, k


def test_executor_facts(ort_inv):
    d = ort_inv.describe()
    assert d["executor"] == "onnxruntime" and d["delta_layout"] == "OIHW" and d["per_channel_layers"] == []
    assert d["fixed_batch"] == {"generator": 2} and ort_inv.rows == 4 and not ort_inv.use_graphs


def test_matches_reference(ort_res, ref5):
    assert _err(ort_res.codes, ref5.codes) <= CODES_TOL
    assert _err(ort_res.images, ref5.iterations[2]) <= IMG_TOL
    assert _err(ort_res.images_pooled, torch.nn.functional.adaptive_avg_pool2d(ref5.iterations[2], 64)) <= IMG_TOL
    for k, d in ref5.iteration_deltas[1].items():
        assert ort_res.deltas[k].shape == d.shape and _err(ort_res.deltas[k], d) <= DELTA_TOL, k
    assert _err(ort_res.images[0], ort_res.images[2]) > 0.05  # distinct rows stay distinct through the padding


def test_binds_the_inverters_buffers(ort_inv, images_f):
    """I/O binding writes straight into the Inverter's buffers (no copies out): a B=1 result is a view of them."""
    r = ort_inv.invert(images_f[:1], n_iters=1)
    assert r.images.data_ptr() == ort_inv.y.data_ptr() and r.raw_deltas["conv1"].data_ptr() == \
        ort_inv.sets[1]["conv1"].data_ptr()


def test_edit_and_fine_tuned_weights(ort_inv, ort_res, tiny_model):
    from hyperstyle_trt.models.stylegan2 import Generator

    zero = ort_inv.edit(ort_res, torch.ones(32), 0)  # B=3 on the 2-row generator: padded chunks
    assert _err(zero, ort_res.images) <= 1e-6
    g = Generator(tiny_model.cfg.generator).eval()
    g.load_state_dict(ort_inv.fine_tuned_weights(ort_res, 2))  # weights from export_summary.json's config
    with torch.no_grad():
        assert _err(g(ort_res.codes[2:]), ort_res.images[2:]) <= IMG_TOL


def test_missing_graph(ort_export_dir, tmp_path):
    from hyperstyle_trt.runtime import Inverter

    part = tmp_path / "partial"
    shutil.copytree(ort_export_dir, part)
    (part / "hypernet_plain_fp32.onnx").unlink()
    with pytest.raises(HsError, match=r"lacks hypernet_plain_fp32.onnx; create it with hs-export --out .* --plain "
                                      r"--fp32 --no-engines") as e:
        Inverter.from_export(part, executor="onnxruntime")
    assert "\n" not in str(e.value)


def test_foreign_graph_refused(ort_export_dir, tmp_path):
    """A file whose I/O is not the contract's (here: the W encoder in the generator's place) is refused by name."""
    from hyperstyle_trt.runtime import Inverter

    part = tmp_path / "swapped"
    shutil.copytree(ort_export_dir, part)
    shutil.copy(part / "w_encoder_fp32.onnx", part / "generator_plain_fp32.onnx")
    with pytest.raises(HsError, match="generator_plain_fp32.onnx: inputs .* are not the contract's"):
        Inverter.from_export(part, executor="onnxruntime")


def test_cpu_refuses_cuda_and_stream(ort_export_dir):
    from hyperstyle_trt.runtime import Inverter

    if not torch.cuda.is_available():
        with pytest.raises(HsError, match="CUDAExecutionProvider|is_available"):
            Inverter.from_export(ort_export_dir, executor="onnxruntime", device="cuda")
    with pytest.raises(HsError, match="stream= applies to CUDA"):
        Inverter.from_export(ort_export_dir, executor="onnxruntime", stream=object())
