"""hyperstyle-trt: HyperStyle (CVPR 2022) inversion on TensorRT, onnxruntime or PyTorch.

    from hyperstyle_trt import Inverter
    inv = Inverter.from_checkpoint(None, config="tiny", executor="torch", device="cpu", precision="fp32")
    res = inv.invert(images, n_iters=5)

Sub-packages, lowest layer first (import-linter's layers contract in pyproject.toml keeps imports flowing one way):
`core` (errors, configs, graph contract, vocabulary), `models`, `plugins`, `export`, `engines`, `runtime`, and on top
`benchmarks` and `cli`. `Inverter` and `InverterResult` are resolved lazily, so `import hyperstyle_trt.core` stays
free of torch.
"""

from __future__ import annotations

__all__ = ["Inverter", "InverterResult"]


def __getattr__(name: str):
    if name in ("Inverter", "InverterResult"):
        from hyperstyle_trt import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module 'hyperstyle_trt' has no attribute {name!r}")
