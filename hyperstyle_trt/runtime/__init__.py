"""The runtime: `Inverter` (the refinement loop on preallocated buffers, executors by name) and its result.

    from hyperstyle_trt import Inverter
    inv = Inverter.from_checkpoint(None, config="tiny", executor="torch", device="cpu", precision="fp32")
    res = inv.invert(images, n_iters=5)   # res.images, res.images_pooled, res.codes, res.deltas, res.to_uint8()

docs/runtime.md describes the API, the buffers and the executors.
"""

from hyperstyle_trt.runtime.inverter import Inverter
from hyperstyle_trt.runtime.result import InverterResult

__all__ = ["Inverter", "InverterResult"]
