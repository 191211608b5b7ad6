"""Anomaly detection with an LSTM trained on normal data: ``lstmkit.AnomalyDetector``.

Two methods, one class (``method=``):

- ``"prediction"`` (LSTM-AD, Malhotra et al. 2015): an LSTM forecaster (:class:`lstmkit.Forecaster`, direct,
  ``steps_ahead`` steps) is trained on normal data. Each step t is forecast ``steps_ahead`` (l) times, from the l
  origins before it; the errors form the vector e_t (length l). Available as soon as x_t arrives.
- ``"reconstruction"`` (EncDec-AD, Malhotra et al. 2016, arXiv:1607.00148): an LSTM encoder reads a window of
  ``input_window`` (L) scaled values; its final state (h, c) starts an LSTM decoder that reconstructs the window in
  reverse order, x'_L first (from the encoder's state through a linear layer), then x'_{L-1}, ... Training feeds the
  decoder the true previous value (teacher forcing), inference its own previous output, as in the paper; the loss is
  the squared error on normal windows. A step t lies in up to L windows (every full window containing it); its error
  e_t is the **smallest absolute reconstruction error of x_t over those windows** (one value: the series is
  univariate, so the paper's per-point error vector has one entry). A step is anomalous only if no window
  reconstructs it well: one odd value spoils the reconstruction of every window holding it, so the mean over windows
  spreads its error over the L - 1 steps on each side (on a sine with a 6-step level shift, L = 16: the mean flagged
  15 normal steps next to the shift, the minimum none). e_t is final once the window starting at t has been read,
  L - 1 steps after x_t.

For both, a Gaussian (mean, covariance) is fitted to the error vectors of the first half of a held-out tail of the
normal data (``validation_fraction``), and the score is the squared Mahalanobis distance of e_t from it. The threshold
comes either from the **false-alarm rate** (``threshold_from="false_alarm_rate"``, default): the ``1 -
false_alarm_rate`` quantile of the scores on the second, separate half of the held-out tail (extrapolated by a
generalised Pareto tail when too few scores lie above it: :func:`tail_quantile`); or from **labelled
validation data** (``threshold_from="validation"``): the threshold with the best point-wise F-beta (``beta``, 0.1 as in
both papers: precision first) on a series passed to ``fit(..., validation=, validation_labels=)``, the Gaussian then
fitted on the whole held-out tail. Scaling (per series, mean and standard deviation) is fitted on the training part
of the normal data only, and nothing about the data being scored ever changes the detector.

Data: a 1-D array, or a table with the ``target`` column (rows put in ``time`` order when that column exists: numbers,
or dates, text read from a CSV converted first); one row is one step. ``score(data, context=earlier)`` reads the steps
before ``data`` as context without scoring them, so the first steps of a test series get full windows. Missing values
(NaN) are allowed: the reconstruction method leaves every window holding one out of training and scoring, the
prediction method masks them as the forecaster does (and makes no forecast from a window missing everywhere); a step
without any error gets the score NaN, never a flag.

Streaming: :meth:`AnomalyDetector.stream` returns an :class:`AnomalyStream` whose ``update(value)`` carries state
between calls (see its docstring for what is carried) and gives the scores of :meth:`AnomalyDetector.score`.

Baseline: :class:`RollingZScore`, ``|x_t - mean| / std`` of the previous ``window`` points, thresholded the same way
(a false-alarm rate on normal data).

Example:
    >>> det = AnomalyDetector(method="reconstruction", input_window=32).fit(normal_values)   # doctest: +SKIP
    >>> scores = det.score(values); flags = det.predict(values)                               # doctest: +SKIP
    >>> det.evaluate(values, labels)["event"]["recall"]                                        # doctest: +SKIP
"""

from __future__ import annotations

import copy
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from .... import runs
from ...._atomic import atomic_write_bytes
from ....config import StrictConfig, TrainConfig
from ....data import SeededBatches
from ....data.tables import (
    check_finite,
    check_numeric,
    check_rows,
    check_time_zones,
    check_unique_times,
    first_non_time,
    one_source,
    read_csv,
    row_of,
    shown,
    shown_list,
)
from ....nn import LSTM
from ....train import GateStatistics, StepOutput, Trainer, seed_everything
from .metrics import event_scores, nab_score, nab_windows, point_scores

__all__ = [
    "AnomalyConfig",
    "AnomalyDetector",
    "AnomalyStream",
    "NotFittedError",
    "RollingZScore",
    "detection_metrics",
    "evaluate_table",
    "load_table",
    "score_run",
    "tail_quantile",
    "train_run",
]

KIND = "anomaly_detector"
_CHUNK = 4096  # windows per forward pass when scoring
# Scores are computed by float64 copies of the networks. In float32 a forecast (or reconstruction) depends on how many
# windows share its batch: the matrix kernels sum in a blocking order chosen per batch size and per CPU (oneDNN and
# MKL pick differently on AMD and Intel), which moves an output by ~1e-6, and the Mahalanobis distance multiplies that
# by the inverse error variance (1e3-1e4 for a well-predicted series). In float64 the same reordering moves a score by
# ~1e-12, so the stream (one window per step) and the batch (thousands per pass) agree to rtol 1e-9 on any CPU.
SCORE_DTYPE = torch.float64


class NotFittedError(RuntimeError):
    """A detector (or the baseline) was asked to score before ``fit``."""


@dataclass(frozen=True)
class AnomalyConfig(StrictConfig):
    """How an :class:`AnomalyDetector` is built, trained and thresholded."""

    method: Literal["prediction", "reconstruction"] = "prediction"
    target: str = "value"  # the column to watch when a table is passed (a 1-D array is named for you)
    time: str = "time"  # rows are put in this column's order when it exists
    # prediction: the forecaster's window (None: its default from season); reconstruction: L, the window length
    # (None: max(2 * season, 32), long enough to hold a short pattern, short enough to train on little data).
    input_window: int | None = None
    steps_ahead: int = 5  # prediction only: forecast steps, the length of each error vector (LSTM-AD's l)
    season: int = 1  # the main seasonal period in steps (the forecaster's window and residual use it)
    false_alarm_rate: float = 0.01  # share of held-out normal steps allowed above the threshold
    threshold_from: Literal["false_alarm_rate", "validation"] = "false_alarm_rate"
    beta: float = 0.1  # threshold_from="validation": the F-beta maximised; < 1 weighs precision more (both papers: 0.1)
    validation_fraction: float = 0.3  # the tail of the normal data held out for the Gaussian and the threshold
    hidden_size: int = 32
    epochs: int = 100
    batch_size: int = 32  # reconstruction only (the forecaster keeps its own)
    lr: float = 3e-3  # reconstruction only
    seed: int = 0
    progress: bool = False

    def validate(self) -> None:
        if not 0 < self.false_alarm_rate < 1:
            raise ValueError(f"false_alarm_rate must be in (0, 1), got {self.false_alarm_rate}.")
        if not 0 < self.validation_fraction < 0.9:
            raise ValueError(f"validation_fraction must be in (0, 0.9), got {self.validation_fraction}.")
        if self.input_window is not None and self.input_window < 2:
            raise ValueError(f"input_window must be at least 2 steps, got {self.input_window}.")
        if self.steps_ahead < 1 or self.season < 1 or self.hidden_size < 1 or self.epochs < 1:
            raise ValueError(
                "steps_ahead, season, hidden_size and epochs must be at least 1, got "
                f"{self.steps_ahead}, {self.season}, {self.hidden_size} and {self.epochs}."
            )
        if not self.beta > 0:
            raise ValueError(f"beta must be positive, got {self.beta}.")

    @property
    def window(self) -> int:
        """The reconstruction window L."""
        return self.input_window or max(2 * self.season, 32)


