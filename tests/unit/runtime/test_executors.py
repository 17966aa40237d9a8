"""The executor registry, the base interface's checks, the Inverter's buffer plan (fake executor: no model runs),
the fp16 policy's BatchNorm fold (checked in fp32 on the CPU) and zero-copy foreign inputs."""

import numpy as np
import pytest
import torch

from hyperstyle_trt.core.config import get_config
from hyperstyle_trt.core.contract import delta_modes
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.runtime.executors import available_executors, get_executor, register_executor
from hyperstyle_trt.runtime.executors.base import Executor


class Fake(Executor):
    """Writes recognisable values: codes = 1, acc = delta + 1 (so Δ after T iterations is T), image = Σ_l mean Δ_l;
    records (graph, batch, first row address of every binding)."""

    name = "fake"

    def __init__(self, fixed=None, max_batch=None):
        self.cfg, self.device, self.precision = get_config("tiny"), torch.device("cpu"), "fp32"
        self.modes, self.ohwi = delta_modes(self.cfg, per_channel=False), False
        self.fixed_batch, self.max_batch, self.calls = fixed or {}, max_batch, []

    def run(self, graph, bindings, batch, stream):
        io = self.io(graph)
        assert set(bindings) == set(io.input_names + io.output_names)
        assert all(t.shape[0] == batch and t.is_contiguous() for t in bindings.values())
        self.calls.append((graph, batch))
        if graph == "w_encoder":
            bindings["codes"].fill_(1)
        elif graph == "hypernet":
            for s in self.cfg.tuned:
                torch.add(bindings[s.input_name], 1, out=bindings["acc_" + s.name.replace(".", "_")])
        else:
            tot = sum(bindings[s.input_name].flatten(1).mean(1) for s in self.cfg.tuned)  # [b]
            bindings["image"].copy_(tot.view(-1, 1, 1, 1).expand_as(bindings["image"]))
            bindings["image_pooled"].copy_(tot.view(-1, 1, 1, 1).expand_as(bindings["image_pooled"]))


def test_registry():
    assert available_executors() == ["onnxruntime", "tensorrt", "torch"]
    assert get_executor("torch").name == "torch"
    with pytest.raises(HsError, match="unknown executor 'x'; expected one of"):
        get_executor("x")
    register_executor("fake_lazy", "no_such_module_hs:Cls")
    with pytest.raises(HsError, match="executor 'fake_lazy' is not available here"):
        get_executor("fake_lazy")
    register_executor("fake", Fake)
    assert get_executor("fake") is Fake


def test_base_constructors_and_check():
    with pytest.raises(HsError, match="cannot run from a checkpoint"):
        Fake.from_model(None, "cpu", "fp32")
    with pytest.raises(HsError, match="cannot run from an export directory"):
        Fake.from_export("x")
    with pytest.raises(HsError, match=r"max_batch=9 exceeds .*\(max 8\).*hs-export --max-batch 9"):
        Fake(max_batch=8).check(9)


@pytest.mark.parametrize("T", [1, 2, 5])
def test_ping_pong_and_fixed_batch_rows(T):
    """Δ after T iterations is T in every layer and row (set T % 2); the fixed-batch generator (3) runs on padded
    chunks over rows rounded up to a multiple of 3."""
    from hyperstyle_trt.runtime import Inverter

    ex = Fake(fixed={"generator": 3})
    inv = Inverter(ex, max_batch=4)
    assert inv.rows == 6 and inv.x.shape[0] == 6
    res = inv.invert(torch.zeros(4, 3, 64, 64), n_iters=T)
    n = len(ex.cfg.tuned)
    assert all(torch.equal(v, torch.full_like(v, T)) for v in res.raw_deltas.values())
    assert all(res.raw_deltas[s.name].data_ptr() == inv.sets[T % 2][s.name].data_ptr() for s in ex.cfg.tuned)
    assert torch.allclose(res.images, torch.full_like(res.images, n * T))
    gens = [c for c in ex.calls if c[0] == "generator"]
    assert len(gens) == 2 * (T + 1) and all(b == 3 for _, b in gens)  # rows 0-2, 3-5 per generator call
    assert [c for c in ex.calls if c[0] != "generator"] == [("w_encoder", 4)] + [("hypernet", 4)] * T


def test_edit_pads_fixed_batch():
    from hyperstyle_trt.runtime import Inverter

    inv = Inverter(Fake(fixed={"generator": 3}), max_batch=2)
    res = inv.invert(torch.zeros(2, 3, 64, 64), n_iters=2, copy=True)
    out = inv.edit(res, torch.zeros(32), [0, 1, 2])  # 6 rows -> 2 chunks of 3
    assert out.shape == (3, 2, 3, 128, 128) and torch.equal(out[2], res.images)


