"""runtime.Inverter (torch executor, tiny config, CPU fp32, reference ops) against HyperStyle.invert.

Tolerances (fp32, max abs error; observed on this machine's CPU with the tiny default weights and the conftest
images, gate ~2-3x the worst observed):
    codes: bitwise equal at the same batch composition (same modules, same ops); across batch compositions (B=1 vs
        the B=3 reference row, chunks of 2+1) observed 2.7e-7                 -> gate CODES_TOL = 1e-6
    images / images_pooled: observed 1.0e-6 (B=3 T=5), 6.7e-7 (B=1 T=1), 1.3e-6 (B=1 T=5 vs the B=3 row),
        1.0e-6 (chunks, T=1)                                                     -> gate IMG_TOL = 3e-6
    Δ (official layout): observed 6.0e-8 (T=5), 3.4e-8 (T=1)                     -> gate DELTA_TOL = 2e-7
"""

import threading

import numpy as np
import pytest
import torch

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.models.images import to_uint8

IMG_TOL = 3e-6
DELTA_TOL = 2e-7
CODES_TOL = 1e-6


def _err(a, b) -> float:
    return float((a.float() - b.float()).abs().max())


def _check_against(res, ref_img, ref_codes, ref_deltas, rows=slice(None), exact_codes=True):
    if exact_codes:
        assert torch.equal(res.codes, ref_codes[rows])
    else:
        assert _err(res.codes, ref_codes[rows]) <= CODES_TOL
    assert _err(res.images, ref_img[rows]) <= IMG_TOL
    assert _err(res.images_pooled, torch.nn.functional.adaptive_avg_pool2d(ref_img[rows], 64)) <= IMG_TOL
    assert set(res.deltas) == set(ref_deltas)
    for k, d in ref_deltas.items():
        assert res.deltas[k].shape == d[rows].shape, k
        assert _err(res.deltas[k], d[rows]) <= DELTA_TOL, k


@pytest.fixture(scope="module")
def res5(inv, images_u8):
    """B=3, T=5 from a uint8 HWC batch."""
    return inv.invert(images_u8, n_iters=5, copy=True)


def test_b3_t5_matches_reference(res5, ref5):
    assert len(res5) == 3 and res5.n_iters == 5 and res5.owned
    _check_against(res5, ref5.image, ref5.codes, ref5.deltas)
    # three distinct images in, three distinct inversions out (a broadcast/row bug would fail here)
    assert _err(res5.images[0], res5.images[1]) > 0.05 and _err(res5.images[1], res5.images[2]) > 0.05
    assert all(_err(res5.deltas["conv1"][i], res5.deltas["conv1"][j]) > 1e-3 for i, j in ((0, 1), (1, 2)))


def test_to_uint8_is_official_tensor2im(res5, ref5):
    u8 = res5.to_uint8()
    assert u8.dtype == np.uint8 and u8.shape == (3, 128, 128, 3)
    ref = np.stack([to_uint8(im) for im in ref5.image])
    assert np.abs(u8.astype(int) - ref.astype(int)).max() <= 1  # rounding boundaries only
    assert (u8 == ref).mean() > 0.999


@pytest.fixture(scope="module")
def r01(inv, images_u8):
    """Owned B=1, T=1 results of images 0 and 1 (each a single [H,W,3] uint8 image)."""
    return [inv.invert(images_u8[i], n_iters=1, copy=True) for i in (0, 1)]


def test_b1_t1_single_hwc_image(r01, tiny_model, images_f):
    ref = tiny_model.invert(images_f[1:2], n_iters=1)
    assert len(r01[1]) == 1 and r01[1].n_iters == 1
    _check_against(r01[1], ref.image, ref.codes, ref.deltas)


def test_b1_t5_against_b3_reference_row(inv, images_f, ref5):
    res = inv.invert(images_f[2:3], n_iters=5)
    _check_against(res, ref5.image, ref5.codes, ref5.deltas, rows=slice(2, 3), exact_codes=False)