# ---- data --------------------------------------------------------------------------------------------------------


def _in_time_order(table: Any, time: str, what: str = "data") -> Any:
    """The table's rows in ``time`` order, with the time column as numbers when every value is one, else as
    datetimes; the table itself when it has no such column. The rows keep their index labels (so that a message can
    name a row of the file).

    ``pd.read_csv`` leaves dates (and numbers, in a column holding any text) as strings, which sort as text:
    ``10/1/2020`` before ``9/1/2020``, ``10`` before ``8``. Converting first puts the rows in time order.

    Raises:
        ValueError: with one sentence for missing times, times that are neither numbers nor dates, or a time that
            appears twice (as forecasting refuses it: :func:`lstmkit.data.tables.check_unique_times`).
    """
    import pandas as pd

    if time not in table.columns:
        return table
    col = table[time]
    if col.isna().any():
        first = table.index[int(np.flatnonzero(col.isna().to_numpy())[0])]
        raise ValueError(
            f"The time column {shown(time)} of the {what} is missing at {int(col.isna().sum())} rows (the first is "
            f"{row_of(table, first)}); fill in or drop those rows."
        )
    if pd.api.types.is_bool_dtype(col) or not (
        pd.api.types.is_numeric_dtype(col) or pd.api.types.is_datetime64_any_dtype(col)
    ):
        as_numbers = pd.to_numeric(col, errors="coerce")
        if as_numbers.notna().all() and not pd.api.types.is_bool_dtype(col):
            col = as_numbers
        else:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # "could not infer format": parsed one by one
                    col = pd.to_datetime(col)
            except (ValueError, TypeError, OverflowError):
                name = f"The time column {shown(time)} of the {what}"
                check_time_zones(table, time, name=name)
                bad = col[as_numbers.isna()]
                at = first_non_time(bad)
                example = bad.iloc[at if at is not None else 0] if len(bad) else col.iloc[0]
                raise ValueError(
                    f"{name} holds values that are neither numbers nor dates "
                    f"(e.g. {shown(example)}), so the rows cannot be put in time order; convert them, or name the "
                    "time column with --time."
                ) from None
    written, table = table[time], table.copy()
    table[time] = col
    check_unique_times(table, time, whose="The table" if what == "data" else f"The {what}", written=written)
    return table.sort_values(time, kind="stable")


def _values(data: Any, target: str, time: str, what: str = "data") -> np.ndarray:
    """(T,) float values of a 1-D array or of a table's ``target`` column (in ``time`` order when it exists).

    Raises:
        ValueError: with one sentence for a wrong shape, an unknown or non-numeric column, or all values missing.
    """
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        check_rows(data)
        if target not in data.columns:
            raise ValueError(
                f"Unknown column {shown(target)} in the {what}; the table has {shown_list(data.columns)}. Name the "
                "column to watch with target= (--target)."
            )
        check_numeric(data, target, advice="give a number or an empty cell (a missing value), or watch another column.")
        check_finite(data, target, time=time)
        values = _in_time_order(data, time, what)[target].to_numpy(dtype=float)
    elif isinstance(data, pd.Series):
        values = data.to_numpy(dtype=float)
    else:
        try:
            values = np.asarray(data, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"The {what} must be numbers: pass a 1-D array of floats or a table.") from None
        if values.ndim != 1:
            raise ValueError(f"Pass a DataFrame or a 1-D array of values, got an array of shape {values.shape}.")
    if values.size == 0 or np.isnan(values).all():
        raise ValueError(f"The {what} has no values: {shown(target)} is empty or missing (NaN) everywhere.")
    if np.isinf(values).any():
        raise ValueError(f"The {what} holds infinite values at steps {np.flatnonzero(np.isinf(values))[:3].tolist()}.")
    return values


def _as_table(values: np.ndarray, target: str, time: str) -> Any:
    """The values as a table on an hourly grid: the forecaster's input (it reads no calendar here)."""
    import pandas as pd

    return pd.DataFrame({time: pd.date_range("2000-01-01", periods=len(values), freq="h"), target: values})


def _labels(labels: Any, n: int, what: str = "labels") -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1 or y.size != n:
        raise ValueError(f"The {what} must be one 0/1 value per step: got shape {y.shape} for {n} steps.")
    if y.dtype.kind not in "biuf" or not np.isin(y, (0, 1)).all():
        import pandas as pd

        # the values that are not 0 or 1 even as numbers, in their order (a column with one text cell is all text,
        # and text and numbers do not sort together)
        bad = y[~pd.to_numeric(pd.Series(y), errors="coerce").isin((0, 1)).to_numpy()] if y.size else y
        examples = list(dict.fromkeys(shown(v) for v in (bad if bad.size else y).tolist()))
        raise ValueError(f"The {what} must be 0 (normal) or 1 (anomaly), got values like [{', '.join(examples[:5])}].")
    return y.astype(bool)


def _labels_of(data: Any, labels: Any, n: int, time: str, what: str = "labels") -> np.ndarray:
    """(n,) booleans from 0/1 labels given per step in time order, or from the name of a 0/1 column of the table
    ``data`` (read in the table's ``time`` order, as its values are)."""
    import pandas as pd

    if isinstance(labels, str):
        if not isinstance(data, pd.DataFrame):
            raise ValueError(
                f"The {what} name a column ({labels!r}) but the data are not a table; pass one 0/1 value per step."
            )
        if labels not in data.columns:
            raise ValueError(
                f"Unknown label column {shown(labels)}; the table has {shown_list(data.columns)}. Name the 0/1 column "
                "of labels."
            )
        labels = _in_time_order(data, time, what)[labels].to_numpy()
    return _labels(labels, n, what)


# ---- the Gaussian on error vectors -------------------------------------------------------------------------------


