"""Inference on trained runs: :class:`~lstmkit.inference.predictor.Predictor` (batches and per-stream state on torch,
onnxruntime or lstmkit's numpy step) and that step (:mod:`lstmkit.inference.kernel`)."""
