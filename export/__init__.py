"""Turn a model's per-frame network into deployable artifacts (ONNX, TensorRT engines)."""
