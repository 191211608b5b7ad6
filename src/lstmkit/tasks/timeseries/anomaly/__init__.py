"""Anomaly detection on a time series: the prediction and reconstruction detectors, their streaming scorer
and metrics.

Modules, one job each: ``config`` (:class:`AnomalyConfig`), ``data`` (values and labels in time order), ``statistics``
(the error Gaussian and the threshold), ``encdec`` (the EncDec-AD network), ``detector`` (:class:`AnomalyDetector`),
``stream`` (:class:`AnomalyStream`), ``metrics`` (detection metrics, NAB), ``baselines`` (the rolling z-score) and
``run`` (``train_run`` / ``score_run`` for the command line).
"""
