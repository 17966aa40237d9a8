"""Triton's CUDA and pinned memory pools, sized from what a repository moves across the python-backend boundary.

Triton allocates the tensors it hands to or takes from a python-backend stub on a GPU from its CUDA memory pool
(`--cuda-memory-pool-byte-size=<GPU id>:<bytes>`, once per GPU, default 64 MiB) and stages host <-> device copies
in pinned memory (`--pinned-memory-pool-byte-size=<bytes>`, default 256 MiB). When the pool is full the python
backend falls back to cudaMalloc / CUDA IPC per tensor (slower, with a warning). docs/serving.md cites the sources.

What crosses, per model instance, for one inversion at max batch B (all shapes from core.contract / pbtxt):

- NGC layout (`hyperstyle` BLS model + three tensorrt_plan models): every sub-model call's inputs are copied into
  the pool for the call (the largest call counts: the hypernet's image, recon_pooled and Δ), and its outputs are
  allocated there and stay there while the BLS model holds the response; bls_model.py holds every response until
  the inversion returns, so: codes + (T+1) x (image + image_pooled) + T x Σ acc_* (Δ). A fixed-batch graph (the
  plain generator) pads every call to its batch: ceil(B / batch) x batch items.
- Inverter layout (`hyperstyle` python model around runtime.Inverter): the served tensors only, image uint8
  [B,S,S,3] in, inversion uint8 [B,size,size,3] + codes fp32 [B,n_latent,style_dim] out (the Inverter's own
  buffers are torch's, not Triton's).

Host bytes (pinned pool) are the served tensors in both layouts. `transfer_record` turns these into a JSON record
that `hs-serve repo` stores in the model's sidecar (hs_serving.json); `pool_sizes` (pure) turns the records of a
repository into per-GPU pool sizes: HEADROOM x instances x bytes, rounded up to MiB, never below Triton's defaults;
KIND_CPU models need neither pool (no flags). `repository_pools` reads a repository's sidecars and calls it.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from hyperstyle_trt.core.contract import GraphIO
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.core.precision import precision as to_precision

#: Multiplier on the bytes in flight: the pool allocator's block rounding and the fragmentation left by transient
#: call inputs freed between held outputs (a margin chosen, not measured).
HEADROOM = 1.25
MIB = 1 << 20
TRITON_CUDA_POOL_DEFAULT = 64 * MIB  # tritonserver --help: "Default is 64 MB"
TRITON_PINNED_POOL_DEFAULT = 256 * MIB  # tritonserver --help: "Default is 256 MB"
SIDECAR = "hs_serving.json"
_TRITON_ITEMSIZE = {"TYPE_UINT8": 1}


def _item_bytes(shape, dtype: str) -> int:
    """Bytes of one item: `shape` without the batch, `dtype` any core.precision spelling or TYPE_UINT8."""
    size = _TRITON_ITEMSIZE.get(dtype) or to_precision(dtype).itemsize
    return size * math.prod(int(d) for d in shape)


def served_bytes(io) -> int:
    """Bytes per item of the served `hyperstyle` model's tensors (pbtxt.served_io: inputs + outputs)."""
    return sum(_item_bytes(t.dims, t.data_type) for ts in io for t in ts)


def ngc_device_terms(ios: dict[str, GraphIO], fixed: dict[str, int], max_batch: int, iters: int) -> dict[str, int]:
    """GPU bytes one BLS instance has in Triton's pool during one inversion at `max_batch` (module docstring), by
    term: `call_inputs` (the largest call's inputs) and the held outputs of w_encoder, generator, hypernet."""

    def items(g: str) -> int:  # items per call sequence of graph g at max batch (fixed-batch graphs pad)
        f = fixed.get(g)
        return math.ceil(max_batch / f) * f if f else max_batch

    def per_call(g: str, ts) -> int:
        return (fixed.get(g) or max_batch) * sum(_item_bytes(t.shape[1:], t.dtype) for t in ts)

    def outputs(g: str) -> int:
        return items(g) * sum(_item_bytes(t.shape[1:], t.dtype) for t in ios[g].outputs)

    return {"call_inputs": max(per_call(g, io.inputs) for g, io in ios.items()),
            "w_encoder_outputs": outputs("w_encoder"),
            "generator_outputs": (iters + 1) * outputs("generator"),
            "hypernet_outputs": iters * outputs("hypernet")}


def transfer_record(layout: str, kind: str, instances: int, max_batch: int, iters: int, host_item_bytes: int,
                    device_terms: dict[str, int] | None = None) -> dict:
    """The sidecar's `pools` record: per instance, for one inversion at max batch, `device_bytes` (Triton's CUDA
    pool; the Inverter layout: the served tensors, `host_item_bytes` x max_batch) and `host_bytes` (pinned)."""
    if layout not in ("inverter", "ngc"):
        raise HsError(f"layout must be 'inverter' or 'ngc', got {layout!r}")
    host = host_item_bytes * max_batch
    terms = dict(device_terms) if device_terms is not None else {"served_tensors": host}
    return {"layout": layout, "kind": kind, "instances": instances, "max_batch": max_batch, "iters": iters,
            "device_terms": terms, "device_bytes": sum(terms.values()), "host_bytes": host}


