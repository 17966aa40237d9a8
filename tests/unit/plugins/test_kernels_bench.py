"""benchmarks/kernels.py on CPU: the layer list (17 tuned StyledConvs + 9 toRGBs of FFHQ-1024), FLOP counting, and a
clean one-line refusal without a CUDA GPU."""

from pathlib import Path

import pytest
import torch

from benchmarks import kernels as kb
from models.errors import HsError


def test_layer_list_is_the_tuned_convs_and_every_to_rgb():
    specs = kb.bench_layers()
    convs = [s for s in specs if s.kind != "rgb"]
    assert len(convs) == 17 and len(specs) == 26
    assert sum(s.kind == "up" for s in convs) == 8 and convs[0].name == "conv1"
    cases = kb.bench_cases((1, 8))
    assert len(cases) == 52 and {c.batch for c in cases} == {1, 8}
    assert all(c.delta_mode == (0 if c.layer.kind == "rgb" else 1) for c in cases)


def test_flops_per_case():
    by = {(c.layer.name, c.batch): c for c in kb.bench_cases((1, 8))}
    assert by["convs.15", 1].flops == 2 * 1024 * 1024 * 32 * 32 * 9
    assert by["convs.14", 8].flops == 8 * 2 * 512 * 512 * 32 * 64 * 9  # upsampling: at the input resolution
    assert by["to_rgbs.7", 1].flops == 2 * 1024 * 1024 * 3 * 32
    total = sum(c.flops for c in kb.bench_cases((1,)) if c.layer.kind != "rgb")
    assert 145e9 < total < 152e9  # ~74.3 GMAC per generator pass (SPEC.md §6, toRGBs and blur excluded)


def test_unknown_layer_is_a_user_error():
    with pytest.raises(HsError, match="unknown kernel-bench layers"):
        kb.bench_cases(layers=["convs.99"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_refuses_cleanly_without_cuda():
    import subprocess
    import sys

    with pytest.raises(HsError, match="needs a CUDA GPU"):
        kb.run_kernel_bench(batch_sizes=(1,), layers=["conv1"])
    with pytest.raises(HsError, match="needs a CUDA GPU") as e:
        kb.main(["--batch", "1", "--layers", "conv1"])
    assert "\n" not in str(e.value)
    r = subprocess.run([sys.executable, "-m", "benchmarks.kernels", "--batch", "1"], capture_output=True, text=True,
                       timeout=120, cwd=Path(__file__).resolve().parents[3])
    assert r.returncode == 2 and r.stderr.startswith("error: hs-bench kernels needs a CUDA GPU")
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
