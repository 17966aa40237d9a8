"""How far `hs-bench`'s timings can be trusted: the spread of the timed samples, the percentiles their count supports,
the "noisy" verdict and the machine's load.

Rules (recorded in bench.json as `trust`, so a reader of the JSON sees the thresholds its verdicts used):
- spread: n, min / median / max, mean and the coefficient of variation cv = sample standard deviation / mean
  (None with fewer than 2 samples), max / min.
- percentiles: p50 is the median (any n); p95 is reported with >= 20 samples, p99 with >= 100; below that the key is
  absent and `omitted` says why (a p95 "from 2 samples" is the maximum, not a tail).
- noisy: with >= 2 samples, cv > 0.2 or max / min > 2; or, for a feed-forward method, its throughput's ms per batch
  and its median per-batch latency differ by more than 2x (the two protocols time the same call).
- machine load: os.getloadavg() (1, 5, 15 minute averages) at the start and at the end of the run, and the CPU count;
  "busy" when the 1-minute average at the start exceeds half the CPU count (the end's figure includes hs-bench's
  own work, so it is recorded, not judged).
"""

from __future__ import annotations

import math
import os
import statistics

NOISY_CV = 0.2
NOISY_MAX_OVER_MIN = 2.0
NOISY_THROUGHPUT_VS_MEDIAN = 2.0
PERCENTILE_MIN_SAMPLES = {"p95": 20, "p99": 100}
BUSY_LOAD_PER_CPU = 0.5


def rules() -> dict:
    """The thresholds every verdict of this module uses, JSON-able (bench.json's `trust`)."""
    return {"noisy": {"cv_above": NOISY_CV, "max_over_min_above": NOISY_MAX_OVER_MIN, "min_samples": 2,
                      "throughput_vs_median_latency_above": NOISY_THROUGHPUT_VS_MEDIAN,
                      "rule": f"noisy when (n >= 2 and (cv > {NOISY_CV} or max/min > {NOISY_MAX_OVER_MIN:g})) or "
                              f"throughput ms/batch vs median latency differ by > {NOISY_THROUGHPUT_VS_MEDIAN:g}x"},
            "percentile_min_samples": dict(PERCENTILE_MIN_SAMPLES),
            "busy": {"load1_per_cpu_above": BUSY_LOAD_PER_CPU,
                     "rule": f"busy when the 1-minute load average at the start > {BUSY_LOAD_PER_CPU:g} x CPU count"}}


def timing_stats(ms: list[float]) -> dict:
    """Figures of `ms` (one timed sample each, >= 1): n, mean, min, median (= p50), max, cv and max_over_min (None
    below 2 samples), and p95 / p99 only when n reaches PERCENTILE_MIN_SAMPLES (else `omitted` names them and the
    count they need)."""
    xs = sorted(float(v) for v in ms)
    n = len(xs)
    if n == 0:
        raise ValueError("timing_stats needs at least one sample")
    mean = statistics.fmean(xs)
    med = statistics.median(xs)
    cv = statistics.stdev(xs) / mean if n >= 2 and mean > 0 else None
    out = {"n": n, "mean": mean, "min": xs[0], "median": med, "max": xs[-1], "cv": cv,
           "max_over_min": xs[-1] / xs[0] if n >= 2 and xs[0] > 0 else None, "p50": med}
    omitted = []
    for name, need in PERCENTILE_MIN_SAMPLES.items():
        if n >= need:
            out[name] = _percentile(xs, float(name[1:]))
        else:
            omitted.append(f"{name} needs >= {need} samples")
    if omitted:
        out["omitted"] = f"{'; '.join(omitted)}; {n} taken"
    return out


def _percentile(sorted_xs: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    pos = (len(sorted_xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


def verdict(stats: dict, throughput_ms: float | None = None) -> dict:
    """{"noisy": bool, "why": [reasons]} for `timing_stats` output; throughput_ms: the same call's ms per batch from
    the throughput protocol (feed-forward methods), compared with the median."""
    why = []
    if stats["n"] >= 2:
        if stats["cv"] is not None and stats["cv"] > NOISY_CV:
            why.append(f"cv {stats['cv']:.2f}")
        if stats["max_over_min"] is not None and stats["max_over_min"] > NOISY_MAX_OVER_MIN:
            why.append(f"max/min {stats['max_over_min']:.1f}")
    if throughput_ms and stats["median"] > 0:
        r = max(throughput_ms, stats["median"]) / min(throughput_ms, stats["median"])
        if r > NOISY_THROUGHPUT_VS_MEDIAN:
            why.append(f"throughput vs latency {r:.1f}x")
    return {"noisy": bool(why), "why": why}


def machine_load() -> dict:
    """{"load": [1, 5, 15 minute load averages] or None where the OS has none, "cpu_count": int or None}."""
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):  # Windows, or a platform that cannot tell
        load = None
    return {"load": load, "cpu_count": os.cpu_count()}


def busy(start: dict) -> str | None:
    """A one-line warning when the machine was busy at the start (machine_load's output), else None."""
    load, cpus = start.get("load"), start.get("cpu_count")
    if not load or not cpus or load[0] <= BUSY_LOAD_PER_CPU * cpus:
        return None
    return (f"the machine was busy at the start (load {load[0]:.2f} on {cpus} CPUs): timings may be slow and "
            "noisy; rerun on a quiet machine")
