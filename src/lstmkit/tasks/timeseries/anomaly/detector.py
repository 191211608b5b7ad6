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

The window and the forecast steps follow the series' period (``season``), which fit detects from the
autocorrelation of the normal data where none is given (:func:`resolve_period`, :mod:`.period`): a heart rate or a
sensor has no calendar, but its cycle shows in the data. Without a period the window is 32 steps.

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
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from .... import runs
from ....train import StepOutput, resolve_device, seed_everything
from ...training import on_training_device, task_trainer
from .config import KIND, AnomalyConfig, NotFittedError
from .data import as_table, labels_of, series_values
from .encdec import SCORE_DTYPE, EncDecNet, WindowBatches, combine_windows, full_windows
from .metrics import detection_metrics
from .period import derived_steps_ahead, derived_window, detect_period
from .statistics import best_f_beta_threshold, fit_gaussian, mahalanobis, tail_quantile
from .stream import AnomalyStream

if TYPE_CHECKING:
    from ....nn.onnx_graph import CheckedGraph

__all__ = ["AnomalyDetector"]

_CHUNK = 4096  # windows per forward pass when scoring


@runs.register_kind(KIND)
class AnomalyDetector:
    """LSTM anomaly detector trained on normal data: ``fit``, ``score``, ``predict`` (= ``detect``), ``evaluate``,
    ``stream``, ``save``, ``load``. See the module docstring for both methods and the threshold.

    Args:
        config: an :class:`AnomalyConfig`, or its fields as keyword arguments (``method=``, ``input_window=``,
            ``steps_ahead=``, ``season=``, ``false_alarm_rate=``, ...; the sections' fields flat, ``hidden_size=``,
            ``epochs=``, or as sections, ``net=``, ``train=``, as :meth:`AnomalyConfig.from_dict` reads them).
    """

    def __init__(self, config: AnomalyConfig | None = None, **kwargs: Any) -> None:
        self.config = config if config is not None else AnomalyConfig.from_dict(kwargs)
        self.requested = self.config  # as given: fit fills season, input_window and steps_ahead from the data
        self.period_: dict[str, Any] = {}  # the season, window and forecast steps fit used, and where they came from
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

    def scoring_net(self) -> EncDecNet:
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
        table = as_table(values, cfg.target, cfg.time)
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
        it (see :func:`combine_windows`); NaN for a missing value or a step in no full window without a gap."""
        assert self.scale is not None
        net = self.scoring_net()
        L = self.config.window
        z = (values - self.scale[0]) / self.scale[1]
        x, whole = full_windows(z, L)  # (N, L), (N,)
        errors = np.full(x.shape, np.nan)
        for s in range(0, len(x), _CHUNK):
            xb = torch.tensor(x[s : s + _CHUNK], dtype=SCORE_DTYPE)[..., None]  # (B, L, 1)
            with torch.no_grad():
                _, state = net.encoder(xb)  # (N, B, H) each: N layers
                recon = net.reconstruct(state, L).numpy()  # (B, L)
            errors[s : s + _CHUNK] = np.abs(recon - x[s : s + _CHUNK])
        errors[~whole] = np.nan
        out = combine_windows(errors, len(z))
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
        values = series_values(normal, self.requested.target, self.requested.time, "normal data")
        self.config, self.period_ = resolve_period(self.requested, values)
        cfg = self.config
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
        assert cfg.steps_ahead is not None and cfg.season is not None
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
            self.mean, self.precision = fit_gaussian(errors)
            v = series_values(validation, cfg.target, cfg.time, "validation data")
            y = labels_of(validation, validation_labels, len(v), cfg.time, "validation_labels")
            self.threshold = best_f_beta_threshold(self._score_values(v), y, cfg.beta)
        else:
            half = len(errors) // 2
            self.mean, self.precision = fit_gaussian(errors[:half])
            held = mahalanobis(errors[half:], self.mean, self.precision)
            self.threshold = tail_quantile(held, cfg.false_alarm_rate)
        return self

    def _fit_forecaster(self, train: np.ndarray, run_dir: Any, resume: bool) -> None:
        from ..forecasting import Forecaster

        cfg = self.config  # the forecaster is built and trained with this detector's net and train sections
        season = cfg.season if self.period_.get("seasonal_residual", True) else 1  # (runs before: their season)
        self.forecaster = Forecaster(
            target=cfg.target, time=cfg.time, horizon=cfg.steps_ahead, season=season,
            input_window=cfg.input_window, calibrate_intervals=False, net=cfg.net.to_dict(), train=cfg.train.to_dict(),
        ).fit(as_table(train, cfg.target, cfg.time), run_dir=run_dir, resume=resume)  # fmt: skip
        self.history_ = self.forecaster.history_

    def _fit_encdec(self, values: np.ndarray, n_train: int, run_dir: Any, resume: bool) -> None:
        cfg = self.config
        L = cfg.window
        train = values[:n_train]
        mean, std = float(np.nanmean(train)), float(np.nanstd(train))
        self.scale = (mean, std if np.isfinite(std) and std > 0 else 1.0)  # the training part only: no leakage
        z = (values - self.scale[0]) / self.scale[1]
        if n_train < L + 7 or not full_windows(z[:n_train], L)[1].any():
            raise ValueError(
                f"{n_train} normal training points hold too few windows of {L} steps (at least {L + 7} points "
                "without gaps are needed). Give more normal data or a shorter window (input_window=, --window)."
            )
        x, whole = full_windows(z[:n_train], L)
        x_train = torch.tensor(x[whole], dtype=torch.float32)[..., None]  # (N, L, 1)
        val = None
        xv, whole_v = full_windows(z[n_train:], L) if len(z) - n_train >= L else (None, None)
        if xv is not None and whole_v.any():  # held-out windows: the val_loss curve in metrics.csv
            val = [(torch.tensor(xv[whole_v], dtype=torch.float32)[..., None],)]
        device = resolve_device(cfg.train.device)
        seed_everything(cfg.train.seed)
        self.model = EncDecNet(cfg.net.hidden_size, cfg.net.num_layers)

        def loss_fn(model: nn.Module, batch: tuple[Tensor, ...], state: Any) -> StepOutput:
            (xb,) = batch  # (B, L, 1)
            return StepOutput(loss=torch.mean((model(xb) - xb[..., 0]) ** 2), n_items=xb.shape[0])

        with on_training_device(self.model, device):  # scores and saves on the CPU
            trainer = task_trainer(self.model, loss_fn, cfg, kind=KIND, run_dir=run_dir)
            batches = WindowBatches(x_train, cfg.train.batch_size, cfg.train.seed)
            self.history_ = trainer.fit(batches, val_data=val, resume=resume)
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
        return mahalanobis(self._errors(values), self.mean, self.precision)

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
        values = series_values(data, cfg.target, cfg.time)
        if context is None:
            return self._score_values(values)
        before = series_values(context, cfg.target, cfg.time, "context")
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
        y = labels_of(data, labels, len(scores), self.config.time)
        return {**detection_metrics(y, self.flags(scores)), "threshold": self.threshold}

    def stream(self) -> AnomalyStream:
        """A scorer fed one value at a time that carries state between calls (see :class:`AnomalyStream`)."""
        self._check_fitted()
        return AnomalyStream(self)

    @property
    def run_kind(self) -> str:
        """The kind its runs are saved as (``config.json``'s ``kind``), which its ONNX export records."""
        return KIND

    def onnx_graphs(self, streaming: bool = False, rng: np.random.Generator | None = None) -> list[CheckedGraph]:
        """This model as ONNX graphs, each with sample inputs and the model's own outputs for them: the forecaster's
        network and its median (method "prediction") or the encoder-decoder ("reconstruction").
        :func:`lstmkit.export.onnx.export_onnx` checks them and writes the files; ``rng`` draws the samples (default:
        seed 0). Raises ValueError where a graph cannot express the model (the reason)."""
        from .onnx import anomaly_detector_graphs

        return anomaly_detector_graphs(self, streaming, np.random.default_rng(0) if rng is None else rng)

    # ---- persistence ---------------------------------------------------------------------------------------------
    def save(self, run_dir: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """config.json (the config, threshold, scaling) + model.safetensors (the network's weights: the forecaster's
        or the encoder-decoder's) + the error Gaussian in extra tensors; the prediction method's forecaster also in
        ``run_dir/forecaster`` (its config and scaling, and the run it trained in)."""
        self._check_fitted()
        run_dir = Path(run_dir)
        extra = {"mean": torch.tensor(self.mean), "precision": torch.tensor(self.precision)}
        saved: dict[str, Any] = {"anomaly": self.config.to_dict(), "threshold": self.threshold, "period": self.period_}
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
        period = saved.pop("period", {})  # runs saved before the period was detected have none
        fields = saved["anomaly"] if "anomaly" in saved else saved  # early runs saved the fields flat
        det = cls(AnomalyConfig.from_dict(fields))
        det.period_ = period
        if det.config.steps_ahead is None or det.config.season is None:  # not written by a fit: refuse, don't guess
            raise ValueError(f"{run_dir}: config.json names no season or steps_ahead; it was not saved by fit.")
        if det.config.method == "prediction":
            from ..forecasting import Forecaster

            det.forecaster = Forecaster.load(Path(run_dir) / "forecaster")
            weights = runs.read_state_dict(run_dir)
            if weights:  # the run's own weights rule (runs saved before they were kept here have none)
                det.forecaster.model.load_state_dict(weights)
        else:
            det.scale = tuple(saved["scale"])  # type: ignore[assignment]
            det.model = EncDecNet(det.config.net.hidden_size, det.config.net.num_layers)
            det.model.load_state_dict(runs.read_state_dict(run_dir))
            det.model.eval()
        extra = runs.read_extra_tensors(run_dir)
        det.mean, det.precision, det.threshold = extra["mean"].numpy(), extra["precision"].numpy(), threshold
        return det


def resolve_period(config: AnomalyConfig, values: np.ndarray) -> tuple[AnomalyConfig, dict[str, Any]]:
    """The config fit uses: ``season`` detected from the normal values where None (:func:`detect_period`; 1 when
    none is found), then ``input_window`` and ``steps_ahead`` derived from it where None (:func:`derived_window`,
    :func:`derived_steps_ahead`; the window at most half the training points, those before the held-out tail). Given
    values are kept. Returns the config and a record for ``result.json``: the values used, each one's source
    ("given", "detected", "derived") and the detection's autocorrelation and reason."""
    n_train = len(values) - int(len(values) * config.validation_fraction)
    # the longest period whose two seasons fit the training points before the forecast steps (run._check_season)
    longest = (n_train - (2 * derived_steps_ahead(None) if config.method == "prediction" else 6) - 1) // 2
    found = detect_period(values, longest) if config.season is None else None
    season = config.season if found is None else (found.period or 1)
    period = season if season > 1 else None
    steps = config.steps_ahead or derived_steps_ahead(period)
    window = config.input_window
    if window is None:
        room = (n_train - (steps if config.method == "prediction" else 0)) // 2  # at least two windows' worth of data
        residual = config.method == "prediction" and found is None and period is not None
        window = max(2, min(derived_window(period, residual), max(room, period or 2)))
    record: dict[str, Any] = {
        "season": season, "season_source": "given" if found is None else "detected",
        "input_window": window, "input_window_source": "given" if config.input_window else "derived",
    }  # fmt: skip
    if config.method == "prediction":
        record |= {"steps_ahead": steps, "steps_ahead_source": "given" if config.steps_ahead else "derived"}
        # the forecaster's seasonal-naive residual repeats the last period exactly: right for a period the user
        # gives (a calendar's), wrong for one read from the data, whose cycles drift (a heart rate's, a machine's)
        record["seasonal_residual"] = found is None and period is not None
    if found is not None:
        record |= {"acf": round(found.acf, 4), "reason": found.reason}
    return config.replace(season=season, input_window=window, steps_ahead=steps), record