def test_stream_and_capture_arguments_checked():
    from hyperstyle_trt.runtime import Inverter

    with pytest.raises(HsError, match="capture batch 5 exceeds max_batch=4"):
        Inverter(Fake(), max_batch=4, capture=[5])
    with pytest.raises(HsError, match="max_batch=3 exceeds"):
        Inverter(Fake(max_batch=2), max_batch=3)


def test_fold_batchnorm_matches_eval_batchnorm(tiny_model):
    """The fp16 policy's first step, checked in fp32: BN folded into x*scale+shift changes nothing but rounding."""
    import copy

    from hyperstyle_trt.runtime.executors.torch_executor import fold_batchnorm_

    m = copy.deepcopy(tiny_model)
    n = fold_batchnorm_(m.w_encoder) + fold_batchnorm_(m.hypernet)
    assert n > 0 and not any(isinstance(x, torch.nn.BatchNorm2d) for x in m.modules() if x is not m.decoder)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert float((m.encode(x) - tiny_model.encode(x)).abs().max()) <= 1e-5
        f0 = tiny_model.hypernet.features(torch.cat([x, x], 1))
        assert float((m.hypernet.features(torch.cat([x, x], 1)) - f0).abs().max()) <= 1e-5 * max(1, f0.abs().max())


def test_dlpack_input_is_zero_copy():
    from hyperstyle_trt.runtime.inputs import prepare

    t = torch.rand(2, 3, 64, 64) * 2 - 1

    class Foreign:  # an array library's object that only speaks DLPack
        def __dlpack__(self, **kw):
            return t.__dlpack__(**kw)

        def __dlpack_device__(self):
            return t.__dlpack_device__()

    p = prepare(Foreign(), 64, torch.device("cpu"))
    assert p.tensor.data_ptr() == t.data_ptr() and p.batch == 2


def test_list_of_uint8_images():
    from hyperstyle_trt.runtime.inputs import prepare

    imgs = [np.full((64, 64, 3), v, np.uint8) for v in (0, 255)]
    p = prepare(imgs, 64, torch.device("cpu"))
    assert p.tensor.shape == (2, 3, 64, 64) and float(p.tensor[0].max()) == -1 and float(p.tensor[1].min()) == 1


def test_fp16_policy_plumbing_on_cpu(tiny_model, images_f, ref5):
    """The fp16 policy (BN folded in fp32, fp16 parameters and buffers end to end) on the CPU's half kernels: every
    buffer and parameter fp16, no BatchNorm left, and the result close to the fp32 reference. Observed (tiny,
    conftest images, T=1): PSNR 72.5 / 70.4 dB ((y+1)/2, 10 log10(1/MSE)), worst Δ relative error 6.5e-4; gates
    PSNR >= 65 dB (~3x the MSE) and Δ <= 2e-3. The GPU figure (FFHQ-1024, T=5, >= 40 dB) is tests/gpu/runtime's."""
    import math

    from hyperstyle_trt.runtime import Inverter
    from hyperstyle_trt.runtime.executors.torch_executor import TorchExecutor

    ex = TorchExecutor(tiny_model, "cpu", "fp16", allow_cpu_fp16=True)
    assert ex.bn_folded > 0 and not any(isinstance(m, torch.nn.BatchNorm2d) for m in ex.model.modules())
    assert {p.dtype for p in ex.model.parameters()} | {b.dtype for b in ex.model.buffers()} == {torch.float16}
    inv = Inverter(ex, max_batch=2)
    assert {t.dtype for t in (inv.x, inv.codes, inv.y, *inv.sets[0].values())} == {torch.float16}
    res = inv.invert(images_f[:2], n_iters=1)
    ref = ref5.iterations[1][:2]
    psnr = [10 * math.log10(1 / float(((((res.images[i].float() + 1) / 2).clamp(0, 1) - ((ref[i] + 1) / 2).clamp(0, 1))
                                       ** 2).mean())) for i in range(2)]
    d = max(float((res.deltas[k].float() - v[:2]).abs().max() / v[:2].abs().max())
            for k, v in ref5.iteration_deltas[0].items())
    print(f"fp16 policy on CPU: PSNR {psnr[0]:.1f} / {psnr[1]:.1f} dB, worst Δ rel {d:.2e}")
    assert min(psnr) >= 65.0 and d <= 2e-3
