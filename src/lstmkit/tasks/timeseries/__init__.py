"""Time series: forecasting, anomaly detection, classification of whole series, their metrics and baselines."""
