"""HyperStyle -> ONNX: graph wrappers with fixed named I/O (graphs), dynamo export and atomic writing (onnx_io),
onnx-graphsurgeon passes (passes), the fp16 pass (fp16), CPU verification (verify) and the pipeline behind
`hs-export` (pipeline.run_onnx_export; engines.pipeline.run_export adds the engines). Nothing heavy is imported
here."""
