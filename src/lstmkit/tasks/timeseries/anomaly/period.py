"""The period of a series read from the data themselves, not from a calendar: :func:`detect_period`.

An anomaly detector watches series that often have no calendar period (a heart rate, a sensor sampled at some rate
with integer steps) but do repeat: a breathing cycle, a machine's stroke. Their period is read from the sample
autocorrelation function (ACF) of the normal data, and the detector's window and forecast steps follow from it
(:func:`derived_window`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["DetectedPeriod", "derived_steps_ahead", "derived_window", "detect_period"]

MIN_ACF = 0.2  # a peak of the ACF below this is no period worth a window, however long the series
NOISE_SIGMAS = 4.0  # ... nor one within this many standard errors (1 / sqrt(n)) of white noise's ACF
MIN_DIP = 0.1  # the ACF must fall at least this much below the peak at some shorter lag: a peak, not a slow decay
NEAR_HIGHEST = 0.9  # the shortest peak this close to the highest is the period (its multiples peak as high)
FALLBACK_WINDOW = 32  # steps of context when no period is found (the window the heart-rate results used)
MAX_WINDOW = 256  # the longest window chosen for a period (training cost grows with it); a longer period wins


@dataclass(frozen=True)
class DetectedPeriod:
    """What :func:`detect_period` found: the period in steps (None: none), its ACF value, and why."""

    period: int | None
    acf: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"period": self.period, "acf": round(self.acf, 4), "reason": self.reason}


def autocorrelation(y: np.ndarray, max_lag: int) -> np.ndarray:
    """(max_lag + 1,) the sample ACF (biased: each lag's sum divided by n) of ``y`` after removing its least-squares
    line; missing values (NaN) count as the line's value and each lag's sum is scaled to the pairs a full series would
    give it (so values missing at regular intervals do not favour the lags that are multiples of the gap)."""
    y = np.asarray(y, dtype=float)
    t = np.arange(len(y), dtype=float)
    ok = np.isfinite(y)
    if ok.sum() >= 2:
        slope, intercept = np.polyfit(t[ok], y[ok], 1)
        y = y - (slope * t + intercept)
    y = np.where(ok, y, 0.0)
    n = len(y)
    size = 1 << int(np.ceil(np.log2(2 * n)))  # zero-padded FFT: the linear, not circular, autocovariance
    f = np.fft.rfft(y, size)
    cov = np.fft.irfft(f * np.conj(f), size)[: max_lag + 1]
    if not ok.all():  # a lag's sum has fewer pairs where values are missing: scale it to the n - k pairs it would have
        g = np.fft.rfft(ok.astype(float), size)
        pairs = np.rint(np.fft.irfft(g * np.conj(g), size)[: max_lag + 1])
        cov = np.where(pairs > 0, cov * (n - np.arange(max_lag + 1)) / np.maximum(pairs, 1), 0.0)
    return cov / cov[0] if cov[0] > 0 else np.zeros(max_lag + 1)


def detect_period(y: Any, max_period: int | None = None) -> DetectedPeriod:
    """The main period of a series from its autocorrelation function (ACF, of the series less its trend line).

    The candidates are the ACF's peaks (a lag whose value is the highest within a quarter of the lag either side:
    noise makes small bumps on a crest) among lags 2 .. n / 3 (``max_period`` at most: the longest period the caller
    can use) that stand clear of noise: at least ``MIN_ACF`` and ``NOISE_SIGMAS`` / sqrt(n) (white noise's ACF has
    standard error about 1 / sqrt(n)), and at least ``MIN_DIP`` above the lowest ACF at a shorter lag (a peak, not a
    slow decay). A period's multiples peak about as high (noise can lift one above it), so the shortest candidate
    within ``NEAR_HIGHEST`` of the highest is the period. ``period`` is None (with the reason) for a series under 12
    points, a constant one, or one without a candidate: white noise, a trend, most random walks.
    """
    y = np.asarray(y, dtype=float).ravel()
    n = int(np.isfinite(y).sum())
    if n < 12:
        return DetectedPeriod(None, 0.0, f"{n} values are too few to read a period from (at least 12)")
    max_lag = len(y) // 3 if max_period is None else max(min(len(y) // 3, max_period + 1), 3)
    acf = autocorrelation(y, max_lag)
    if not acf[0] > 0:
        return DetectedPeriod(None, 0.0, "the series is constant (after removing its trend): no period")
    floor = max(MIN_ACF, NOISE_SIGMAS / np.sqrt(n))
    dips = np.minimum.accumulate(acf)  # dips[k]: the lowest ACF at lags 0 .. k
    good = [
        k for k in range(2, max_lag)
        if acf[k] > acf[k - 1] and acf[k] >= acf[k - k // 4 : k + k // 4 + 1].max()
        and acf[k] >= floor and acf[k] - dips[k - 1] >= MIN_DIP
    ]  # fmt: skip
    if not good:
        return DetectedPeriod(
            None, 0.0, f"no autocorrelation peak at lags 2-{max_lag - 1} stands clear of noise (at least {floor:.2f}, "
            f"and {MIN_DIP} above the ACF at a shorter lag): no period",
        )  # fmt: skip
    highest = max(acf[k] for k in good)
    k = next(k for k in good if acf[k] >= NEAR_HIGHEST * highest)
    return DetectedPeriod(k, float(acf[k]), f"autocorrelation {acf[k]:.2f} at lag {k}")


def derived_window(period: int | None, seasonal_residual: bool = False) -> int:
    """The window of context for a period: one period (the LSTM sees a whole cycle; EncDec-AD's windows span about
    one), two where the forecaster's seasonal-naive residual repeats the window's last period (as forecasting's
    default window), at least ``FALLBACK_WINDOW`` and at most ``MAX_WINDOW`` steps unless one period is longer;
    ``FALLBACK_WINDOW`` without a period."""
    if period is None or period < 2:
        return FALLBACK_WINDOW
    span = 2 * period if seasonal_residual else period
    return max(FALLBACK_WINDOW, min(span, MAX_WINDOW), period)


def derived_steps_ahead(period: int | None) -> int:
    """The prediction method's forecast steps for a period: an eighth of it, 2 to 10 steps (an error vector local
    to the cycle, of a few forecasts of each step); 5 without a period (LSTM-AD's setting)."""
    if period is None or period < 2:
        return 5
    return int(np.clip(period // 8, 2, 10))
