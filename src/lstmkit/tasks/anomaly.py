"""Anomaly detection by prediction error: ``lstmkit.AnomalyDetector`` (LSTM-AD, Malhotra et al. 2015).

An LSTM forecaster (:class:`lstmkit.Forecaster`, direct, ``steps_ahead`` steps) is trained on normal data only. Each
time step t is then forecast ``steps_ahead`` times, from the ``steps_ahead`` origins before it; the forecast errors
form a vector e_t. A Gaussian (mean and covariance) is fitted to the error vectors of a first part of held-out normal
data, and the anomaly score is the squared Mahalanobis distance of e_t from it (the negative log-likelihood up to a
constant). The threshold is the ``1 - false_alarm_rate`` quantile of the scores on a second, separate part of the
held-out normal data: nothing about the data being scored is used to set it.

Example:
    >>> det = AnomalyDetector(steps_ahead=5, season=24).fit(normal_values)      # doctest: +SKIP
    >>> scores = det.score(values); flags = det.detect(values)                  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import runs
from .forecasting import Forecaster

__all__ = ["AnomalyDetector"]

KIND = "anomaly_detector"


def _as_table(data: Any, target: str, time: str) -> Any:
    """A 1-D array becomes a table with an hourly time index; a DataFrame is returned as it is."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    values = np.asarray(data, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"Pass a DataFrame or a 1-D array of values, got an array of shape {values.shape}.")
    return pd.DataFrame({time: pd.date_range("2000-01-01", periods=len(values), freq="h"), target: values})


@runs.register_kind(KIND)
class AnomalyDetector:
    """Prediction-error anomaly detector: ``fit`` on normal data, then ``score`` / ``detect`` any series.

    Args:
        steps_ahead: how many steps ahead the forecaster predicts; the length of each error vector (LSTM-AD's l).
        input_window: the forecaster's window (None: its default from ``season``).
        season: the main seasonal period in steps (the forecaster's window and residual use it).
        false_alarm_rate: the share of normal held-out steps allowed above the threshold.
        validation_fraction: the tail of the normal data held out (half fits the Gaussian, half sets the threshold).
        hidden_size, epochs, seed: the forecaster's.
        target, time: column names when a DataFrame is passed (a 1-D array is named for you).
    """

    def __init__(
        self, steps_ahead: int = 5, input_window: int | None = None, season: int = 1, false_alarm_rate: float = 0.01,
        validation_fraction: float = 0.3, hidden_size: int = 32, epochs: int = 100, seed: int = 0,
        target: str = "value", time: str = "time",
    ) -> None:  # fmt: skip
        if not 0 < false_alarm_rate < 1:
            raise ValueError(f"false_alarm_rate must be in (0, 1), got {false_alarm_rate}.")
        if not 0 < validation_fraction < 0.9:
            raise ValueError(f"validation_fraction must be in (0, 0.9), got {validation_fraction}.")
        self.params = {
            "steps_ahead": steps_ahead, "input_window": input_window, "season": season,
            "false_alarm_rate": false_alarm_rate, "validation_fraction": validation_fraction,
            "hidden_size": hidden_size, "epochs": epochs, "seed": seed, "target": target, "time": time,
        }  # fmt: skip
        self.forecaster: Forecaster | None = None
        self.mean: np.ndarray | None = None  # (l,) mean error vector on normal data
        self.precision: np.ndarray | None = None  # (l, l) inverse covariance of the error vectors
        self.threshold: float | None = None

    def _errors(self, table: Any) -> np.ndarray:
        """(T, l) error vectors: row t holds y_t minus its forecasts from the l origins before it (NaN rows where
        a forecast is missing)."""
        assert self.forecaster is not None
        p = self.params
        medians = next(iter(self.forecaster.rolling_medians(table).values()))  # (T, l)
        y = table[p["target"]].to_numpy(dtype=float)
        T, l = medians.shape
        errors = np.full((T, l), np.nan)
        for k in range(l):  # the forecast of y_t made k steps earlier sits at row t - k, column k
            errors[k:, k] = y[k:] - medians[: T - k, k]
        return errors

    def _mahalanobis(self, errors: np.ndarray) -> np.ndarray:
        assert self.mean is not None and self.precision is not None
        d = errors - self.mean
        return np.einsum("ti,ij,tj->t", d, self.precision, d)  # NaN rows stay NaN

    def fit(self, normal: Any) -> AnomalyDetector:
        """Train on a series known to be normal (a 1-D array or a table with the ``time`` and ``target`` columns)."""
        p = self.params
        table = _as_table(normal, p["target"], p["time"])
        n = len(table)
        n_val = int(n * p["validation_fraction"])
        if n_val < 4 * p["steps_ahead"]:
            raise ValueError(
                f"{n} normal points leave {n_val} for validation; at least {4 * p['steps_ahead']} are needed to fit "
                "the error distribution and the threshold. Give more normal data or a larger validation_fraction."
            )
        self.forecaster = Forecaster(
            target=p["target"], time=p["time"], horizon=p["steps_ahead"], season=p["season"],
            input_window=p["input_window"], hidden_size=p["hidden_size"], epochs=p["epochs"], seed=p["seed"],
            calibrate_intervals=False,
        ).fit(table.iloc[: n - n_val])  # fmt: skip
        errors = self._errors(table)[n - n_val :]
        errors = errors[~np.isnan(errors).any(axis=1)]
        half = len(errors) // 2
        fit_part, threshold_part = errors[:half], errors[half:]
        self.mean = fit_part.mean(axis=0)
        cov = np.atleast_2d(np.cov(fit_part, rowvar=False))
        cov += np.eye(cov.shape[0]) * 1e-6 * max(float(np.trace(cov)) / cov.shape[0], 1e-12)  # keep it invertible
        self.precision = np.linalg.inv(cov)
        self.threshold = float(np.quantile(self._mahalanobis(threshold_part), 1 - p["false_alarm_rate"]))
        return self

    def score(self, data: Any) -> np.ndarray:
        """(T,) anomaly scores (squared Mahalanobis distance of the error vector); NaN for the first steps, which
        have no full forecast history."""
        if self.forecaster is None:
            raise RuntimeError("This AnomalyDetector is not fitted yet: call fit(normal_data) first.")
        return self._mahalanobis(self._errors(_as_table(data, self.params["target"], self.params["time"])))

    def detect(self, data: Any) -> np.ndarray:
        """(T,) booleans: score above the threshold set on normal data."""
        scores = self.score(data)
        return np.nan_to_num(scores, nan=-np.inf) > self.threshold

    def save(self, run_dir: str | os.PathLike[str]) -> Path:
        """The forecaster in ``run_dir/forecaster``; the error distribution and threshold beside it."""
        if self.forecaster is None:
            raise RuntimeError("This AnomalyDetector is not fitted yet: call fit(normal_data) first.")
        run_dir = Path(run_dir)
        self.forecaster.save(run_dir / "forecaster")
        extra = {"mean": torch.tensor(self.mean), "precision": torch.tensor(self.precision)}
        return runs.save_run(run_dir, KIND, {**self.params, "threshold": self.threshold}, torch.nn.Module(), extra)

    @classmethod
    def load(cls, run_dir: str | os.PathLike[str]) -> AnomalyDetector:
        config = dict(runs.read_run_config(run_dir)["config"])
        threshold = config.pop("threshold")
        det = cls(**config)
        det.forecaster = Forecaster.load(Path(run_dir) / "forecaster")
        extra = runs.read_extra_tensors(run_dir)
        det.mean, det.precision, det.threshold = extra["mean"].numpy(), extra["precision"].numpy(), threshold
        return det