def test_chunking_and_smaller_batches(images_f, ref5):
    """max_batch=2: B=3 runs as chunks of 2 and 1 (the 1 on its own plan), T=1 against the reference's iteration 1."""
    from hyperstyle_trt.runtime import Inverter

    inv2 = Inverter.from_checkpoint(None, config="tiny", executor="torch", device="cpu", max_batch=2)
    res = inv2.invert(images_f, n_iters=1)
    assert res.owned and len(res) == 3 and sorted(inv2._plans) == [1, 2]
    _check_against(res, ref5.iterations[1], ref5.codes, ref5.iteration_deltas[0], exact_codes=False)


def test_views_until_next_call_and_copy(inv, images_u8, r01):
    a = inv.invert(images_u8[:1], n_iters=1)
    assert not a.owned and a.images.data_ptr() == inv.y.data_ptr() and a.codes.data_ptr() == inv.codes.data_ptr()
    assert torch.equal(a.images, r01[0].images)  # same input, same plan: bitwise reproducible
    kept = a.copy()
    assert kept.owned and kept.images.data_ptr() != inv.y.data_ptr()
    inv.invert(images_u8[1:2], n_iters=1)  # overwrites the buffers `a` views
    assert torch.equal(a.images, r01[1].images) and torch.equal(kept.images, r01[0].images)
    assert all(torch.equal(kept.deltas[k], r01[0].deltas[k]) for k in kept.deltas)


def test_two_threads_are_serialized(inv, images_u8, r01):
    active, worst, orig = [0], [0], inv.executor.run
    guard = threading.Lock()

    def spy(*a, **k):
        with guard:
            active[0] += 1
            worst[0] = max(worst[0], active[0])
        try:
            return orig(*a, **k)
        finally:
            with guard:
                active[0] -= 1

    got, errors = {}, []

    def work(i):
        try:
            got[i] = inv.invert(images_u8[i:i + 1], n_iters=1, copy=True).images
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    inv.executor.run = spy
    try:
        ts = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(300)
    finally:
        del inv.executor.run
    assert not errors and worst[0] == 1  # never two executor calls at once
    assert all(torch.equal(got[i], r01[i].images) for i in (0, 1))  # no cross-talk between the callers


# ---- bad input: one-line HsError before any work -------------------------------------------------------------------

