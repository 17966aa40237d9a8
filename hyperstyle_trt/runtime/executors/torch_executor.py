"""`torch` executor: the exporter's graph modules run eagerly (and captured by the Inverter on CUDA).

Graphs (the same modules hs-export traces, so engine and eager module are the same code):
    w_encoder  models.graphs.WEncoderGraph
    hypernet   models.graphs.HypernetGraph(model, modes, ohwi=True): shared layers stacked, Δ emitted in the plugin
               layout (full 3x3 Δ OHWI [B,O,3,3,I], non-shared 3x3 per-channel [B,O,I], toRGB [B,3,I,1,1]);
               the sum acc + Δ is written straight into the Inverter's acc_* buffer (no extra copy)
    generator  plugins.generator.PluginGeneratorGraph: torch.ops.hyperstyle.mod_conv / to_rgb (CPU: the reference
               ops; CUDA: the Triton kernels, fused or staged per plugins.mod_conv.strategy)

Precision policy (the torch counterpart of export/fp16.py, which decides the same for the fp16 engines):
    fp32  (CPU and CUDA) every parameter, activation and Δ in float32.
    fp16  (CUDA only) - BatchNorm layers are folded in float32 into a per-channel affine y = x*scale + shift
            (scale = γ/sqrt(var+ε), shift = β - mean*scale), then rounded to fp16 once, as the exporter folds BN
            before its fp16 pass (export.passes.batchnorm_to_affine);
          - every other parameter and buffer (conv / linear / hypernet w1, w2 / generator weights, noise,
            latent_avg) is stored in fp16 once, so no per-call casts;
          - activations, codes, Δ and images are fp16 tensors (the contract's fp16 I/O: buffers fp16 end to end,
            the accumulated Δ included, as in the fp16 engines);
          - what export/fp16.py keeps in fp32 (reductions and means: adaptive/global average pools of the SE blocks,
            the W-encoder head, the refinement heads and the image pooling; the demodulation Pow/ReduceSum/Sqrt/
            Reciprocal; normalizations) is accumulated in fp32 here too, inside the kernels: torch's CUDA reduction
            and pooling kernels accumulate fp16 inputs in fp32, and the HsModConv kernels form the demodulation
            coefficient and accumulate the convolution in fp32 (plugins/mod_conv/kernel.py, staged.py); only their
            results are rounded to fp16, where the engine's next fp16 consumer casts too. Convolutions and matmuls
            run in fp16 with fp32 accumulation (cuDNN / cuBLAS / Triton defaults).
"""

from __future__ import annotations

import contextlib
import copy as _copy
from typing import Mapping

import torch
from torch import nn

from hyperstyle_trt.core.contract import delta_modes
from hyperstyle_trt.core.device import torch_device
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.models.graphs import HypernetGraph, WEncoderGraph
from hyperstyle_trt.models.hypernet import HyperRefinementBlock
from hyperstyle_trt.runtime.executors.base import Executor


class _Affine(nn.Module):
    """Eval-mode BatchNorm2d folded into y = x * scale[C] + shift[C] (computed in fp32)."""

    def __init__(self, bn: nn.BatchNorm2d):
        super().__init__()
        with torch.no_grad():
            var = bn.running_var.double()
            g = bn.weight.double() if bn.weight is not None else torch.ones_like(var)
            b = bn.bias.double() if bn.bias is not None else torch.zeros_like(var)
            scale = g / torch.sqrt(var + bn.eps)
            shift = b - bn.running_mean.double() * scale
        self.register_buffer("scale", scale.float().view(1, -1, 1, 1))
        self.register_buffer("shift", shift.float().view(1, -1, 1, 1))

    def forward(self, x):
        return torch.addcmul(self.shift, x, self.scale)  # [B,C,H,W]


def fold_batchnorm_(module: nn.Module) -> int:
    """Replace every BatchNorm2d under `module` by its fp32-folded `_Affine` (in place); returns how many."""
    n = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, _Affine(child))
            n += 1
        else:
            n += fold_batchnorm_(child)
    return n


