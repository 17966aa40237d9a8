"""What every layer uses and no layer owns: the user-error type (`errors`), frozen model configs (`config`), the
graph I/O contract (`contract`), TensorRT flavor discovery (`flavor`), the one atomic-write helper (`atomic`) and
JSON sidecars (`sidecar`). Pure Python plus numpy: importable without torch model code, a GPU or TensorRT."""
