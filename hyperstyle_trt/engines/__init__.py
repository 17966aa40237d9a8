"""ONNX -> TensorRT engines with whichever flavor is importable (flavor), strongly typed builds with a batch profile
(builder.get_or_build), the content-hash engine cache (cache) and JSON sidecars (sidecar). Nothing imports TensorRT
at package load."""
