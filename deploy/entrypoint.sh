#!/usr/bin/env bash
# Container entrypoint (deploy/Dockerfile, kubernetes/deployment.yaml): write the model repository for this pod's
# GPU, then run it under hs-serve start as PID 1 (supervised; SIGTERM from Kubernetes = Triton's graceful drain).
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
# hs-serve start as PID 1: it checks the repository, sizes the CUDA / pinned memory pools from it, runs tritonserver
# (explicit model control) and supervises it: a model whose python-backend stub died is reloaded, a server that exited
# is restarted (tritonserver 2.51 alone keeps answering /v2/health/ready with a dead stub, so Kubernetes would never
# notice); SIGTERM from Kubernetes is forwarded to Triton's graceful drain. HS_DRY_RUN=1 prints the command only.
exec hs-serve start "$REPO" --tritonserver "$(command -v tritonserver)" --host 0.0.0.0 --http-port 8000 \
  --grpc-port 8001 --metrics-port 8002 --exit-timeout "${HS_EXIT_TIMEOUT_S:-30}" ${HS_DRY_RUN:+--dry-run}
