"""runtime.Inverter on a GPU: FFHQ-1024 torch executor fp16 vs the fp32 reference, CUDA-graph replay vs eager,
device memory over 1,000 calls, zero allocations inside invert.

Gates (what the issue asks; the measured figures go to the log and benchmarks/results/, not here):
    No GPU figure has been measured for this file yet (written on a CPU-only machine): every gate records its
    observed value through tests/gpu/conftest.py's `gate` fixture, which `make gpu-check` copies into
    gpu_summary.json's `gates`; tighten the loose gates below to ~2-3x of the first run's values then.
    fp16 fast path vs fp32 eager HyperStyle.invert (TF32 off): PSNR >= 40 dB on the final images, computed on
        the [0,1] images (y+1)/2 clamped, i.e. 10*log10(1/MSE); Δ error reported (max |Δ16-Δ32| / max |Δ32|
        per layer, printed) and bounded loosely (<= 5e-2 relative: fp16 end-to-end accumulation over T=5).
    replay vs eager of the same Inverter configuration: the same kernels on the same inputs, expected bitwise;
        gated at 1 fp16 ulp of |y| <= 1 (1e-3) in case cuDNN / cuBLAS pick another algorithm under capture.
    memory: torch's allocated and reserved bytes identical before and after 1,000 invert calls.
    allocations: torch.cuda.memory_stats()["allocation.all.allocated"] (it counts allocation requests, cache hits
        included) read after a synchronized warm call and again after N calls: equal.
Run: make gpu-check (or .venv/bin/python -m pytest -q tests/gpu/runtime).
"""

import gc
import math

import numpy as np
import pytest
import torch

# One xdist group (make gpu-check runs pytest -n 8 --dist loadgroup): every test of this module runs on one worker,
# so the FFHQ-1024 model and the fp16 Inverter (Triton compiles per batch bucket) are built once, not per worker.
pytestmark = [pytest.mark.gpu, pytest.mark.xdist_group("ffhq_runtime")]

T = 5