BAD = {
    "float wrong size": (lambda: torch.zeros(1, 3, 32, 32), r"\[B,3,64,64\].*\(1, 3, 32, 32\)"),
    "float wrong channels": (lambda: torch.zeros(1, 4, 64, 64), r"\[B,3,64,64\]"),
    "float HWC": (lambda: torch.zeros(1, 64, 64, 3), "looks like HWC"),
    "float 3-D": (lambda: torch.zeros(3, 64, 64), r"\[B,3,64,64\]"),
    "uint8 4 channels": (lambda: np.zeros((64, 64, 4), np.uint8), "3 channels"),
    "uint8 CHW": (lambda: np.zeros((1, 3, 64, 64), np.uint8), "looks like CHW"),
    "uint8 2-D": (lambda: np.zeros((64, 64), np.uint8), r"HWC \[H,W,3\]"),
    "int dtype": (lambda: np.zeros((1, 3, 64, 64), np.int32), "int32"),
    "bool tensor": (lambda: torch.zeros(1, 3, 64, 64, dtype=torch.bool), "torch.bool"),
    "range": (lambda: torch.full((1, 3, 64, 64), 2.0), r"span \[2, 2\]"),
    "0..255 floats": (lambda: torch.full((1, 3, 64, 64), 200.0), "uint8 HWC"),
    "nan": (lambda: torch.zeros(1, 3, 64, 64).index_fill_(0, torch.tensor([0]), float("nan")), "NaN or Inf"),
    "inf": (lambda: torch.zeros(2, 3, 64, 64).index_fill_(0, torch.tensor([1]), float("inf")), "NaN or Inf"),
    "nan numpy": (lambda: np.full((1, 3, 64, 64), np.nan, np.float32), "NaN or Inf"),
    "batch 0 uint8": (lambda: np.zeros((0, 64, 64, 3), np.uint8), "empty batch"),
    "batch 0 float": (lambda: torch.zeros(0, 3, 64, 64), "empty batch"),
    "other device": (lambda: torch.zeros(1, 3, 64, 64, device="meta"), "device meta.*runs on cpu"),
    "not an array": (lambda: "face.png", "numpy array, a torch tensor"),
    "ragged list": (lambda: [np.zeros((64, 64, 3), np.uint8), np.zeros((32, 32, 3), np.uint8)], "share one shape"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_one_line_before_work(inv, case):
    make, pattern = BAD[case]
    before = inv.y.clone(), inv.x.clone()
    calls, orig = [], inv.executor.run
    inv.executor.run = lambda *a, **k: calls.append(a) or orig(*a, **k)
    try:
        with pytest.raises(HsError, match=pattern) as e:
            inv.invert(make(), n_iters=1)
    finally:
        del inv.executor.run
    assert "\n" not in str(e.value) and not calls
    assert torch.equal(inv.y, before[0]) and torch.equal(inv.x, before[1])


@pytest.mark.parametrize("n", [0, -1, 1.5, True])
def test_bad_n_iters(inv, images_u8, n):
    with pytest.raises(HsError, match="n_iters must be an integer >= 1"):
        inv.invert(images_u8[:1], n_iters=n)


def test_stream_on_cpu_refused(inv, images_u8):
    with pytest.raises(HsError, match="stream= applies to CUDA Inverters"):
        inv.invert(images_u8[:1], n_iters=1, stream=object())


def test_resize_to_input_size(images_u8):
    """A non-64x64 uint8 image is resized with PIL bilinear (as models.images.read_image), then v/127.5 - 1."""
    from PIL import Image

    from hyperstyle_trt.runtime.inputs import prepare

    big = np.repeat(np.repeat(images_u8[0], 2, 0), 3, 1)  # [128,192,3]
    p = prepare(big, 64, torch.device("cpu"))
    want = np.asarray(Image.fromarray(big).resize((64, 64), Image.BILINEAR)).astype(np.float32) / 127.5 - 1
    assert p.tensor.shape == (1, 3, 64, 64) and not p.needs_value_check
    assert _err(p.tensor[0], torch.from_numpy(want).permute(2, 0, 1)) <= 1e-6


def test_construction_errors():
    from hyperstyle_trt.runtime import Inverter

    cases = [(dict(max_batch=0), "max_batch must be an integer >= 1"),
             (dict(precision="fp16"), "fp16.*needs device='cuda'"),
             (dict(precision="bf16"), "precision must be 'fp32' or 'fp16'"),
             (dict(executor="nope"), "unknown executor 'nope'"),
             (dict(executor="tensorrt"), "cannot run from a checkpoint"),  # onnxruntime now can (graph cache)
             (dict(stream=object()), "stream= applies to CUDA")]
    if not torch.cuda.is_available():
        cases.append((dict(device="cuda"), "torch.cuda.is_available\\(\\) is False"))
    for kw, pattern in cases:
        args = dict(config="tiny", executor="torch", device="cpu", precision="fp32", max_batch=2) | kw
        with pytest.raises(HsError, match=pattern) as e:
            Inverter.from_checkpoint(None, **args)
        assert "\n" not in str(e.value)


def test_export_dir_missing(tmp_path):
    from hyperstyle_trt.runtime import Inverter

    with pytest.raises(HsError, match="not found; create it with hs-export"):
        Inverter.from_export(tmp_path / "nope", executor="onnxruntime")
    with pytest.raises(HsError, match="lacks w_encoder_fp32.onnx, hypernet_plain_fp32.onnx, generator_plain_fp32.onnx"):
        Inverter.from_export(tmp_path, executor="onnxruntime")  # an empty directory
    with pytest.raises(HsError, match="executor 'torch' cannot run from an export directory"):
        Inverter.from_export(tmp_path, executor="torch")


def test_describe(inv):
    d = inv.describe()
    assert d["executor"] == "torch" and d["precision"] == "fp32" and d["delta_layout"] == "OHWI"
    assert d["per_channel_layers"] == ["convs.8", "convs.9"] and d["max_batch"] == 4 and not d["cuda_graphs"]
    assert d["buffer_bytes"] == inv.buffer_bytes > 0


def _storage_bytes(t: torch.Tensor) -> int:
    return t.untyped_storage().nbytes()


def _check_official_views(res, ref_deltas):
    """Every official Δ is a view of its raw Δ's storage (per-channel layers: a k x k broadcast, no copy)."""
    for k, d in res.deltas.items():
        raw = res.raw_deltas[k]
        assert d.untyped_storage().data_ptr() == raw.untyped_storage().data_ptr(), k
        assert _storage_bytes(raw) == raw.numel() * raw.element_size(), k  # owned: exactly the raw data
        assert torch.equal(d, ref_deltas[k]), k
    pc = [k for k, d in res.deltas.items() if res.raw_deltas[k].ndim == 3]  # [B,O,I] per-channel layers
    assert pc == ["convs.8", "convs.9"]
    assert all(res.deltas[k].stride()[-2:] == (0, 0) for k in pc)  # broadcast over the 3x3 taps


def test_copy_keeps_official_deltas_as_views(inv, images_u8):
    """copy(): the official Δ are re-made over the cloned raw Δ (the old copy cloned the per-channel broadcasts,
    9x the data), and the copy survives the next invert."""
    a = inv.invert(images_u8[:2], n_iters=1)
    want = {k: v.clone() for k, v in a.deltas.items()}
    raw_want = {k: v.clone() for k, v in a.raw_deltas.items()}
    kept = a.copy()
    assert kept.owned
    for k in kept.deltas:
        assert kept.raw_deltas[k].data_ptr() != a.raw_deltas[k].data_ptr()
        assert kept.deltas[k].shape == a.deltas[k].shape and kept.deltas[k].stride() == a.deltas[k].stride()
    _check_official_views(kept, want)
    inv.invert(images_u8[2:3], n_iters=1)  # overwrites the buffers `a` views
    _check_official_views(kept, want)
    assert all(torch.equal(kept.raw_deltas[k], raw_want[k]) for k in raw_want)
    assert kept.copy().deltas["convs.8"].untyped_storage().nbytes() == _storage_bytes(kept.raw_deltas["convs.8"])


def test_copy_of_plain_tensors_falls_back_to_clone():
    """A result whose official Δ is not a view of its raw Δ (built by hand) is still copied correctly."""
    from hyperstyle_trt.runtime.result import InverterResult

    raw = {"l": torch.arange(24.0).view(2, 3, 4)}
    off = {"l": torch.arange(24.0).view(2, 3, 4, 1, 1).expand(2, 3, 4, 3, 3).clone() + 1}  # its own storage
    r = InverterResult(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 2, 2), torch.zeros(2, 1, 4), off, raw, 1)
    c = r.copy()
    assert torch.equal(c.deltas["l"], off["l"]) and c.deltas["l"].data_ptr() != off["l"].data_ptr()
    assert torch.equal(c.raw_deltas["l"], raw["l"]) and c.raw_deltas["l"].data_ptr() != raw["l"].data_ptr()


def test_chunked_result_official_deltas_are_views(images_f, ref5):
    """B > max_batch (chunks, concatenated): the official Δ are views of the concatenated raw Δ."""
    from hyperstyle_trt.runtime import Inverter

    inv2 = Inverter.from_checkpoint(None, config="tiny", executor="torch", device="cpu", max_batch=2)
    res = inv2.invert(images_f, n_iters=1)
    whole = {k: inv2._official(k, v) for k, v in res.raw_deltas.items()}
    _check_official_views(res, whole)
    _check_against(res, ref5.iterations[1], ref5.codes, ref5.iteration_deltas[0], exact_codes=False)


def test_capture_without_graphs_is_ignored(monkeypatch):
    """capture= on an Inverter without CUDA graphs (here: CPU) captures nothing and never touches torch.cuda."""
    from hyperstyle_trt.runtime import Inverter

    def boom(*a, **k):
        raise AssertionError("torch.cuda.CUDAGraph() called on an Inverter without graphs")

    monkeypatch.setattr(torch.cuda, "CUDAGraph", boom)
    inv2 = Inverter.from_checkpoint(None, config="tiny", executor="torch", device="cpu", max_batch=2, capture=[1, 2])
    d = inv2.describe()
    assert not d["cuda_graphs"] and d["captured"] == [] and not inv2._graphs
    with pytest.raises(HsError, match="capture batch 3 exceeds max_batch=2"):  # still validated
        Inverter.from_checkpoint(None, config="tiny", executor="torch", device="cpu", max_batch=2, capture=[3])
