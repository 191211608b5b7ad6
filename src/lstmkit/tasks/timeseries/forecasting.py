"""Forecasting with an LSTM: ``lstmkit.Forecaster`` (direct multi-horizon, quantiles, covariates, many series).

The model reads a window of the past (``input_window`` steps of the scaled target, an observed-or-missing flag and the
covariates) with an LSTM encoder; a head maps the last state, together with the future covariates over the horizon,
to ``horizon x len(quantiles)`` values at once (direct multi-horizon, as in MQ-RNN, Wen et al. 2017). Trained with the
pinball (quantile) loss, so the 0.5 quantile is the point forecast and the outer ones give a prediction interval.

Static covariates (one value per series: a region, a product category, a store size) are encoded once across series
(numbers standardised, text one-hot over the categories seen in training) and fed with the future covariates: to the
encoder at every step and to the head over the horizon. They let one model of many series tell them apart.

Scaling (per series, optionally after a log) is fitted on the training part only. The family's other modules:
``forecast_config`` (:class:`ForecastConfig`), ``series`` (the data rules, :func:`prepare_series`), ``forecast_nets``
(the networks and the pinball loss), ``baselines`` and ``metrics``, ``backtest`` (rolling origins) and
``forecast_run`` (``train_run``, the CLI's training).
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from ... import runs
from ...data import SeededBatches
from ...data.tables import shown, shown_list
from ...train import StepOutput, resolve_device, seed_everything
from ...train.checkpoint import latest_checkpoint
from ..training import on_training_device, task_trainer
from .forecast_config import ForecastConfig, ForecastNet, ForecastTrain
from .forecast_nets import DirectForecastNet, ForecastEnsemble, RecurrentForecastNet, build_net, pinball_loss
from .metrics import nan_mean, summarize
from .seasonality import resolve_season
from .series import Series, as_table, check_season, future_rows, prepare_series, require_pandas, slice_table

if TYPE_CHECKING:
    from ...nn.onnx_graph import CheckedGraph

__all__ = [
    "DirectForecastNet", "ForecastConfig", "ForecastNet", "ForecastTrain", "Forecaster", "RecurrentForecastNet",
    "pinball_loss", "prepare_series",
]  # fmt: skip

KIND = "forecaster"

logger = logging.getLogger(__name__)


class _Windows(SeededBatches):
    """Training windows ``(x, fut, y)``, reshuffled each epoch from the source's own generator (exact resume)."""

    def __init__(self, x: Tensor, fut: Tensor, y: Tensor, batch_size: int, seed: int) -> None:
        super().__init__(x, fut, y, batch_size=batch_size, seed=seed)


