"""Anomaly detection on a time series: the prediction and reconstruction detectors, their streaming scorer
and metrics."""
