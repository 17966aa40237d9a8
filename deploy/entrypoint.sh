#!/usr/bin/env bash
# Container entrypoint (deploy/Dockerfile, kubernetes/deployment.yaml): write the model repository for this pod's
# GPU, then run tritonserver as PID 1 (SIGTERM from Kubernetes = Triton's graceful drain).
# HS_EXPORT_DIR: an hs-export output with engines for this GPU (read-only volume). Without one, HS_CONFIG (default
# ffhq1024, embedded untrained weights) is served on the torch executor - a smoke test, not a deployment.
set -euo pipefail
REPO=${HS_REPO:-/tmp/model_repository}
ARGS=(--device cuda --instances "${HS_INSTANCES:-1}" --max-batch "${HS_MAX_BATCH:-8}" --iters "${HS_ITERS:-5}"
      --queue-delay-us "${HS_QUEUE_DELAY_US:-2000}")
if [[ -n "${HS_EXPORT_DIR:-}" ]]; then
  ARGS+=(--export-dir "$HS_EXPORT_DIR" --executor "${HS_EXECUTOR:-tensorrt}")
else
  ARGS+=(--config "${HS_CONFIG:-ffhq1024}" --executor torch)
fi
hs-serve repo "$REPO" "${ARGS[@]}"
# The CUDA / pinned memory pools sized from the repository, as `hs-serve start` passes them (docs/serving.md).
read -r -a POOLS <<< "$(python3 -c 'import sys; from hyperstyle_trt.runtime.serving.pools import repository_pools; print(" ".join(repository_pools(sys.argv[1]).flags()))' "$REPO")"
exec tritonserver --model-repository="$REPO" --http-port=8000 --grpc-port=8001 --metrics-port=8002 \
  --exit-timeout-secs="${HS_EXIT_TIMEOUT_S:-30}" "${POOLS[@]}" ${HS_TRITON_ARGS:-}
