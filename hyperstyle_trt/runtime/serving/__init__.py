"""Serving the Inverter behind NVIDIA Triton Inference Server (python backend).

- `repository`: `write_repository(out, RepoSpec(ModelSource(...), ...))` writes a model repository with one model
  `hyperstyle` whose `execute` runs the whole T-step loop through `runtime.Inverter` (model.py is the backend
  adapter it copies). `ngc`: the NGC layout (tensorrt_plan sub-models + bls_model.py). `pbtxt`: the one
  config.pbtxt writer and schema check both layouts use; `batching`: the request gather / response scatter both
  python-backend models use inside the stub.
- `server`: find a `tritonserver` binary, start it on 127.0.0.1 with free ports, wait for readiness, stop it;
  `Supervisor` (run by `serve_forever`): reload a model whose stub died, restart a server that exited.
  `repository.check_repository`: what `hs-serve start` checks before a server runs.
- `client`: `InversionClient` sends uint8 images over HTTP and returns inversions and W+ codes.
`hs-serve` (cli/serve.py) is the command line on top. Nothing here imports torch at import time.
"""

from hyperstyle_trt.runtime.serving.client import InversionClient, ServedInversion, ServerUnreachable, model_input
from hyperstyle_trt.runtime.serving.pbtxt import ModelShapes
from hyperstyle_trt.runtime.serving.repository import MODEL_NAME, RepoSpec, check_repository, write_repository
from hyperstyle_trt.runtime.serving.server import (Supervisor, TritonInstall, TritonServer, find_tritonserver,
                                                   free_port, serve_forever)

__all__ = ["InversionClient", "ServedInversion", "ServerUnreachable", "model_input", "MODEL_NAME", "ModelShapes",
           "RepoSpec", "write_repository", "check_repository", "TritonInstall", "TritonServer", "Supervisor",
           "find_tritonserver", "free_port", "serve_forever"]
