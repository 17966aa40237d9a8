"""Optimization profiles per batch bucket: which profiles an engine is built with, and which one a context selects.

    batch_buckets(8)                 # ((1, 1, 1), (2, 2, 2), (3, 4, 4), (5, 8, 8)): (min, opt, max) batch
    BuildOptions(profile=batch_profile(io.inputs, 8), batch_buckets=batch_buckets(8))  # one profile per bucket
    engine_profiles(engine, names)   # what a deserialized engine has, (min, opt, max) batch per profile index
    pick_profile(profiles, 3)        # 2: the narrowest profile covering batch 3 (None when none covers it)

Why buckets. The Inverter runs a batch b <= max_batch at b itself (one plan, one CUDA graph and, on TensorRT, one
execution context per b; it pads rows only for fixed-batch graphs), and warms up every b in 1..max_batch. One profile
over 1..max_batch with opt = max tunes batch 1 with batch 8's tactics; one profile per b would tune each exactly but
multiplies build time (TensorRT times tactics per profile) and the engine's per-profile kernels by max_batch. The
powers of two up to max_batch, plus max_batch (and `opt_batch` when given), split 1..max_batch into buckets
(lo, hi] with opt = max = hi: ceil(log2(max_batch)) + 1 profiles, and a batch runs on tactics tuned for at most twice
its size. A context at batch b selects the narrowest profile that covers b, once, when it is created
(`IExecutionContext.set_optimization_profile_async(index, stream)`, before its input shapes are set); contexts at 3
and 4 share the bucket (3..4). TensorRT 10 always allows a profile to be selected by several contexts (the
PROFILE_SHARING_0806 preview feature is on and deprecated; TensorRT-RTX has no such flag), and only contexts in
concurrent use need separate profiles: the Inverter runs every context on one stream, one call after another.

Engines built before this (one profile over 1..max_batch) keep working: every batch selects profile 0.
Not yet run on a GPU or with full TensorRT: multi-profile engines are built here with TensorRT-RTX only, and profile
selection is exercised against a fake TensorRT (tests/unit/runtime/test_tensorrt_executor.py).
"""

from __future__ import annotations

from typing import Any, Iterable

from hyperstyle_trt.core.errors import HsError

Profile = tuple[tuple[str, tuple[int, ...], tuple[int, ...], tuple[int, ...]], ...]  # (name, min, opt, max) per input


def batch_buckets(max_batch: int, opt_batch: int | None = None) -> tuple[tuple[int, int, int], ...]:
    """(min, opt, max) batch of each bucket: edges at the powers of two below `max_batch`, at `max_batch` and at
    `opt_batch` (a batch to tune exactly); bucket k covers (edge k-1, edge k] and is tuned for its top, edge k."""
    if max_batch < 1:
        raise HsError(f"max_batch must be >= 1, got {max_batch}")
    if opt_batch is not None and not 1 <= opt_batch <= max_batch:
        raise HsError(f"opt_batch must be in 1..{max_batch}, got {opt_batch}")
    edges, p = {max_batch}, 1
    while p < max_batch:
        edges.add(p)
        p *= 2
    if opt_batch is not None:
        edges.add(opt_batch)
    out, lo = [], 1
    for e in sorted(edges):
        out.append((lo, e, e))
        lo = e + 1
    return tuple(out)


def batch_profile(inputs, max_batch: int, opt_batch: int | None = None) -> Profile:
    """One profile entry per input whose dim 0 is symbolic: batch 1..max_batch, opt = opt_batch or max_batch (the
    single profile engines had before the buckets). `inputs`: core.contract.TensorIO-like (name, shape with a str
    batch dim)."""
    opt = opt_batch or max_batch
    return _profile(inputs, 1, opt, max_batch)


def _profile(inputs, lo: int, opt: int, hi: int) -> Profile:
    out = []
    for t in inputs:
        if isinstance(t.shape[0], str):
            rest = tuple(int(d) for d in t.shape[1:])
            out.append((t.name, (lo, *rest), (opt, *rest), (hi, *rest)))
    return tuple(out)


def profile_batches(profile: Profile) -> dict[str, int]:
    """{"min", "opt", "max"} batch of a profile (what the engine sidecar records per profile index): the range
    every input accepts (largest min, smallest max) and the first input's opt."""
    lo = max(mn[0] for _, mn, _, _ in profile)
    hi = min(mx[0] for _, _, _, mx in profile)
    return {"min": lo, "opt": profile[0][2][0], "max": hi}


def engine_profiles(engine, names: Iterable[str]) -> tuple[tuple[int, int, int], ...]:
    """(min, opt, max) batch of each optimization profile of a deserialized engine, over its dynamic inputs `names`
    (`get_tensor_profile_shape(name, index)`; `num_optimization_profiles`, 1 where the binding lacks it)."""
    names = list(names)
    n = int(getattr(engine, "num_optimization_profiles", 1) or 1)
    out = []
    for p in range(n):
        lo, opt, hi = 1, None, None
        for name in names:
            mn, op, mx = (tuple(int(v) for v in s) for s in engine.get_tensor_profile_shape(name, p))
            lo, hi = max(lo, mn[0]), mx[0] if hi is None else min(hi, mx[0])
            opt = op[0] if opt is None else opt
        out.append((lo, opt if opt is not None else lo, hi if hi is not None else lo))
    return tuple(out)


def pick_profile(profiles: tuple[tuple[int, int, int], ...], batch: int) -> int | None:
    """Index of the narrowest profile whose (min, max) covers `batch` (the lowest index among equals); None when no
    profile covers it."""
    best = None
    for i, (lo, _, hi) in enumerate(profiles):
        if lo <= batch <= hi and (best is None or hi - lo < profiles[best][2] - profiles[best][0]):
            best = i
    return best


def describe_ranges(profiles: tuple[tuple[int, int, int], ...]) -> str:
    """"1..1, 2..2, 3..4" for messages."""
    return ", ".join(f"{lo}..{hi}" for lo, _, hi in profiles)


def select_profile(context: Any, index: int, stream_handle: int, n_profiles: int) -> None:
    """Select profile `index` in a freshly created context (before set_input_shape: selecting a profile resets the
    input shapes): `set_optimization_profile_async(index, stream)`; a binding without it can only run profile 0 of a
    one-profile engine, which every context starts with. HsError (one line) when TensorRT refuses."""
    setter = getattr(context, "set_optimization_profile_async", None)
    if setter is None:
        if index == 0 and n_profiles == 1:
            return
        raise HsError(f"this TensorRT binding cannot select optimization profile {index} "
                      f"(no IExecutionContext.set_optimization_profile_async)")
    if not setter(index, stream_handle):
        raise HsError(f"TensorRT refused optimization profile {index} of {n_profiles}")
