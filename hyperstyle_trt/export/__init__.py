"""HyperStyle -> ONNX: graph wrappers with fixed named I/O (graphs), dynamo export and atomic writing (onnx_io),
onnx-graphsurgeon passes (passes), the fp16 pass (fp16), CPU verification (verify), the pipeline behind
`hs-export` (pipeline.run_export) and the CLI (cli). Nothing heavy is imported here."""
