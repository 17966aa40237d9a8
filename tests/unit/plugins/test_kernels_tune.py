"""`hs-bench tune` (benchmarks/tune.py) without a GPU: its candidate lists cover the production choices (so a rerun
can confirm or replace them), its callables compute the right thing (Triton interpreter, tiny layers, fp32), and the
CLI stops with a one-line error where there is no CUDA GPU."""

import pytest

from hyperstyle_trt.benchmarks import tune
from hyperstyle_trt.benchmarks.kernels import bench_layers
from hyperstyle_trt.plugins.mod_conv import staged
from hyperstyle_trt.plugins.mod_conv.strategy import tuned
from hyperstyle_trt.plugins.to_rgb.kernel import select_config as rgb_config


def test_candidates_include_every_production_choice():
    for s in bench_layers():
        for b in (1, 8):
            cands = tune.candidates(s, b)
            if s.kind == "rgb":
                assert ("rgb", rgb_config(s.res, s.res, s.in_ch), 1) in cands, (s.name, b)
                continue
            up = int(s.kind == "up")
            h = s.res // 2 if up else s.res
            tiles, split = tuned(b, h, h, s.in_ch, s.out_ch, up)
            assert ("staged", staged.TileConfig(*tiles), split) in cands, (s.name, b)
            assert ("weight", staged.weight_tiles(s.in_ch, up), 1) in cands, (s.name, b)


def test_candidate_callables_match_the_reference(triton_interp):
    cases = [("convs.1", 2, "staged", (16, 16, 8, 4, 1), 2),  # split-K + finalize
             ("convs.2", 1, "staged", (16, 16, 8, 4, 1), 2),  # upsampling, split-K
             ("convs.1", 2, "fused", (16, 16, 16, 4, 1), 1),
             ("to_rgbs.0", 2, "rgb", (16, 16, 16, 4, 1), 1)]
    for (err, ref_max), case in zip(triton_interp.call("tests.unit.plugins._tune_probe:candidate_errors", "tiny",
                                                       cases), cases):
        assert ref_max > 0.1 and err <= 1e-5 * ref_max, (case, err, ref_max)


def test_cli_needs_a_gpu(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: the CLI would run the sweep")
    assert tune.main([]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err
