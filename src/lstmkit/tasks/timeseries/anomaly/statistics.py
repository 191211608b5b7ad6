"""The statistics on error vectors: the Gaussian, the Mahalanobis score and the two ways to set the threshold."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["best_f_beta_threshold", "fit_gaussian", "mahalanobis", "tail_quantile"]


def fit_gaussian(errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and precision (d, d) of error vectors (N, d); a tiny ridge keeps the covariance invertible."""
    mean = errors.mean(axis=0)
    cov = np.atleast_2d(np.cov(errors, rowvar=False))
    cov += np.eye(cov.shape[0]) * 1e-6 * max(float(np.trace(cov)) / cov.shape[0], 1e-12)
    return mean, np.linalg.inv(cov)


def mahalanobis(errors: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """(T,) squared Mahalanobis distances of the rows of errors (T, d); NaN rows stay NaN."""
    d = errors - mean
    return np.einsum("ti,ij,tj->t", d, precision, d)


def tail_quantile(scores: np.ndarray, rate: float) -> float:
    """The ``1 - rate`` quantile of normal scores: the threshold that ``rate`` of normal steps exceed.

    Empirical when at least 10 of the scores lie above it, or when ``rate >= 0.1`` (the tail model below is fitted
    over the 90 % quantile, so it cannot give a quantile at or below that one). Otherwise the sample cannot show it
    (the 0.1 % quantile of 180 scores is their maximum, which about 0.5 % of normal steps exceed), so the tail is
    extrapolated by peaks over threshold, as SPOT does (Siffer et al., KDD 2017): a generalised Pareto distribution
    fitted to the excesses over the empirical 90 % quantile t (by the method of moments, Hosking & Wallis 1987:
    xi = (1 - m^2 / v) / 2, sigma = m (1 + m^2 / v) / 2 for excess mean m and variance v), then
    t + sigma / xi * ((rate * n / N_t)^-xi - 1) (t - sigma * log(rate * n / N_t) as xi -> 0), with n scores and N_t
    excesses.
    """
    s = np.sort(np.asarray(scores, dtype=float)[np.isfinite(scores)])
    n = len(s)
    if n == 0:
        raise ValueError("No finite scores on normal data to set the threshold on: give more normal data.")
    if rate * n >= 10 or rate >= 0.1:
        return float(np.quantile(s, 1 - rate))
    t = float(np.quantile(s, 0.9))
    excess = s[s > t] - t
    if len(excess) < 5 or excess.var() == 0:  # too few to fit a tail: the largest score is the best we know
        return float(s[-1])
    m, v = float(excess.mean()), float(excess.var(ddof=1))
    xi, sigma = 0.5 * (1 - m * m / v), 0.5 * m * (1 + m * m / v)
    r = rate * n / len(excess)  # the tail probability asked for, relative to that of exceeding t
    if abs(xi) < 1e-6:
        return t - sigma * math.log(r)
    return t + sigma / xi * (r ** (-xi) - 1)


def best_f_beta_threshold(scores: np.ndarray, labels: np.ndarray, beta: float) -> float:
    """The threshold u maximising the point-wise F-beta of ``scores > u`` (ties: the highest such u)."""
    ok = np.isfinite(scores)
    s, y = scores[ok], labels[ok]
    if not y.any():
        raise ValueError("validation_labels mark no anomaly among the scored steps: nothing to choose a threshold on.")
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    tp, fp = np.cumsum(y), np.cumsum(~y)  # flagging the top k+1 scores
    last_of_tie = np.r_[s[1:] != s[:-1], True]  # only cut between distinct scores
    b2 = beta * beta
    f = (1 + b2) * tp / ((1 + b2) * tp + b2 * (y.sum() - tp) + fp)
    f = np.where(last_of_tie, f, -1.0)
    k = int(np.argmax(f))
    return float(s[k + 1]) if k + 1 < len(s) else float(np.nextafter(s[k], -np.inf))