class _HypernetInto(HypernetGraph):
    """HypernetGraph whose result acc + Δ is written into given output tensors (torch.add(out=)): the same math as
    HypernetGraph.forward (tests compare the Inverter with HyperStyle.invert), without the copy into the buffers."""

    def forward_into(self, image, recon_pooled, acc, out) -> None:
        f = self.hypernet.features(torch.cat([image, recon_pooled], dim=1))  # [B,C,S/16,S/16]
        shared = iter(self._shared_deltas(f)) if self.shared else iter(())
        for spec, blk, a, o in zip(self.specs, self.blocks, acc, out):
            d = next(shared) if isinstance(blk, HyperRefinementBlock) else self._block_delta(spec, blk, f)
            torch.add(a, d, out=o)


class TorchExecutor(Executor):
    """The three graph modules on torch (see the module docstring for layouts and the fp16 policy)."""

    name = "torch"

    def __init__(self, model, device="cpu", precision: str = "fp32", copy: bool = True, allow_cpu_fp16: bool = False):
        """model: models.hyperstyle.HyperStyle (fp32); copy=False lets the executor cast/move it in place (the
        Inverter does so for models it loaded itself). allow_cpu_fp16: run the fp16 policy on the CPU (torch's CPU
        half kernels and the reference ops in fp16; slow): only to test the policy's plumbing without a GPU."""
        dev = torch_device(device)
        if precision not in ("fp32", "fp16"):
            raise HsError(f"precision must be 'fp32' or 'fp16', got {precision!r}")
        if precision == "fp16" and dev.type != "cuda" and not allow_cpu_fp16:
            raise HsError("precision='fp16' needs device='cuda'; the CPU path runs fp32 with the reference ops")
        if dev.type == "cuda":
            from hyperstyle_trt.plugins._triton import triton_available

            if not triton_available():
                raise HsError("the torch executor on CUDA needs triton for the generator kernels "
                              "(pip install 'hyperstyle-trt[kernels]')")
        from hyperstyle_trt.plugins.generator import PluginGeneratorGraph

        self.cfg, self.device, self.precision = model.cfg, dev, precision
        self.modes = delta_modes(model.cfg, per_channel=True)
        self.ohwi = True
        self.capturable = dev.type == "cuda"
        m = _copy.deepcopy(model) if copy else model
        m = m.eval().requires_grad_(False)
        self.bn_folded = 0
        if precision == "fp16":
            self.bn_folded = fold_batchnorm_(m.w_encoder) + fold_batchnorm_(m.hypernet)
            m = m.half()
        m = m.to(dev)
        self.model = m
        self.graphs: dict[str, nn.Module] = {"w_encoder": WEncoderGraph(m),
                                             "hypernet": _HypernetInto(m, self.modes, ohwi=True),
                                             "generator": PluginGeneratorGraph(m, self.modes)}
        self._names = {g: (self.io(g).input_names, self.io(g).output_names) for g in self.graphs}

    @classmethod
    def from_model(cls, model, device="cpu", precision: str = "fp32", copy: bool = True) -> "TorchExecutor":
        return cls(model, device, precision, copy=copy)

    def prepare(self, max_batch: int) -> None:
        """Fill the plugin generator's OHWI weight cache eagerly (never inside a capture)."""
        with torch.no_grad():
            self.graphs["generator"].gen.fill_weight_cache()

    def run(self, graph: str, bindings: Mapping[str, torch.Tensor], batch: int, stream) -> None:
        ins, outs = self._names[graph]
        ctx = torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext()
        with torch.no_grad(), ctx:
            if graph == "hypernet":
                self.graphs[graph].forward_into(bindings[ins[0]], bindings[ins[1]], [bindings[n] for n in ins[2:]],
                                                [bindings[n] for n in outs])
                return
            res = self.graphs[graph](*[bindings[n] for n in ins])
            for name, r in zip(outs, res if isinstance(res, tuple) else (res,)):
                bindings[name].copy_(r)

    def describe(self) -> dict:
        return super().describe() | {"torch": torch.__version__, "bn_folded": self.bn_folded,
                                     "generator_ops": "reference (CPU)" if self.device.type == "cpu"
                                     else "triton (torch.ops.hyperstyle)"}