def _faces(n: int, s: int = 256, seed: int = 0) -> np.ndarray:
    """n distinct smooth uint8 HWC images [n,s,s,3] (gradients + noise): deterministic stand-ins for face crops."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:s, 0:s] / (s - 1)
    out = []
    for k in range(n):
        base = np.stack([(xx * (k + 1)) % 1.0, yy, (xx + yy) / 2 * (1 - 0.1 * k)], -1) * 255
        out.append(np.clip(base + rng.normal(0, 12, base.shape), 0, 255))
    return np.stack(out).astype(np.uint8)


def _psnr01(a: torch.Tensor, b: torch.Tensor) -> float:
    a01 = ((a.float() + 1) / 2).clamp(0, 1)
    b01 = ((b.float() + 1) / 2).clamp(0, 1)
    mse = float(((a01 - b01) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


@pytest.fixture(scope="module")
def model():
    from hyperstyle_trt.models.checkpoint import build_model

    return build_model("ffhq1024", quiet=True)  # fp32 CPU; the Inverters copy it


@pytest.fixture(scope="module")
def x2():
    u8 = _faces(2)
    return (torch.from_numpy(u8).permute(0, 3, 1, 2).float() / 127.5 - 1).contiguous()  # [2,3,256,256]


@pytest.fixture(scope="module")
def inv16(model):
    from hyperstyle_trt.runtime import Inverter

    return Inverter.from_model(model, executor="torch", device="cuda", precision="fp16", max_batch=2)


@pytest.fixture(scope="module")
def ref32(model, x2):
    """The fp32 eager reference (models.hyperstyle.HyperStyle.invert on CUDA, TF32 off by tests/gpu/conftest)."""
    import copy

    m = copy.deepcopy(model).cuda()
    out = m.invert(x2.cuda(), n_iters=T)
    res = {"image": out.image.cpu(), "codes": out.codes.cpu(), "deltas": {k: v.cpu() for k, v in out.deltas.items()}}
    del m, out
    torch.cuda.empty_cache()
    return res


def test_fp16_vs_fp32_reference_psnr(inv16, ref32, x2, gate):
    """Gates loose, never observed on a GPU (first run: the recorded values)."""
    res = inv16.invert(x2, n_iters=T, copy=True)
    psnr = [_psnr01(res.images[i].cpu(), ref32["image"][i]) for i in range(2)]
    codes_rel = float((res.codes.float().cpu() - ref32["codes"]).abs().max() / ref32["codes"].abs().max())
    d_rel = {k: float((res.deltas[k].float().cpu() - d).abs().max() / d.abs().max().clamp_min(1e-12))
             for k, d in ref32["deltas"].items()}
    worst = max(d_rel, key=d_rel.get)
    print(f"\nfp16 torch Inverter vs fp32 reference, FFHQ-1024, T={T}: PSNR {psnr[0]:.2f} / {psnr[1]:.2f} dB; "
          f"codes rel err {codes_rel:.2e}; Δ rel err worst {worst} {d_rel[worst]:.2e}, "
          f"median {float(np.median(list(d_rel.values()))):.2e}")
    gate("psnr_min_db", min(psnr), ">=", 40.0)
    gate("codes_rel_err", codes_rel, "<=", 1e-2)
    gate("delta_rel_err_worst", d_rel[worst], "<=", 5e-2)
    assert min(psnr) >= 40.0
    assert codes_rel <= 1e-2
    assert d_rel[worst] <= 5e-2


def test_fp32_torch_inverter_matches_reference(model, ref32, x2, gate):
    """fp32 on CUDA (Triton staged kernels, fp32) reproduces the fp32 reference (gate 1e-3 abs on images: loose,
    not yet observed, first run: the recorded values; the per-layer fp32 kernel checks in tests/gpu/plugins are the
    tight ones)."""
    from hyperstyle_trt.runtime import Inverter

    inv = Inverter.from_model(model, executor="torch", device="cuda", precision="fp32", max_batch=2,
                              warmup=False)
    res = inv.invert(x2, n_iters=T, copy=True)
    err = float((res.images.cpu() - ref32["image"]).abs().max())
    print(f"\nfp32 torch Inverter vs fp32 reference: images max abs {err:.2e}, PSNR "
          f"{_psnr01(res.images.cpu(), ref32['image']):.1f} dB")
    gate("codes_max_abs", float((res.codes.cpu() - ref32["codes"]).abs().max()), "<", 1e-4)
    gate("images_max_abs", err, "<=", 1e-3)
    assert torch.equal(res.codes.cpu(), ref32["codes"]) or float((res.codes.cpu() - ref32["codes"]).abs().max()) < 1e-4
    assert err <= 1e-3
    inv.close()


def test_graph_replay_equals_eager(model, inv16, x2, gate):
    """Gates loose, never observed on a GPU (first run: the recorded values)."""
    from hyperstyle_trt.runtime import Inverter

    xd = x2.cuda().half()
    a = inv16.invert(xd, n_iters=T, copy=True)  # captured (lazily) then replayed
    b = inv16.invert(xd, n_iters=T, copy=True)  # replayed again
    assert (2, T) in inv16._graphs and inv16.use_graphs
    assert torch.equal(a.images, b.images) and all(torch.equal(a.raw_deltas[k], b.raw_deltas[k]) for k in a.raw_deltas)
    eager = Inverter.from_model(model, executor="torch", device="cuda", precision="fp16", max_batch=2,
                                cuda_graphs=False, warmup=False)
    e = eager.invert(xd, n_iters=T, copy=True)
    err = float((a.images.float() - e.images.float()).abs().max())
    derr = max(float((a.raw_deltas[k].float() - e.raw_deltas[k].float()).abs().max()) for k in a.raw_deltas)
    print(f"\nreplay vs eager (fp16): images max abs {err:.2e}, Δ max abs {derr:.2e}")
    gate("images_max_abs", err, "<=", 1e-3)
    gate("delta_max_abs", derr, "<=", 1e-3)
    assert torch.equal(a.codes, e.codes)
    assert err <= 1e-3 and derr <= 1e-3
    eager.close()


def test_every_batch_size_and_chunks(inv16, x2, gate):
    """B=1 (its own graph) agrees with the B=2 rows (other kernels' batch: PSNR >= 40 dB, not bitwise); B=3 >
    max_batch runs as chunks 2+1, bitwise equal to the B=2 and B=1 graphs it replays. The PSNR gate is loose, never
    observed on a GPU (first run: the recorded value)."""
    xd = x2.cuda().half()
    two = inv16.invert(xd, n_iters=T, copy=True)
    one = [inv16.invert(xd[i:i + 1], n_iters=T, copy=True) for i in (0, 1)]
    three = inv16.invert(torch.cat([xd, xd[:1]]), n_iters=T)
    assert (1, T) in inv16._graphs and (2, T) in inv16._graphs
    gate("b1_vs_b2_psnr_min_db", min(_psnr01(one[i].images, two.images[i:i + 1]) for i in (0, 1)), ">=", 40.0)
    assert min(_psnr01(one[i].images, two.images[i:i + 1]) for i in (0, 1)) >= 40.0
    assert torch.equal(three.images[:2], two.images) and torch.equal(three.images[2:], one[0].images)


def test_memory_identical_over_1000_calls(inv16, x2, gate):
    """torch's allocated and reserved bytes do not grow over 1,000 calls (never observed on a GPU; first run: the
    recorded growth; the device's free bytes are recorded, not gated: other processes may share the GPU)."""
    xd = x2[:1].cuda().half()
    inv16.invert(xd, n_iters=T)  # captured
    gc.collect()  # free earlier tests' unreachable device tensors now, not (by the cyclic GC) during the 1000 calls
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated(), torch.cuda.memory_reserved()
    free0 = torch.cuda.mem_get_info()[0]
    for _ in range(1000):
        inv16.invert(xd, n_iters=T)
    gc.collect()
    torch.cuda.synchronize()
    after = torch.cuda.memory_allocated(), torch.cuda.memory_reserved()
    print(f"\n1000 calls: allocated {before[0]} -> {after[0]}, reserved {before[1]} -> {after[1]}, "
          f"device free {free0} -> {torch.cuda.mem_get_info()[0]} (other processes may share the GPU)")
    gate("allocated_growth_bytes", after[0] - before[0], "==", 0)
    gate("reserved_growth_bytes", after[1] - before[1], "==", 0)
    gate("device_free_change_bytes", torch.cuda.mem_get_info()[0] - free0)
    assert after == before


@pytest.mark.parametrize("kind", ["device fp16", "device fp32", "host float"])
def test_zero_allocations_inside_invert(inv16, x2, kind, gate):
    """No allocation request and no new segment over 10 warm calls (never observed on a GPU; first run: the recorded
    counts)."""
    x = {"device fp16": x2.cuda().half(), "device fp32": x2.cuda(), "host float": x2}[kind]
    inv16.invert(x, n_iters=T)  # warm: graphs (loop and value check) captured for B=2
    torch.cuda.synchronize()
    stats0 = torch.cuda.memory_stats()
    n0, seg0 = stats0["allocation.all.allocated"], stats0["segment.all.allocated"]
    for _ in range(10):
        inv16.invert(x, n_iters=T)
    torch.cuda.synchronize()
    stats1 = torch.cuda.memory_stats()
    gate("allocations_in_10_calls", stats1["allocation.all.allocated"] - n0, "==", 0)
    gate("segments_in_10_calls", stats1["segment.all.allocated"] - seg0, "==", 0)
    assert stats1["allocation.all.allocated"] - n0 == 0
    assert stats1["segment.all.allocated"] - seg0 == 0


def test_device_value_check_and_stream(inv16, x2):
    from hyperstyle_trt.core.errors import HsError

    bad = x2.cuda().half().clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(HsError, match="NaN or Inf"):
        inv16.invert(bad, n_iters=T)
    s = torch.cuda.Stream()
    a = inv16.invert(x2.cuda().half(), n_iters=T, copy=True)
    b = inv16.invert(x2.cuda().half(), n_iters=T, copy=True, stream=s)
    torch.cuda.current_stream().wait_stream(s)
    assert torch.equal(a.images, b.images)


def test_eager_capture_at_construction(model):
    from hyperstyle_trt.runtime import Inverter

    inv = Inverter.from_model(model, executor="torch", device="cuda", precision="fp16", max_batch=2,
                              capture=[1, 2], n_iters=2)
    assert {(1, 2), (2, 2)} <= set(inv._graphs)
    inv.close()


def test_edit_copies_out_on_the_inverter_stream(inv16, x2, gate):
    """runtime.edit.render enqueues the generator AND the copy out of its image buffer on the Inverter's stream.
    The Inverter's stream is held back by a GPU sleep before the edit: a copy enqueued on the caller's stream (the
    old code) would then read the image buffer before the generator wrote it, i.e. whatever the allocator's reused
    block held (here: the strength +3 render just before), not the strength-0 render (= res.images). Gates never
    observed on a GPU (first run: the recorded values)."""
    res = inv16.invert(x2.cuda().half(), n_iters=T, copy=True)
    d = torch.randn(512, generator=torch.Generator().manual_seed(0))
    far = inv16.edit(res, d, 3.0)
    torch.cuda.synchronize()
    moved = float((far.float() - res.images.float()).abs().max())
    del far  # its blocks go back to the cache: the next render's buffers likely reuse them
    with torch.cuda.stream(inv16.stream):
        torch.cuda._sleep(200_000_000)  # ~0.1 s of GPU time on the Inverter's stream only
    zero = inv16.edit(res, d, 0.0)
    torch.cuda.synchronize()
    err = float((zero.float() - res.images.float()).abs().max())
    print(f"\nedit strength 0 vs res.images (delayed Inverter stream): max abs {err:.2e}; strength 3 moved {moved:.2f}")
    gate("strength3_moved_max_abs", moved, ">", 0.1)
    gate("strength0_vs_images_max_abs", err, "<=", 1e-3)
    assert moved > 0.1  # the +3 render differs clearly, so stale data would be caught
    assert err <= 1e-3  # the same generator kernels as the loop's (replay vs eager gate above)