@dataclass(frozen=True)
class PoolSizes:
    """Pool sizes for one server: `cuda` ((GPU id, bytes), ...) and `pinned` bytes, both empty / None when no
    model runs on a GPU; `basis` says how they were computed (one line)."""

    cuda: tuple[tuple[int, int], ...] = ()
    pinned: int | None = None
    basis: str = "no KIND_GPU model with an hs-serve sidecar: Triton's default pools"

    def flags(self) -> list[str]:
        """tritonserver flags: `--cuda-memory-pool-byte-size=<gpu>:<bytes>` per GPU, then the pinned pool."""
        out = [f"--cuda-memory-pool-byte-size={g}:{b}" for g, b in self.cuda]
        return out + ([f"--pinned-memory-pool-byte-size={self.pinned}"] if self.pinned is not None else [])

    def describe(self) -> str:
        if not self.cuda and self.pinned is None:
            return f"memory pools: {self.basis}"
        cuda = ", ".join(f"GPU {g} {b / MIB:.0f} MiB" for g, b in self.cuda)
        return f"memory pools: CUDA {cuda}; pinned {self.pinned / MIB:.0f} MiB ({self.basis})"


def _mib_ceil(x: float) -> int:
    return math.ceil(x / MIB) * MIB


def pool_sizes(records: list[dict], gpus: tuple[int, ...] = (0,), headroom: float = HEADROOM) -> PoolSizes:
    """Pool sizes for a repository whose models' sidecar records (`transfer_record`) are `records`, on GPUs `gpus`.

    CUDA pool per GPU = headroom x Σ over KIND_GPU models of instances x device_bytes (instances are per GPU);
    pinned = headroom x Σ instances x len(gpus) x host_bytes; each rounded up to MiB and at least Triton's default.
    No KIND_GPU model (or no GPU): no flags."""
    gpu_records = [r for r in records if r.get("kind") == "KIND_GPU"]
    if not gpu_records or not gpus:
        return PoolSizes()
    device = sum(r["instances"] * r["device_bytes"] for r in gpu_records)
    host = sum(r["instances"] * r["host_bytes"] for r in gpu_records) * len(gpus)
    cuda = max(TRITON_CUDA_POOL_DEFAULT, _mib_ceil(headroom * device))
    pinned = max(TRITON_PINNED_POOL_DEFAULT, _mib_ceil(headroom * host))
    what = "; ".join(f"{r['layout']} x{r['instances']} at batch {r['max_batch']}, T={r['iters']}: "
                     f"{r['device_bytes'] / MIB:.0f} MiB device / {r['host_bytes'] / MIB:.1f} MiB host per instance"
                     for r in gpu_records)
    return PoolSizes(tuple((g, cuda) for g in gpus), pinned, f"{what}; headroom {headroom}, at least Triton's "
                                                              "defaults")


def visible_gpus(environ: dict | None = None, proc_gpus: str | os.PathLike = "/proc/driver/nvidia/gpus") \
        -> tuple[int, ...]:
    """The CUDA device ids tritonserver will see: one per CUDA_VISIBLE_DEVICES entry when it is set (renumbered
    from 0, up to the first negative entry), else one per GPU the NVIDIA driver lists; () without a GPU."""
    env = os.environ if environ is None else environ
    cvd = env.get("CUDA_VISIBLE_DEVICES")
    if cvd is not None:
        ids = []
        for entry in (e.strip() for e in cvd.split(",")):
            if not entry or entry.startswith("-"):
                break
            ids.append(entry)
        return tuple(range(len(ids)))
    p = Path(proc_gpus)
    return tuple(range(sum(1 for _ in p.iterdir()))) if p.is_dir() else ()


def repository_pools(repo: str | os.PathLike, gpus: tuple[int, ...] | None = None,
                     headroom: float = HEADROOM) -> PoolSizes:
    """`pool_sizes` for the sidecars (`<repo>/<model>/hs_serving.json` with a `pools` record) of repository `repo`;
    `gpus` default: `visible_gpus()`, or GPU 0 when none is visible here (the basis then says so)."""
    records = []
    for side in sorted(Path(repo).glob(f"*/{SIDECAR}")):
        try:
            rec = json.loads(side.read_text()).get("pools")
        except (OSError, ValueError, AttributeError):
            raise HsError(f"{side} is unreadable: rewrite the repository with hs-serve repo") from None
        if rec is not None:
            records.append(rec)
    found = visible_gpus() if gpus is None else tuple(gpus)
    sizes = pool_sizes(records, found or (0,), headroom)
    if sizes.cuda and not found:
        return PoolSizes(sizes.cuda, sizes.pinned, sizes.basis + "; no GPU visible here: sized for GPU 0")
    return sizes