@runs.register_kind(KIND)
class Forecaster:
    """Direct multi-horizon LSTM forecaster with quantiles: ``fit``, ``predict``, ``evaluate``, ``save``, ``load``.

    Example:
        >>> f = Forecaster(target="passengers", horizon=24, season=12, transform="log")      # doctest: +SKIP
        >>> f.fit(train_df).predict(train_df)          # the next 24 months: time, q0.1, q0.5, q0.9  # doctest: +SKIP
    """

    def __init__(self, config: ForecastConfig | None = None, **kwargs: Any) -> None:
        # keyword arguments may be flat (hidden_size=, epochs=) or sections (net=, train=), as from_dict reads them
        self.config = config if config is not None else ForecastConfig.from_dict(kwargs)
        self.model: DirectForecastNet | RecurrentForecastNet | ForecastEnsemble | None = None
        self.scales: dict[str, np.ndarray] = {}  # series key -> (mean, std) per input column, from training data
        self.interval_shift = 0.0  # conformal widening of the outer quantiles, scaled units (calibrate_intervals)
        # static covariates: column -> ["numeric", mean, std] or ["categorical", *categories], fitted across series
        self.static_encoding: dict[str, list[Any]] = {}
        self.trained_until: dict[str, str] = {}  # series key -> the last timestamp of its training data
        self.history_: list[dict[str, Any]] = []
        self.season_: dict[str, Any] = {}  # the season fit used and what the timestamps imply (resolve_season)

    # ---- features ---------------------------------------------------------------------------------------------
    @property
    def window(self) -> int:
        return self._window

    def _columns(self, s: Series) -> np.ndarray:
        """(T, 1 + P + F): the transformed target and the covariates."""
        y = s.y
        if self.config.transform == "log":
            if np.nanmin(y) <= 0:
                raise ValueError(
                    f"The log transform (transform='log', --transform log) needs a positive target; series "
                    f"{shown(s.key)} has values <= 0. Use no transform, or shift the values above 0."
                )
            y = np.log(y)
        return np.column_stack([y, s.past, s.future])

    @property
    def _n_future(self) -> int:
        """Channels fed over the horizon: the future covariates, then the encoded static covariates."""
        n_static = sum(1 if e[0] == "numeric" else len(e) - 1 for e in self.static_encoding.values())
        return len(self.config.future_covariates) + n_static

    def _fit_static_encoding(self, series: list[Series]) -> None:
        """Numbers standardised across the series, text one-hot over the sorted categories seen in training."""
        self.static_encoding = {}
        for col in self.config.static_covariates:
            values = [s.static[col] for s in series]  # type: ignore[index]
            if all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in values):
                arr = np.asarray(values, dtype=float)
                std = float(arr.std())
                self.static_encoding[col] = ["numeric", float(arr.mean()), std if std > 0 else 1.0]
            else:
                self.static_encoding[col] = ["categorical", *sorted({str(v) for v in values})]

    def _static_vector(self, s: Series) -> np.ndarray:
        """(S,) the encoded static covariates of one series."""
        parts = []
        for col, enc in self.static_encoding.items():
            value = s.static[col]  # type: ignore[index]
            if enc[0] == "numeric":
                try:
                    parts.append([(float(value) - enc[1]) / enc[2]])
                except (TypeError, ValueError):
                    raise ValueError(f"Static covariate {shown(col)} of series {shown(s.key)} is {shown(value)}, not "
                                     "a number as in training.") from None  # fmt: skip
            else:
                if str(value) not in enc[1:]:
                    raise ValueError(
                        f"Static covariate {shown(col)} of series {shown(s.key)} is {shown(value)}, a category not "
                        f"seen in training (known: {shown_list(enc[1:])}). Train with it, or drop the static covariate."
                    )
                parts.append([float(str(value) == c) for c in enc[1:]])
        return np.asarray([x for p in parts for x in p], dtype=float)

    def _fit_scales(self, s: Series, end: int) -> None:
        cols = self._columns(s)[:end]
        mean = np.nanmean(cols, axis=0)
        std = np.nanstd(cols, axis=0)
        self.scales[s.key] = np.stack([np.nan_to_num(mean), np.where(np.isfinite(std) & (std > 0), std, 1.0)])

    def _scaled(self, s: Series) -> np.ndarray:
        """(T, 1 + P + F + S): the columns scaled per series, then the encoded static covariates (NaN kept)."""
        mean, std = self.scales[s.key]
        z = (self._columns(s) - mean) / std  # (T, 1 + P + F)
        if not self.static_encoding:
            return z
        return np.column_stack([z, np.tile(self._static_vector(s), (len(z), 1))])

    def _inputs(self, z: np.ndarray) -> np.ndarray:
        """Per step: scaled target (0 where missing), observed flag, covariates (0 where missing)."""
        observed = ~np.isnan(z[:, :1])
        return np.column_stack([np.nan_to_num(z[:, :1]), observed.astype(float), np.nan_to_num(z[:, 1:])])

    @staticmethod
    def _relative(window: np.ndarray) -> tuple[np.ndarray, float]:
        """The window with its target channel taken relative to the window's mean observed level, and that level.

        Forecasting relative to the recent level lets the model carry a trend past the range it was trained on
        (the level is added back to the forecast), as DeepAR scales each window by its mean.
        """
        observed = window[:, 1] > 0
        level = float(window[observed, 0].mean()) if observed.any() else 0.0
        out = window.copy()
        out[:, 0] = np.where(observed, window[:, 0] - level, 0.0)
        return out, level

    def _window_tensors(
        self, series: list[Series], ends: list[int], *, last_only: bool = False
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Windows whose horizon ends at or before ``ends[i]`` in series i: every one (training), or with
        ``last_only`` the one ending exactly there (the validation or test horizon). Inputs (N, W, n_inputs), future
        covariates (N, H, F), targets (N, H), all relative to each window's level."""
        W, H, n_f = self._window, self.config.horizon, self._n_future
        xs, fs, ys = [], [], []
        for s, end in zip(series, ends, strict=True):
            z = self._scaled(s)
            inp = self._inputs(z)
            starts = [end - H - W] if last_only else range(0, end - W - H + 1)
            for start in starts:
                if start < 0:
                    raise ValueError(
                        f"Series {shown(s.key)} is too short for a window of {W} steps before its last {H}."
                    )
                target = z[start + W : start + W + H, 0]
                if not last_only and np.isnan(target).all():
                    continue
                x, level = self._relative(inp[start : start + W])
                xs.append(x)
                fs.append(np.nan_to_num(z[start + W : start + W + H, z.shape[1] - n_f :]))
                ys.append(target - level)
        if not xs:
            raise ValueError(
                f"Too few points for one training window of {W} input steps plus a horizon of {H}: the shortest "
                f"series has {min(ends)} training points. Lower the input window (input_window=) or the horizon, or "
                "give more history."
            )
        return tuple(torch.tensor(np.stack(a), dtype=torch.float32) for a in (xs, fs, ys))  # type: ignore[return-value]

    # ---- fit / predict ----------------------------------------------------------------------------------------
    def fit(self, data: Any, run_dir: str | os.PathLike[str] | None = None, *, resume: bool = False) -> Forecaster:
        """Train on the whole table (every series). The last horizon of each series validates for early stopping."""
        data = as_table(data)
        series = prepare_series(data, self.config)
        # season None: the main period of the timestamps (a given season is kept; train_run and backtest warn)
        self.config, self.season_ = resolve_season(self.config.resolved(), data, series, warn=False)
        cfg = self.config
        shortest = min(len(s.y) for s in series)
        if cfg.horizon >= shortest:
            raise ValueError(
                f"The horizon ({cfg.horizon} steps) must be shorter than the history; the shortest series has "
                f"{shortest} points."
            )
        check_season(cfg.season, shortest, cfg.horizon)
        longest = max(2 * cfg.season, cfg.horizon, cfg.residual_period or 1)
        self._window = cfg.input_window or min(longest, max(1, (shortest - cfg.horizon) // 2))
        self._fit_static_encoding(series)
        self.trained_until = {s.key: str(s.time[-1]) for s in series}
        ends = [len(s.y) for s in series]
        self.interval_shift = 0.0
        budget = cfg.train.max_minutes
        start = time.monotonic()
        if cfg.calibrate_intervals:
            held = [n - cfg.horizon for n in ends]
            if min(held) - self._window - cfg.horizon + 1 >= 1:
                self._train(series, held, None, None, False, minutes=None if budget is None else budget / 2)
                self.interval_shift = self._conformal_shift(series, ends)
            else:
                logger.warning("too little history to hold out a horizon for calibration: intervals not calibrated")
        if resume and run_dir is not None and latest_checkpoint(run_dir) is None:
            resume = False  # the crash came before the final fit wrote its first checkpoint (during calibration)
        left = None if budget is None else max(budget - (time.monotonic() - start) / 60, budget / 20)
        use_val = cfg.train.early_stopping_patience is not None
        self._train(series, ends, run_dir, resume=resume, use_val=use_val, minutes=left)
        return self

    def _train(
        self, series: list[Series], ends: list[int], run_dir: Any, resume: bool = False, use_val: bool = False,
        minutes: float | None = None,
    ) -> None:  # fmt: skip
        """Fit scales and a fresh model on each series up to ``ends[i]`` (its last horizon validating if use_val),
        within ``minutes`` (None: no budget)."""
        cfg = self.config
        train_cfg = cfg.train.replace(
            early_stopping_patience=cfg.train.early_stopping_patience if use_val else None, monitor="val_loss",
            max_minutes=minutes,
        )  # fmt: skip
        device = resolve_device(train_cfg.device)
        seed_everything(train_cfg.seed)
        self.scales = {}
        train_end = [n - cfg.horizon for n in ends] if use_val else ends
        for s, end in zip(series, train_end, strict=True):
            self._fit_scales(s, end)  # training part only: no leakage from the validation horizon
        x, fut, y = self._window_tensors(series, train_end)
        self.model = build_net(x.shape[2], self._n_future, cfg)
        quantiles = torch.tensor(cfg.quantiles, dtype=torch.float32, device=device)
        val = [self._window_tensors(series, ends, last_only=True)] if use_val else None

        def loss_fn(model, batch, state):
            xb, fb, yb = batch
            if isinstance(model, ForecastEnsemble):  # each member by its own loss (not one loss of their mean)
                out = model.member_outputs(xb, fb, yb)  # (K, B, H, Q)
                loss = torch.stack([pinball_loss(o, yb, quantiles) for o in out]).mean()
                return StepOutput(loss=loss, n_items=xb.shape[0])
            return StepOutput(loss=pinball_loss(model(xb, fb, yb), yb, quantiles), n_items=xb.shape[0])

        with on_training_device(self.model, device):  # predicts and saves on the CPU
            trainer = task_trainer(self.model, loss_fn, cfg, kind=KIND, run_dir=run_dir, train=train_cfg)
            batches = _Windows(x, fut, y, train_cfg.batch_size, train_cfg.seed)
            self.history_ = trainer.fit(batches, val_data=val, resume=resume)
        self.model.eval()

    def _conformal_shift(self, series: list[Series], ends: list[int]) -> float:
        """The CQR correction: the ceil((n+1)(1-alpha))-th smallest of max(lower - y, y - upper) over the held-out
        horizon of every series (scaled units); 1 - alpha is the nominal coverage of the outer quantiles."""
        x, f, y = self._window_tensors(series, ends, last_only=True)
        assert self.model is not None
        with torch.no_grad():
            q = torch.sort(self.model(x, f), dim=-1).values  # (S, H, Q)
        scores = torch.maximum(q[..., 0] - y, y - q[..., -1])[~torch.isnan(y)]  # (n,)
        n = scores.numel()
        if n == 0:
            return 0.0
        nominal = max(self.config.quantiles) - min(self.config.quantiles)
        k = min(n, math.ceil((n + 1) * nominal))
        return float(torch.sort(scores).values[k - 1])

    def _check_fitted(self) -> DirectForecastNet | RecurrentForecastNet | ForecastEnsemble:
        if self.model is None:
            raise RuntimeError("This Forecaster is not fitted yet: call fit(data) first (or Forecaster.load(run_dir)).")
        return self.model

    def _unscale(self, key: str, values: np.ndarray) -> np.ndarray:
        mean, std = self.scales[key]
        out = values * std[0] + mean[0]
        return np.exp(out) if self.config.transform == "log" else out

    def _model_in(self, dtype: torch.dtype) -> DirectForecastNet | RecurrentForecastNet | ForecastEnsemble:
        """The fitted network in ``dtype``: itself for float32, else a copy kept until the network is replaced."""
        model = self._check_fitted()
        if dtype == torch.float32:
            return model
        cached = getattr(self, "_copies", {}).get(dtype)
        if cached is None or cached[0] is not model:
            cached = (model, copy.deepcopy(model).to(dtype).eval())
            self._copies = {**getattr(self, "_copies", {}), dtype: cached}
        return cached[1]

    def rolling_medians(self, data: Any, *, dtype: torch.dtype = torch.float32) -> dict[str, np.ndarray]:
        """The median forecast from every origin of every series: ``{key: (T, horizon)}``, row ``t`` holding the
        forecast of steps ``t .. t + horizon - 1`` made from the ``input_window`` steps before ``t`` (NaN where there
        is no full window before ``t``). For models without future covariates; used by anomaly detection.

        ``dtype=torch.float64`` runs a float64 copy of the network: the forecast of an origin then no longer depends
        on how many origins share its batch (float32 matrix kernels sum in a blocking order chosen per batch size and
        per CPU, which moves a forecast by ~1e-6); the anomaly detector scores this way so that its stream and its
        batch scores agree on every CPU."""
        model = self._model_in(dtype)
        self._network_alone("rolling_medians")
        if self.config.future_covariates:
            raise ValueError("rolling_medians reads no future covariates; use a model trained without them.")
        median = list(self.config.quantiles).index(0.5)
        out = {}
        for s in prepare_series(data, self.config):
            if s.key not in self.scales:
                raise ValueError(f"Series {s.key!r} was not in the training data: no scaling is known for it.")
            inp = self._inputs(self._scaled(s))
            static = torch.tensor(self._static_vector(s), dtype=dtype)  # (S,), empty without statics
            W, T = self._window, len(s.y)
            result = np.full((T, self.config.horizon), np.nan)
            origins = list(range(W, T + 1))
            for chunk in range(0, len(origins), 512):
                batch = origins[chunk : chunk + 512]
                rel = [self._relative(inp[o - W : o]) for o in batch]
                x = torch.tensor(np.stack([r[0] for r in rel]), dtype=dtype)
                levels = np.array([r[1] for r in rel])[:, None]
                with torch.no_grad():
                    fut = static.expand(len(batch), self.config.horizon, -1)  # (n, H, S)
                    q = model(x, fut)[:, :, median].numpy()  # (n, H)
                values = self._unscale(s.key, q + levels)
                for row, o in zip(values, batch, strict=True):
                    if o < T:
                        result[o] = row
            out[s.key] = result
        return out

    def predict(self, history: Any, future: Any = None) -> Any:
        """Forecast the ``horizon`` steps after the end of ``history`` (every series in it).

        Args:
            history: a table like the training data (all its columns); the last ``input_window`` steps are read.
            future: with future covariates, a table of the next ``horizon`` rows per series (``[id,] time`` and the
                future covariate columns).

        Returns:
            A DataFrame: ``[id,] time, step, q0.1, q0.5, q0.9`` (one column per quantile; ``q0.5`` is the point).
        """
        pd = require_pandas()
        model = self._check_fitted()
        cfg = self.config
        n_f = len(cfg.future_covariates)
        ahead = self._future_table(future) if n_f else {}
        rows = []
        for s in prepare_series(history, cfg):
            if s.key not in self.scales:
                raise ValueError(f"Series {shown(s.key)} was not in the training data: no scaling is known for it.")
            if len(s.y) < self._window:
                raise ValueError(
                    f"Series {shown(s.key)} has {len(s.y)} points; the model reads the last {self._window}."
                )
            inp, level = self._relative(self._inputs(self._scaled(s))[-self._window :])  # (W, n_inputs)
            fcov = np.zeros((cfg.horizon, 0))
            if n_f:
                if s.key not in ahead:
                    raise ValueError(
                        f"The future covariates' table (future=, --future-csv) has no rows for series {shown(s.key)}; "
                        f"it needs {cfg.horizon} of them."
                    )
                mean, std = self.scales[s.key]
                fcov = np.nan_to_num((ahead[s.key] - mean[-n_f:]) / std[-n_f:])
            if self.static_encoding:  # (H, F + S): the static covariates ride with the future ones
                fcov = np.column_stack([fcov, np.tile(self._static_vector(s), (cfg.horizon, 1))])
            values = self._quantiles(model, s.key, inp, level, fcov)  # (H, Q)
            if cfg.combine == "statistical":
                values = self._combined(values, s.y)
            if s.freq is not None:
                times = pd.date_range(s.time[-1], periods=cfg.horizon + 1, freq=s.freq)[1:]
            else:  # irregular: steps of the last observed spacing
                times = [s.time[-1] + (s.time[-1] - s.time[-2]) * (h + 1) for h in range(cfg.horizon)]
            for h in range(cfg.horizon):
                row = {"time": times[h], "step": h + 1}
                row.update({f"q{qq:g}": float(values[h, i]) for i, qq in enumerate(cfg.quantiles)})
                rows.append({cfg.id: s.key, **row} if cfg.id else row)
        return pd.DataFrame(rows)

    @property
    def periods(self) -> list[int]:
        """The seasonalities the statistical forecasts of ``combine`` model: the season, then the timestamps' others."""
        season = self.config.season or 1
        return [season, *[p for p in self.season_.get("periods", []) if p not in (1, season)]]

    def _combined(self, values: np.ndarray, history: np.ndarray) -> np.ndarray:
        """(H, Q) quantiles moved so that the median is the mean of the network's and the statistical forecasts."""
        from .baselines import combination_members, statistical_forecast

        H = self.config.horizon
        median = values[:, list(self.config.quantiles).index(0.5)]
        stats = []
        for name in combination_members(history.size, self.periods):
            try:
                stats.append(statistical_forecast(name, history, H, self.periods))
            except (ValueError, NotImplementedError, ArithmeticError, np.linalg.LinAlgError):
                logger.warning(
                    "%s cannot forecast this history (%d points): left out of the average", name, history.size
                )
        return values + (np.mean([median, *stats], axis=0) - median)[:, None]

    def _network_alone(self, what: str) -> None:
        if self.config.combine == "statistical":
            raise ValueError(
                f"{what} runs the network alone, and this forecaster averages it with statistical forecasts "
                "(combine='statistical'), which need each series' whole history: use predict, or train with "
                "--set combine=none."
            )

    def _quantiles(self, model: nn.Module, key: str, inp: np.ndarray, level: float, fcov: np.ndarray) -> np.ndarray:
        """(horizon, Q) forecasts in the data's units from one relative window inp (W, n_inputs) and fcov (H, F+S)."""
        x = torch.tensor(inp, dtype=torch.float32)[None]
        f = torch.tensor(fcov, dtype=torch.float32)[None]
        with torch.no_grad():
            q = np.sort(model(x, f)[0].numpy(), axis=1)  # (H, Q); sorted so that quantiles never cross
        return self._unscale(key, self._widen(q) + level)

    def forecast_window(self, values: Any, series: str | None = None) -> np.ndarray:
        """The ``(horizon, len(quantiles))`` forecast after ``values``, the raw target's latest points, oldest first
        (NaN for a missing one; the last ``input_window`` are read): :meth:`predict` without a table, for a stream of
        readings. Models with covariates need their values: use :meth:`predict`.

        Args:
            values: at least ``input_window`` numbers.
            series: which training series' scaling to use; needed only when the model was trained on several.
        """
        model = self._check_fitted()
        self._network_alone("forecast_window (a stream of values)")
        cfg = self.config
        covariates = [*cfg.past_covariates, *cfg.future_covariates, *cfg.static_covariates]
        if covariates:
            raise ValueError(
                f"This forecaster reads covariates {covariates}; a stream of target values alone cannot feed them. "
                "Call predict with a table, or train without covariates for streaming."
            )
        if series is None:
            if len(self.scales) != 1:
                raise ValueError(f"This forecaster knows {len(self.scales)} series; name one (series=, one of "
                                 f"{sorted(self.scales)[:5]}...).")  # fmt: skip
            series = next(iter(self.scales))
        if series not in self.scales:
            raise ValueError(f"Series {shown(series)} was not in the training data: no scaling is known for it.")
        y = np.asarray(values, dtype=float).reshape(-1)
        if len(y) < self._window:
            raise ValueError(f"{len(y)} values given; the model reads the last {self._window}.")
        if np.isinf(y).any():
            raise ValueError("The values hold an infinite number; pass finite numbers (NaN marks a missing one).")
        y = y[-self._window :]
        if np.isnan(y).all():
            raise ValueError(f"All of the last {self._window} values are missing; no forecast can be made from them.")
        empty = np.zeros((len(y), 0))
        s = Series(series, None, y, empty, empty, 0)
        inp, level = self._relative(self._inputs(self._scaled(s)))  # (W, n_inputs)
        return self._quantiles(model, series, inp, level, np.zeros((cfg.horizon, 0)))

    def evaluate(self, data: Any) -> dict[str, Any]:
        """Score the fitted model on ``data``'s last ``horizon`` steps per series, forecast from what precedes them.

        Returns:
            ``{"series": {key: {mae, rmse, mase, smape, coverage}}, "mean": {...}}``; MASE is scaled by the
            in-sample seasonal-naive error of the history before the held-out tail.
        """
        self._check_fitted()
        cfg = self.config
        table = as_table(data)
        series = prepare_series(table, cfg)
        short = [s.key for s in series if len(s.y) < cfg.horizon + self._window]
        if short:
            raise ValueError(
                f"Series {short[:3]} have fewer than {cfg.horizon + self._window} points: evaluate needs the model's "
                f"window ({self._window}) before a held-out horizon of {cfg.horizon}."
            )
        origins = {s.key: s.time[len(s.y) - cfg.horizon] for s in series}
        pd_ = require_pandas()
        seen = [k for k, t in origins.items() if k in self.trained_until and t <= pd_.Timestamp(self.trained_until[k])]
        if seen:
            k = seen[0]
            raise ValueError(
                f"The held-out horizon of series {shown(k)} starts at {origins[k]}, inside the data the model was "
                f"trained on (up to {self.trained_until[k]}): scores there would not be out of sample. Evaluate on a "
                "table that runs past the training data, or use backtest (lstmkit forecast backtest), which refits."
            )
        history = slice_table(table, cfg, origins)
        future = future_rows(table, cfg, origins) if cfg.future_covariates else None
        pred = self.predict(history, future=future)
        lo, hi = min(cfg.quantiles), max(cfg.quantiles)
        scores = {}
        for s in series:
            rows = pred[pred[cfg.id] == s.key] if cfg.id else pred
            n = len(s.y) - cfg.horizon
            scores[s.key] = summarize(
                s.y[n:], rows["q0.5"].to_numpy(), s.y[:n], cfg.season,
                rows[f"q{lo:g}"].to_numpy(), rows[f"q{hi:g}"].to_numpy(),
            )  # fmt: skip
        first = next(iter(scores.values()))
        return {"series": scores, "mean": {m: nan_mean([v[m] for v in scores.values()]) for m in first}}

    def _widen(self, q: np.ndarray) -> np.ndarray:
        """Move the quantiles below the median down and those above it up by the conformal shift, never past it."""
        qs = np.asarray(self.config.quantiles)  # increasing (checked by the config)
        mid = q[:, qs == 0.5]
        out = q.copy()
        out[:, qs < 0.5] = np.minimum(q[:, qs < 0.5] - self.interval_shift, mid)
        out[:, qs > 0.5] = np.maximum(q[:, qs > 0.5] + self.interval_shift, mid)
        return out

    def _future_table(self, future: Any) -> dict[str, np.ndarray]:
        """The future covariates per series, (horizon, F), from the ``future=`` table."""
        pd = require_pandas()
        cfg = self.config
        if future is None:
            raise ValueError(
                f"This model reads future covariates {shown_list(cfg.future_covariates)}: give their values over the "
                f"next {cfg.horizon} rows per series, a table with those columns (future=, --future-csv FILE)."
            )
        missing = [c for c in [cfg.time, *cfg.future_covariates, *([cfg.id] if cfg.id else [])] if c not in future]
        if missing:
            raise ValueError(
                f"The future covariates' table (future=, --future-csv) lacks column(s) {shown_list(missing)}; it has "
                f"{shown_list(future.columns)}."
            )
        groups = future.groupby(cfg.id, sort=True) if cfg.id else [("series", future)]
        out = {}
        for key, g in groups:
            g = g.assign(**{cfg.time: pd.to_datetime(g[cfg.time])}).sort_values(cfg.time)
            if len(g) < cfg.horizon:
                raise ValueError(
                    f"The future covariates' table (future=, --future-csv) holds {len(g)} rows for series "
                    f"{shown(key)}; the horizon needs {cfg.horizon}."
                )
            out[str(key)] = g[list(cfg.future_covariates)].to_numpy(dtype=float)[: cfg.horizon]
        return out

    @property
    def run_kind(self) -> str:
        """The kind its runs are saved as (``config.json``'s ``kind``), which its ONNX export records."""
        return KIND

    def onnx_graphs(self, streaming: bool = False, rng: np.random.Generator | None = None) -> list[CheckedGraph]:
        """This model as ONNX graphs, each with sample inputs and the model's own outputs for them: the network on its
        scaled inputs (``x``, ``future``) -> ``quantiles``; with ``streaming``, the recurrent strategy's step.
        :func:`lstmkit.export.onnx.export_onnx` checks them and writes the files; ``rng`` draws the samples (default:
        seed 0). Raises ValueError where a graph cannot express the model (the reason)."""
        from .onnx import forecaster_graphs

        self._network_alone("An ONNX graph")
        return forecaster_graphs(self, streaming, np.random.default_rng(0) if rng is None else rng)

    # ---- persistence ------------------------------------------------------------------------------------------
    def save(self, run_dir: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """config.json (the forecast config, window and series keys) + model.safetensors + scales in extra."""
        model = self._check_fitted()
        keys = sorted(self.scales)
        extra = {f"scale/{i}": torch.tensor(self.scales[k]) for i, k in enumerate(keys)}
        cfg = {"forecast": self.config.to_dict(), "window": self._window, "series": keys,
               "interval_shift": self.interval_shift, "static_encoding": self.static_encoding,
               "trained_until": self.trained_until, "season": self.season_,
               "n_inputs": model.encoder.input_size, "n_future": self._n_future}  # fmt: skip
        return runs.save_run(run_dir, KIND, cfg, model, extra, overwrite=overwrite)

    @classmethod
    def load(cls, run_dir: str | os.PathLike[str]) -> Forecaster:
        saved = runs.read_run_config(run_dir, KIND)["config"]
        f = cls(ForecastConfig.from_dict(saved["forecast"]))
        f._window = saved["window"]
        f.interval_shift = float(saved.get("interval_shift", 0.0))
        f.static_encoding = saved.get("static_encoding", {})
        f.trained_until = saved.get("trained_until", {})
        f.season_ = saved.get("season", {})
        f.model = build_net(saved["n_inputs"], saved["n_future"], f.config)
        f.model.load_state_dict(runs.read_state_dict(run_dir))
        f.model.eval()
        extra = runs.read_extra_tensors(run_dir)
        f.scales = {k: extra[f"scale/{i}"].numpy() for i, k in enumerate(saved["series"])}
        return f