def _fit_gaussian(errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and precision (d, d) of error vectors (N, d); a tiny ridge keeps the covariance invertible."""
    mean = errors.mean(axis=0)
    cov = np.atleast_2d(np.cov(errors, rowvar=False))
    cov += np.eye(cov.shape[0]) * 1e-6 * max(float(np.trace(cov)) / cov.shape[0], 1e-12)
    return mean, np.linalg.inv(cov)


def _mahalanobis(errors: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
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


def _best_f_beta_threshold(scores: np.ndarray, labels: np.ndarray, beta: float) -> float:
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


# ---- EncDec-AD -----------------------------------------------------------------------------------------------------


class EncDecNet(nn.Module):
    """LSTM encoder-decoder that reconstructs a window in reverse order (EncDec-AD).

    Shapes: ``B`` windows, ``L`` window length, ``H`` hidden size; one input channel (the scaled value).
    """

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.encoder = LSTM(1, hidden_size)
        self.decoder = LSTM(1, hidden_size)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Teacher-forced reconstruction (training): x (B, L, 1) -> (B, L), in the window's own order."""
        _, state = self.encoder(x)  # h, c: (1, B, H), the encoder's final state
        first = self.head(state[0][-1])  # (B, 1): x'_L from the encoder's state
        reverse = x.flip(1)  # (B, L, 1): x_L .. x_1
        out, _ = self.decoder(reverse[:, :-1], state)  # (B, L - 1, H): after reading the true x_L .. x_2
        rest = self.head(out)[..., 0]  # (B, L - 1): x'_{L-1} .. x'_1
        return torch.cat([first, rest], dim=1).flip(1)  # (B, L): x'_1 .. x'_L

    @torch.no_grad()
    def reconstruct(self, state: tuple[Tensor, Tensor], length: int) -> Tensor:
        """Inference: from the encoder's final state (h, c) (1, B, H), each output fed back -> (B, L), in order."""
        h, c = state
        x_hat = self.head(h[-1])  # (B, 1): x'_L
        outputs = [x_hat]
        for _ in range(length - 1):
            y, (h, c) = self.decoder.step(x_hat, (h, c))  # y (B, H)
            x_hat = self.head(y)  # (B, 1)
            outputs.append(x_hat)
        return torch.cat(outputs[::-1], dim=1)  # (B, L)


class _Windows(SeededBatches):
    """Training windows ``(x,)`` (N, L, 1), reshuffled each epoch from the source's own generator (exact resume)."""

    def __init__(self, x: Tensor, batch_size: int, seed: int) -> None:
        super().__init__(x, batch_size=batch_size, seed=seed)


def _windows(z: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Every full window of the scaled series z (T,): (N, L) values with NaN set to 0, and (N,) True where whole."""
    view = np.lib.stride_tricks.sliding_window_view(z, length)  # (N, L), N = T - L + 1
    whole = ~np.isnan(view).any(axis=1)
    return np.nan_to_num(view), whole


def _combine(window_errors: np.ndarray, n: int) -> np.ndarray:
    """(T,) the smallest error of each step over the full windows containing it; window_errors (N, L) has NaN for
    left-out windows. Window s holds steps s .. s + L - 1."""
    N, L = window_errors.shape
    best = np.full(n, np.inf)
    for k in range(L):  # position k of window s is step s + k
        best[k : k + N] = np.fmin(best[k : k + N], window_errors[:, k])  # fmin: a NaN (left-out) window is skipped
    return np.where(np.isinf(best), np.nan, best)


# ---- the detector --------------------------------------------------------------------------------------------------


@runs.register_kind(KIND)
class AnomalyDetector:
    """LSTM anomaly detector trained on normal data: ``fit``, ``score``, ``predict`` (= ``detect``), ``evaluate``,
    ``stream``, ``save``, ``load``. See the module docstring for both methods and the threshold.

    Args:
        config: an :class:`AnomalyConfig`, or its fields as keyword arguments (``method=``, ``input_window=``,
            ``steps_ahead=``, ``season=``, ``false_alarm_rate=``, ...).
    """

    def __init__(self, config: AnomalyConfig | None = None, **kwargs: Any) -> None:
        self.config = config if config is not None else AnomalyConfig(**kwargs)
        self.forecaster: Any = None  # prediction: the Forecaster
        self.model: EncDecNet | None = None  # reconstruction: the encoder-decoder
        self.scale: tuple[float, float] | None = None  # reconstruction: (mean, std) of the training part
        self.mean: np.ndarray | None = None  # (d,) mean error vector on held-out normal data
        self.precision: np.ndarray | None = None  # (d, d) inverse covariance of the error vectors
        self.threshold: float | None = None
        self.history_: list[dict[str, Any]] = []

    @property
    def params(self) -> dict[str, Any]:
        """The config as a dict (the form saved in ``config.json``)."""
        return self.config.to_dict()

    @property
    def delay(self) -> int:
        """Steps after x_t before its score is final: 0 for prediction, L - 1 for reconstruction."""
        return self.config.window - 1 if self.config.method == "reconstruction" else 0

    @property
    def min_points(self) -> int:
        """The shortest series that gets any score (of a trained detector)."""
        if self.config.method == "reconstruction":
            return self.config.window
        return self.forecaster.window + self.config.steps_ahead

    def _scoring_net(self) -> EncDecNet:
        """Reconstruction: the encoder-decoder in SCORE_DTYPE (a copy, kept until the network is replaced)."""
        assert self.model is not None
        cached = getattr(self, "_scoring", None)
        if cached is None or cached[0] is not self.model:
            cached = self._scoring = (self.model, copy.deepcopy(self.model).to(SCORE_DTYPE).eval())
        return cached[1]

    def _check_fitted(self) -> None:
        if self.threshold is None:
            raise NotFittedError("This AnomalyDetector is not fitted yet: call fit(normal_data) first.")

    # ---- error vectors -------------------------------------------------------------------------------------------
    def _errors(self, values: np.ndarray) -> np.ndarray:
        """(T, d) error vectors (NaN rows where there is none): d = steps_ahead (prediction) or 1 (reconstruction)."""
        if self.config.method == "reconstruction":
            return self._reconstruction_errors(values)[:, None]
        cfg = self.config
        table = _as_table(values, cfg.target, cfg.time)
        medians = next(iter(self.forecaster.rolling_medians(table, dtype=SCORE_DTYPE).values()))
        T, l = medians.shape  # (T, l): row o holds the forecast of steps o .. o + l - 1
        # No forecast from a window missing everywhere (the forecaster would give its guess from nothing): its steps
        # get no error from that origin, as in AnomalyStream.
        W = self.forecaster.window
        seen = np.r_[0, np.cumsum(~np.isnan(values))]  # (T + 1,): seen[o] = values present before step o
        origins = np.arange(W, T)
        medians[origins[seen[origins] == seen[origins - W]]] = np.nan
        errors = np.full((T, l), np.nan)
        for k in range(l):  # the forecast of y_t made k steps earlier sits at row t - k, column k
            errors[k:, k] = values[k:] - medians[: T - k, k]
        return errors

    def _reconstruction_errors(self, values: np.ndarray) -> np.ndarray:
        """(T,) the smallest absolute reconstruction error (scaled units) of each step over the full windows holding
        it (see :func:`_combine`); NaN for a missing value or a step in no full window without a gap."""
        assert self.scale is not None
        net = self._scoring_net()
        L = self.config.window
        z = (values - self.scale[0]) / self.scale[1]
        x, whole = _windows(z, L)  # (N, L), (N,)
        errors = np.full(x.shape, np.nan)
        for s in range(0, len(x), _CHUNK):
            xb = torch.tensor(x[s : s + _CHUNK], dtype=SCORE_DTYPE)[..., None]  # (B, L, 1)
            with torch.no_grad():
                _, state = net.encoder(xb)  # (1, B, H) each
                recon = net.reconstruct(state, L).numpy()  # (B, L)
            errors[s : s + _CHUNK] = np.abs(recon - x[s : s + _CHUNK])
        errors[~whole] = np.nan
        out = _combine(errors, len(z))
        out[np.isnan(z)] = np.nan
        return out

    # ---- fit -----------------------------------------------------------------------------------------------------
    def fit(
        self, normal: Any, validation: Any = None, validation_labels: Any = None, *,
        run_dir: str | os.PathLike[str] | None = None, resume: bool = False,
    ) -> AnomalyDetector:  # fmt: skip
        """Train on a series known to be normal, fit the error Gaussian and set the threshold.

        Args:
            normal: a 1-D array or a table with the ``target`` column; its last ``validation_fraction`` is held out.
            validation, validation_labels: a labelled series and its labels, to choose the threshold on; needed, and
                only read, when ``threshold_from="validation"``. The labels are one 0/1 value per step in time order
                (the order the table's rows take once sorted by ``time``), or the name of a 0/1 column of the table.
            run_dir: where training writes ``metrics.csv`` and checkpoints (save the model there with :meth:`save`).
            resume: continue an interrupted training from the newest checkpoint in ``run_dir`` (the same data and
                config); the result is the one an uninterrupted fit gives.

        Raises:
            ValueError: for too little normal data, bad values, or validation data that do not fit the config;
                ``lstmkit.train.ResumeError`` (a ValueError) for ``resume=True`` without a checkpoint to resume.
        """
        cfg = self.config
        values = _values(normal, cfg.target, cfg.time, "normal data")
        if cfg.threshold_from == "validation":
            if validation is None or validation_labels is None:
                raise ValueError(
                    "threshold_from='validation' chooses the threshold on labelled data: pass fit(normal, "
                    "validation=series, validation_labels=labels), or use threshold_from='false_alarm_rate'."
                )
        elif validation is not None or validation_labels is not None:
            raise ValueError(
                "validation data are read only with threshold_from='validation'; with the false-alarm rate the "
                "threshold comes from the normal data. Drop validation=, or set threshold_from='validation'."
            )
        n = len(values)
        n_val = int(n * cfg.validation_fraction)
        need = 4 * cfg.steps_ahead if cfg.method == "prediction" else 20
        if n_val < need:
            raise ValueError(
                f"{n} normal points leave {n_val} for validation; at least {need} are needed to fit the error "
                "distribution and the threshold. Give more normal data."
            )
        n_train = n - n_val
        if cfg.method == "prediction":
            self._fit_forecaster(values[:n_train], run_dir, resume)
        else:
            self._fit_encdec(values, n_train, run_dir, resume)
        errors = self._errors(values)[n_train:]  # (n_val, d): the held-out tail
        errors = errors[~np.isnan(errors).any(axis=1)]
        if cfg.threshold_from == "validation":
            self.mean, self.precision = _fit_gaussian(errors)
            v = _values(validation, cfg.target, cfg.time, "validation data")
            y = _labels_of(validation, validation_labels, len(v), cfg.time, "validation_labels")
            self.threshold = _best_f_beta_threshold(self._score_values(v), y, cfg.beta)
        else:
            half = len(errors) // 2
            self.mean, self.precision = _fit_gaussian(errors[:half])
            held = _mahalanobis(errors[half:], self.mean, self.precision)
            self.threshold = tail_quantile(held, cfg.false_alarm_rate)
        return self

    def _fit_forecaster(self, train: np.ndarray, run_dir: Any, resume: bool) -> None:
        from ..forecasting import Forecaster

        cfg = self.config
        self.forecaster = Forecaster(
            target=cfg.target, time=cfg.time, horizon=cfg.steps_ahead, season=cfg.season,
            input_window=cfg.input_window, hidden_size=cfg.hidden_size, epochs=cfg.epochs, seed=cfg.seed,
            calibrate_intervals=False, progress=cfg.progress,
        ).fit(_as_table(train, cfg.target, cfg.time), run_dir=run_dir, resume=resume)  # fmt: skip
        self.history_ = self.forecaster.history_

    def _fit_encdec(self, values: np.ndarray, n_train: int, run_dir: Any, resume: bool) -> None:
        cfg = self.config
        L = cfg.window
        train = values[:n_train]
        mean, std = float(np.nanmean(train)), float(np.nanstd(train))
        self.scale = (mean, std if np.isfinite(std) and std > 0 else 1.0)  # the training part only: no leakage
        z = (values - self.scale[0]) / self.scale[1]
        if n_train < L + 7 or not _windows(z[:n_train], L)[1].any():
            raise ValueError(
                f"{n_train} normal training points hold too few windows of {L} steps (at least {L + 7} points "
                "without gaps are needed). Give more normal data or a shorter window (input_window=, --window)."
            )
        x, whole = _windows(z[:n_train], L)
        x_train = torch.tensor(x[whole], dtype=torch.float32)[..., None]  # (N, L, 1)
        val = None
        xv, whole_v = _windows(z[n_train:], L) if len(z) - n_train >= L else (None, None)
        if xv is not None and whole_v.any():  # held-out windows: the val_loss curve in metrics.csv
            val = [(torch.tensor(xv[whole_v], dtype=torch.float32)[..., None],)]
        seed_everything(cfg.seed)
        self.model = EncDecNet(cfg.hidden_size)

        def loss_fn(model: nn.Module, batch: tuple[Tensor, ...], state: Any) -> StepOutput:
            (xb,) = batch  # (B, L, 1)
            return StepOutput(loss=torch.mean((model(xb) - xb[..., 0]) ** 2), n_items=xb.shape[0])

        train_cfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed,
                                progress=cfg.progress)  # fmt: skip
        run_config = {k: v for k, v in cfg.to_dict().items() if k != "progress"}
        trainer = Trainer(
            self.model,
            loss_fn,
            train_cfg,
            run_dir=run_dir,
            callbacks=[GateStatistics()],
            run_config=run_config,
            kind=KIND,
        )
        self.history_ = trainer.fit(_Windows(x_train, cfg.batch_size, cfg.seed), val_data=val, resume=resume)
        self.model.eval()

    # ---- score / predict / evaluate ------------------------------------------------------------------------------
    def _score_values(self, values: np.ndarray) -> np.ndarray:
        if len(values) < self.min_points:
            raise ValueError(
                f"The series has {len(values)} points; this detector needs at least {self.min_points} to score any "
                f"(its window{' plus the forecast steps' if self.config.method == 'prediction' else ''}). Give a "
                "longer series (or the steps before it as context=)."
            )
        assert self.mean is not None and self.precision is not None
        return _mahalanobis(self._errors(values), self.mean, self.precision)

    def score(self, data: Any, *, context: Any = None) -> np.ndarray:
        """(T,) anomaly scores (squared Mahalanobis distance of e_t); NaN where a step has no error (the first steps
        for prediction, missing values).

        Args:
            data: a 1-D array or a table with the ``target`` column (rows put in ``time`` order).
            context: the steps just before ``data`` (same form), read but not scored: the first steps of ``data``
                then get the windows (and forecasts) that reach back into them, as in one longer series.
        """
        self._check_fitted()
        cfg = self.config
        values = _values(data, cfg.target, cfg.time)
        if context is None:
            return self._score_values(values)
        before = _values(context, cfg.target, cfg.time, "context")
        return self._score_values(np.concatenate([before, values]))[len(before) :]

    def detect(self, data: Any, *, context: Any = None) -> np.ndarray:
        """(T,) booleans: score above the threshold set on normal (or validation) data (``context``: see
        :meth:`score`)."""
        return self.flags(self.score(data, context=context))

    predict = detect  # the verb every lstmkit task shares

    def flags(self, scores: np.ndarray) -> np.ndarray:
        """(T,) booleans for scores already computed: above the threshold (NaN never flags)."""
        self._check_fitted()
        return np.nan_to_num(np.asarray(scores, dtype=float), nan=-np.inf) > self.threshold

    def evaluate(self, data: Any, labels: Any, *, context: Any = None) -> dict[str, Any]:
        """Score ``data`` and compare its flags with ``labels``: see :func:`detection_metrics`.

        Args:
            data, context: as for :meth:`score`.
            labels: one 0/1 value per step of ``data`` in time order (the order its rows take once sorted by
                ``time``), or the name of a 0/1 column of the table ``data``.
        """
        scores = self.score(data, context=context)
        y = _labels_of(data, labels, len(scores), self.config.time)
        return {**detection_metrics(y, self.flags(scores)), "threshold": self.threshold}

    def stream(self) -> AnomalyStream:
        """A scorer fed one value at a time that carries state between calls (see :class:`AnomalyStream`)."""
        self._check_fitted()
        return AnomalyStream(self)

    # ---- persistence ---------------------------------------------------------------------------------------------
    def save(self, run_dir: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """config.json (the config, threshold, scaling) + model.safetensors (the network's weights: the forecaster's
        or the encoder-decoder's) + the error Gaussian in extra tensors; the prediction method's forecaster also in
        ``run_dir/forecaster`` (its config and scaling, and the run it trained in)."""
        self._check_fitted()
        run_dir = Path(run_dir)
        extra = {"mean": torch.tensor(self.mean), "precision": torch.tensor(self.precision)}
        saved: dict[str, Any] = {"anomaly": self.config.to_dict(), "threshold": self.threshold}
        if self.config.method == "prediction":
            self.forecaster.save(run_dir / "forecaster", overwrite=overwrite)
            model: nn.Module = self.forecaster.model
        else:
            assert self.model is not None
            saved["scale"] = list(self.scale)  # type: ignore[arg-type]
            model = self.model
        return runs.save_run(run_dir, KIND, saved, model, extra, overwrite=overwrite)

    @classmethod
    def load(cls, run_dir: str | os.PathLike[str]) -> AnomalyDetector:
        saved = dict(runs.read_run_config(run_dir, KIND)["config"])
        threshold = saved.pop("threshold")
        fields = saved["anomaly"] if "anomaly" in saved else saved  # early runs saved the fields flat
        det = cls(AnomalyConfig.from_dict(fields))
        if det.config.method == "prediction":
            from ..forecasting import Forecaster

            det.forecaster = Forecaster.load(Path(run_dir) / "forecaster")
            weights = runs.read_state_dict(run_dir)
            if weights:  # the run's own weights rule (runs saved before they were kept here have none)
                det.forecaster.model.load_state_dict(weights)
        else:
            det.scale = tuple(saved["scale"])  # type: ignore[assignment]
            det.model = EncDecNet(det.config.hidden_size)
            det.model.load_state_dict(runs.read_state_dict(run_dir))
            det.model.eval()
        extra = runs.read_extra_tensors(run_dir)
        det.mean, det.precision, det.threshold = extra["mean"].numpy(), extra["precision"].numpy(), threshold
        return det


class AnomalyStream:
    """Score a series one value at a time: ``update(value)`` returns the score of the step ``delay`` steps back (NaN
    before it exists), ``finish()`` the scores of the last ``delay`` steps. Together they equal
    :meth:`AnomalyDetector.score` of the whole series (to float64 round-off on any CPU: see SCORE_DTYPE; tested).

    What is carried between calls:

    - reconstruction: one encoder state (h, c) per window still being read (up to L, stepped together as a batch of
      windows: each value advances every open window by one step, nothing is re-read), the last L scaled values and
      their smallest window errors so far; a window is decoded when its L-th value arrives, and a step's score is
      final when the window starting at it is done (``delay = L - 1``).
    - prediction: the forecasts already made of the next ``steps_ahead`` steps and the last window of values. The
      forecaster reads each window relative to that window's own level, so its LSTM state cannot be carried from
      one origin to the next: each new origin reads its window once (``delay = 0``).
    """

    def __init__(self, detector: AnomalyDetector) -> None:
        self.det = detector
        self.delay = detector.delay
        self.t = 0  # steps seen
        if detector.config.method == "reconstruction":
            # The last min(t, L) steps, oldest first: scaled value and its smallest window error so far.
            self._z: list[float] = []
            self._best: list[float] = []
            self._state: tuple[Tensor, Tensor] | None = None  # (1, A, H) each: the A open windows, oldest first
            self._broken: list[bool] = []  # per open window: it read a missing value
        else:
            self._recent: list[float] = []  # the last window of raw values
            self._pending: dict[int, np.ndarray] = {}  # origin -> its forecast of steps origin .. origin + l - 1

    def update(self, value: float) -> float:
        """Feed x_t; returns the score of step t - delay (NaN while t < delay or when that step has no error)."""
        value = float(value)
        if math.isinf(value):
            raise ValueError(f"Step {self.t} is infinite; pass a finite number, or NaN for a missing value.")
        if self.det.config.method == "reconstruction":
            out = self._update_reconstruction(value)
        else:
            out = self._update_prediction(value)
        self.t += 1
        return out

    def get_state(self) -> dict[str, np.ndarray]:
        """What the stream carries, as numpy arrays by name (for a store that outlives the process); ``set_state``
        on a fresh stream of the same detector continues exactly."""
        state = {"t": np.array(self.t, np.int64)}
        if self.det.config.method == "reconstruction":
            state |= {"z": np.asarray(self._z, np.float64), "best": np.asarray(self._best, np.float64),
                      "broken": np.asarray(self._broken, np.bool_)}  # fmt: skip
            if self._state is not None:
                state |= {"h": self._state[0].numpy().copy(), "c": self._state[1].numpy().copy()}
        else:
            origins = sorted(self._pending)
            l = self.det.config.steps_ahead  # noqa: E741
            forecasts = np.asarray([self._pending[o] for o in origins], np.float64).reshape(-1, l)
            state |= {"recent": np.asarray(self._recent, np.float64), "origins": np.asarray(origins, np.int64),
                      "forecasts": forecasts}  # fmt: skip
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Continue from :meth:`get_state`'s arrays."""
        try:
            t = int(state["t"])
            if self.det.config.method == "reconstruction":
                z, best = [float(v) for v in state["z"]], [float(v) for v in state["best"]]
                broken = [bool(v) for v in state["broken"]]
                hc = ((torch.as_tensor(state["h"], dtype=SCORE_DTYPE), torch.as_tensor(state["c"], dtype=SCORE_DTYPE))
                      if "h" in state else None)  # fmt: skip
                H = self.det.model.encoder.hidden_size  # type: ignore[union-attr]
                if len(z) != len(best) or (hc is not None and (hc[0].shape != (1, len(broken), H) or hc[0].shape
                                                                != hc[1].shape)):  # fmt: skip
                    raise ValueError("its arrays disagree in length")
                self._z, self._best, self._broken, self._state = z, best, broken, hc
            else:
                l = self.det.config.steps_ahead  # noqa: E741
                forecasts = np.asarray(state["forecasts"], np.float64).reshape(-1, l)
                origins = [int(o) for o in state["origins"]]
                if len(origins) != len(forecasts):
                    raise ValueError("its arrays disagree in length")
                self._recent = [float(v) for v in state["recent"]]
                self._pending = dict(zip(origins, forecasts, strict=True))
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(
                f"This state does not belong to a {self.det.config.method} anomaly stream ({exc})."
            ) from None
        self.t = t

    def finish(self) -> np.ndarray:
        """(delay,) the scores of the last ``delay`` steps (fewer if fewer were fed), from the windows that exist."""
        if self.det.config.method != "reconstruction":
            return np.zeros(0)
        return self._score(np.array([self._error(i) for i in range(len(self._z))]))

    # -- internals
    def _score(self, e: np.ndarray) -> np.ndarray:
        det = self.det
        assert det.mean is not None and det.precision is not None
        return _mahalanobis(e.reshape(len(e), -1), det.mean, det.precision)

    def _error(self, i: int) -> float:
        """The error of pending step i: its smallest over the windows decoded so far (NaN if none or missing)."""
        return math.nan if math.isinf(self._best[i]) or math.isnan(self._z[i]) else self._best[i]

    def _update_reconstruction(self, value: float) -> float:
        det, L = self.det, self.det.config.window
        assert det.scale is not None
        net = det._scoring_net()
        z = (value - det.scale[0]) / det.scale[1]
        self._z.append(z)
        self._best.append(math.inf)
        zero = torch.zeros(1, 1, net.encoder.hidden_size, dtype=SCORE_DTYPE)  # (1, 1, H)
        if self._state is None:
            self._state = (zero, zero.clone())
        else:  # open the window that starts at this step with a fresh (zero) encoder state
            self._state = (torch.cat([self._state[0], zero], 1), torch.cat([self._state[1], zero], 1))
        missing = math.isnan(z)
        self._broken = [b or missing for b in self._broken + [False]]
        A = self._state[0].shape[1]
        x = torch.full((A, 1), 0.0 if missing else z, dtype=SCORE_DTYPE)  # (A, 1): this value, to every window
        with torch.no_grad():
            _, self._state = net.encoder.step(x, self._state)  # (1, A, H) each
        if self.t < L - 1:
            return math.nan
        # The oldest open window (steps t - L + 1 .. t) has read its L values: decode it and close it.
        h, c = self._state
        if not self._broken[0]:
            recon = net.reconstruct((h[:, :1], c[:, :1]), L)[0].numpy()  # (L,)
            err = np.abs(recon - np.asarray(self._z))  # (L,)
            self._best = [min(b, float(e)) for b, e in zip(self._best, err, strict=True)]
        self._state = (h[:, 1:], c[:, 1:])
        self._broken.pop(0)
        score = float(self._score(np.array([self._error(0)]))[0])  # step t - L + 1 is in no later window
        del self._z[0], self._best[0]
        return score

    def _update_prediction(self, value: float) -> float:
        det, cfg = self.det, self.det.config
        l, W = cfg.steps_ahead, det.forecaster.window
        t = self.t
        e = np.full(l, np.nan)
        for k in range(l):  # the forecast of x_t made from origin t - k
            f = self._pending.get(t - k)
            if f is not None:
                e[k] = value - f[k]
        self._pending.pop(t - l + 1, None)
        self._recent = (self._recent + [value])[-W:]
        # Forecast steps t + 1 .. t + l from the last W values; a window missing everywhere gives no forecast (as in
        # score(), where that origin's forecast is NaN).
        if len(self._recent) == W and not np.isnan(self._recent).all():
            window = np.asarray(self._recent + [np.nan])  # a placeholder row: rolling_medians forecasts origin W
            table = _as_table(window, cfg.target, cfg.time)
            medians = next(iter(det.forecaster.rolling_medians(table, dtype=SCORE_DTYPE).values()))
            self._pending[t + 1] = medians[W]
        return float(self._score(e[None])[0])


# ---- metrics and the baseline ------------------------------------------------------------------------------------


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (start, end) of each run of True values."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(s), int(e) - 1) for s, e in zip(edges[::2], edges[1::2], strict=True)]


def detection_metrics(labels: np.ndarray, flags: np.ndarray) -> dict[str, Any]:
    """Point and event precision / recall / F1, the NAB score (standard profile) and the false alarms.

    NAB's windows (10 % of the series shared by the labelled events) are centred on each event's middle step.

    Returns:
        ``{"point": {precision, recall, f1}, "event": {precision, recall, f1, events, alarms}, "nab": {normalized,
        raw, tp, fp, fn, ...}, "found": events detected, "false_alarm_events": alarms touching no event,
        "false_alarm_points": flagged normal steps, "flagged_points": all flagged steps}``.
    """
    y, f = np.asarray(labels).astype(bool), np.asarray(flags).astype(bool)
    events = _runs(y)
    windows = nab_windows(len(y), [(s + e) // 2 for s, e in events])
    alarms = _runs(f)
    return {
        "point": point_scores(y, f), "event": event_scores(y, f), "nab": nab_score(f, windows, "standard"),
        "found": sum(1 for s, e in events if f[s : e + 1].any()),
        "false_alarm_events": sum(1 for s, e in alarms if not y[s : e + 1].any()),
        "false_alarm_points": int((f & ~y).sum()), "flagged_points": int(f.sum()),
    }  # fmt: skip


def rolling_zscore(values: np.ndarray, window: int) -> np.ndarray:
    """(T,) ``|x_t - mean| / std`` of the ``window`` values before t (NaN for the first ``window`` steps; missing
    values skipped; a flat window gives 0 for an equal value and inf otherwise)."""
    x = np.asarray(values, dtype=float)
    out = np.full(len(x), np.nan)
    if len(x) <= window:
        return out
    past = np.lib.stride_tricks.sliding_window_view(x[:-1], window)  # (T - w, w): row i holds x[i .. i + w - 1]
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing window: its mean is NaN, as wanted
        mean, std = np.nanmean(past, axis=1), np.nanstd(past, axis=1)
        dev = np.abs(x[window:] - mean)
        out[window:] = np.where(std > 0, dev / np.where(std > 0, std, 1.0), np.where(dev > 0, np.inf, 0.0))
    return out


class RollingZScore:
    """The baseline: rolling z-score, thresholded at the ``1 - false_alarm_rate`` quantile of its scores on the normal
    training data, by :func:`tail_quantile` (the way the LSTM detectors are). The detector's verbs: ``fit``,
    ``score``, ``predict`` (= ``detect``), ``flags``, ``evaluate``; data as for :class:`AnomalyDetector`.

    Args:
        window: the previous steps whose mean and standard deviation standardise x_t.
        false_alarm_rate: the share of normal training steps allowed above the threshold.
        target, time: the value and time columns of a table.
    """

    def __init__(
        self, window: int = 50, false_alarm_rate: float = 0.01, target: str = "value", time: str = "time"
    ) -> None:
        if window < 2:
            raise ValueError(f"The z-score window must be at least 2 steps, got {window}.")
        if not 0 < false_alarm_rate < 1:
            raise ValueError(f"false_alarm_rate must be in (0, 1), got {false_alarm_rate}.")
        self.window, self.false_alarm_rate, self.target, self.time = window, false_alarm_rate, target, time
        self.threshold: float | None = None

    def fit(self, normal: Any) -> RollingZScore:
        scores = rolling_zscore(_values(normal, self.target, self.time, "normal data"), self.window)
        finite = scores[np.isfinite(scores)]
        if finite.size == 0:
            raise ValueError(f"The normal data are too short for a z-score window of {self.window} steps.")
        self.threshold = tail_quantile(finite, self.false_alarm_rate)
        return self

    def score(self, data: Any, *, context: Any = None) -> np.ndarray:
        """(T,) z-scores; ``context``: the steps just before ``data``, read but not scored."""
        values = _values(data, self.target, self.time)
        if context is None:
            return rolling_zscore(values, self.window)
        before = _values(context, self.target, self.time, "context")
        return rolling_zscore(np.concatenate([before, values]), self.window)[len(before) :]

    def flags(self, scores: np.ndarray) -> np.ndarray:
        """(T,) booleans for scores already computed: above the threshold (NaN never flags)."""
        if self.threshold is None:
            raise NotFittedError("This RollingZScore is not fitted yet: call fit(normal_data) first.")
        return np.nan_to_num(np.asarray(scores, dtype=float), nan=-np.inf) > self.threshold

    def detect(self, data: Any, *, context: Any = None) -> np.ndarray:
        return self.flags(self.score(data, context=context))

    predict = detect

    def evaluate(self, data: Any, labels: Any, *, context: Any = None) -> dict[str, Any]:
        """As :meth:`AnomalyDetector.evaluate`: labels per step in time order, or a 0/1 column's name."""
        scores = self.score(data, context=context)
        y = _labels_of(data, labels, len(scores), self.time)
        return {**detection_metrics(y, self.flags(scores)), "threshold": self.threshold}


# ---- runs for the command line -----------------------------------------------------------------------------------


def load_table(dataset: str | None, csv: str | os.PathLike[str] | None) -> tuple[Any, dict[str, Any]]:
    """The table and, for a bundled anomaly dataset, its column roles: ``{"target", "time", "label"}``.

    Raises:
        ValueError: both or neither given, or a dataset that is not an anomaly one; FileNotFoundError: no such CSV.
    """
    one_source(dataset, csv)
    if dataset is not None:
        from ....datasets import get_info, load_dataset

        info = get_info(dataset)
        if info.task != "anomaly":
            raise ValueError(f"{dataset!r} is a {info.task} dataset, not an anomaly one; see lstmkit datasets list.")
        return load_dataset(dataset), {"target": info.targets[0], "time": "time", "label": "label"}
    return read_csv(csv), {}


def _split(table: Any, part: str) -> Any:
    """The rows of a table's ``split`` column equal to ``part`` when it has one and any such rows; else the table."""
    if "split" in table.columns and (table["split"] == part).any():
        return table[table["split"] == part].reset_index(drop=True)
    return table


def _split_mask(table: Any, part: str) -> np.ndarray:
    """(rows,) True for the rows that :func:`_split` returns."""
    if "split" in table.columns and (table["split"] == part).any():
        return (table["split"] == part).to_numpy()
    return np.ones(len(table), dtype=bool)


def _check_columns(table: Any, names: list[str | None]) -> None:
    missing = [c for c in names if c is not None and c not in table.columns]
    if missing:
        raise ValueError(
            f"Unknown column(s) {shown_list(missing)}; the table has {shown_list(table.columns)}. Check the column "
            "names."
        )


def _check_season(config: AnomalyConfig, normal: int) -> None:
    """The normal rows that train the model (those before the held-out tail) hold two seasons and one more point
    before the forecast steps (prediction), or two seasons plus the few extra points a window needs (reconstruction).

    Raises:
        ValueError: naming the number of normal rows and the largest season they support.
    """
    fit = normal - int(normal * config.validation_fraction)
    points = fit - (config.steps_ahead if config.method == "prediction" else 6)
    largest = max((points - 1) // 2, 1)
    if config.season > 1 and config.season > largest:
        raise ValueError(
            f"The season ({config.season} steps, --season) is longer than the series can support: {normal} normal "
            f"rows, of which {fit} train the model, hold two seasons of at most {largest} steps. Give a season of at "
            f"most {largest} (1: none), or more normal data."
        )


def _write_json(path: Path, document: Any) -> None:
    atomic_write_bytes(path, (json.dumps(document, indent=2, allow_nan=True) + "\n").encode())


@dataclass
class _Scored:
    """The scored rows of a table, in time order."""

    time: np.ndarray
    values: np.ndarray
    scores: np.ndarray
    flags: np.ndarray
    labels: np.ndarray | None
    context: int  # rows read before the first scored one


def _score_table(det: Any, table: Any, target: str, time: str, label: str | None) -> _Scored:
    """Score the ``test`` rows of a table (every row without a ``split`` column): the whole table is read as one
    series in ``time`` order, so the first test steps get the windows (and forecasts) that reach back into the rows
    before them; only the test rows' scores are kept. ``det``: an AnomalyDetector or a RollingZScore."""
    table = _in_time_order(table, time)
    _check_columns(table, [target, label])
    keep = _split_mask(table, "test")
    labels = None
    if label is not None:
        labels = _labels(table[label].to_numpy()[keep], int(keep.sum()), f"label column {shown(label)}")
    values = _values(table, target, time)
    scores = det.score(values)[keep]  # the whole series: every row is context for the ones after it
    times = table[time].to_numpy() if time in table.columns else np.arange(len(table))
    return _Scored(times[keep], values[keep], scores, det.flags(scores), labels, int(np.argmax(keep)))


def _write_scores(det: AnomalyDetector, scored: _Scored, target: str, time: str, out: Path) -> dict[str, Any]:
    """``scores.csv``, ``anomaly.png`` and ``result.json`` (the detection metrics with labels, else the counts) in
    ``out``; returns the summary."""
    import pandas as pd

    from ....viz.plots import plot_anomaly

    cfg = det.config
    frame = pd.DataFrame(
        {time: scored.time, target: scored.values, "score": scored.scores, "flag": scored.flags.astype(int)}
    )
    if scored.labels is not None:
        frame["label"] = scored.labels.astype(int)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "scores.csv", frame.to_csv(index=False).encode())
    plot_anomaly(
        scored.time, scored.values, scored.scores, det.threshold, out / "anomaly.png", flags=scored.flags,
        labels=scored.labels, title=f"{target}: {cfg.method} scores ({len(scored.scores)} steps)",
    )  # fmt: skip
    summary: dict[str, Any] = {
        "run_dir": str(out), "method": cfg.method, "steps": len(scored.scores), "context_steps": scored.context,
        "threshold": det.threshold, "flagged_points": int(scored.flags.sum()), "scores": str(out / "scores.csv"),
    }  # fmt: skip
    if scored.labels is not None:
        summary["metrics"] = {**detection_metrics(scored.labels, scored.flags), "threshold": det.threshold}
        _write_json(out / "result.json", summary["metrics"])
    else:  # what there is to say without labels
        _write_json(out / "result.json", {k: summary[k] for k in ("method", "steps", "context_steps", "threshold",
                                                                  "flagged_points")})  # fmt: skip
    return summary


def score_run(
    det: AnomalyDetector, table: Any, out: str | os.PathLike[str], label: str | None = None, *,
    target: str | None = None, time: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Score ``table``'s ``test`` rows (every row without a ``split`` column), the rows before them read as context;
    write ``scores.csv``, ``anomaly.png`` and, with labels, ``result.json`` (the detection metrics) in ``out``, which
    must not be a run directory (its own files from training would be overwritten: FileExistsError).

    Args:
        target, time: the table's value and time columns when they are not named as in training.

    Returns:
        A summary: ``steps`` scored, ``context_steps`` read before the first, threshold, flags, metrics.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} is a file, not a directory; give --out a directory for the scores.")
    if (out / runs.CONFIG_FILE).exists():
        raise FileExistsError(
            f"{out} is a run directory: its scores.csv, anomaly.png and result.json come from its training and would "
            "be overwritten. Write the scores to another directory (--out)."
        )
    target, time = target or det.config.target, time or det.config.time
    return _write_scores(det, _score_table(det, table, target, time, label), target, time, out)


def evaluate_table(
    det: AnomalyDetector, table: Any, label: str, *, target: str | None = None, time: str | None = None
) -> dict[str, Any]:
    """The detection metrics (:func:`detection_metrics` plus the threshold) on ``table``'s ``test`` rows, scored as
    in :func:`score_run`; ``label`` names the 0/1 column."""
    target, time = target or det.config.target, time or det.config.time
    scored = _score_table(det, table, target, time, label)
    assert scored.labels is not None
    return {**detection_metrics(scored.labels, scored.flags), "threshold": det.threshold}


def train_run(
    table: Any, config: AnomalyConfig, out: str | os.PathLike[str], label: str | None = None, *, resume: bool = False
) -> dict[str, Any]:
    """Fit on the table's normal rows (its ``train`` split when it has a ``split`` column, else every row), save the
    detector, then score the ``test`` rows (or every row) with the rows before them as context and write the scores
    and the report.

    The run directory gets ``config.json`` (status "training" until the detector is saved), ``metrics.csv`` (the
    training curve) and checkpoints while training, then ``model.safetensors`` and the finished ``config.json``, then
    ``scores.csv``, ``anomaly.png``, ``result.json`` and ``report.html``. A run that stops while training continues
    with ``resume``; one that fails while scoring keeps its saved detector (``lstmkit anomaly score`` scores again).

    Args:
        resume: continue an interrupted training in ``out`` from its newest checkpoint.

    Raises:
        FileExistsError: ``out`` holds a finished run; ValueError: bad columns or times, labelled anomalies in the
        training rows; ``lstmkit.train.ResumeError``: nothing to resume, or a checkpoint of another config.
    """
    from ....report import write_report

    out = Path(out)
    if runs.is_finished(out):
        raise FileExistsError(f"{out} already holds a finished detector; choose another --out or delete it.")
    # Everything that scoring reads is checked before training, so a mistake costs no training time.
    table = _in_time_order(table, config.time)
    _check_columns(table, [config.target, label])
    _values(table, config.target, config.time)
    train = _split(table, "train")
    _check_season(config, len(train))
    if label is not None:
        y = _labels(table[label].to_numpy(), len(table), f"label column {shown(label)}")
        in_train = int(y[_split_mask(table, "train")].sum())
        if in_train:
            raise ValueError(
                f"The training rows hold {in_train} labelled anomalies; the detector learns from normal data only. "
                "Add a 'split' column with normal 'train' rows, or drop the anomalous rows."
            )
    det = AnomalyDetector(config)
    fit_dir = out / "forecaster" if config.method == "prediction" else out
    if fit_dir != out:  # the forecaster's Trainer starts its own run in fit_dir; the detector's starts here
        runs.start_run(out, KIND, {"anomaly": config.to_dict()})
    det.fit(train, run_dir=fit_dir, resume=resume)
    if config.method == "prediction" and (fit_dir / "metrics.csv").is_file():  # the training curve at the top
        atomic_write_bytes(out / "metrics.csv", (fit_dir / "metrics.csv").read_bytes())
    det.save(out, overwrite=resume)  # the detector first: a failure while scoring loses nothing
    try:
        scored = _score_table(det, table, config.target, config.time, label)
        summary = _write_scores(det, scored, config.target, config.time, out)
    except ValueError as e:
        raise ValueError(
            f"{e} The trained detector is saved in {out}; score the data again with `lstmkit anomaly score {out}`."
        ) from e
    summary["epochs"] = len(det.history_)
    if det.history_:
        summary["train_loss"] = det.history_[-1]["train_loss"]
    write_report(out)
    return summary
