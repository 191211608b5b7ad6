"""Export of trained lstmkit models: ONNX graphs checked against the source model (``lstmkit export onnx``)."""
