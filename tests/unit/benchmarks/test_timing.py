"""benchmarks.timing on the CPU: the perf_counter fallback of the one timing harness (CUDA events need a GPU:
tests/gpu and the benchmarks' GPU runs)."""

import time

from hyperstyle_trt.benchmarks.timing import Timer, kernel_us


def test_cpu_timer_counts_calls_and_time():
    calls = []

    def fn():
        calls.append(1)
        time.sleep(0.002)

    t = Timer("cpu")
    assert not t.cuda and Timer("cuda:0").cuda and Timer("CUDA").cuda
    ms = t.throughput_ms(fn, 3)
    assert len(calls) == 3 and ms >= 2.0
    s = t.samples_ms(fn, 4)
    assert len(calls) == 7 and len(s) == 4 and min(s) >= 2.0
    assert t.latency_ms(fn, 3) >= 2.0 and len(calls) == 10


def test_kernel_us_on_cpu_is_the_median_of_single_calls():
    calls = []
    us, how = kernel_us(lambda: calls.append(time.sleep(0.001)), warmup=2, iters=3, device="cpu")
    assert how == "cpu" and us >= 1000.0 and len(calls) == 2 + 3
