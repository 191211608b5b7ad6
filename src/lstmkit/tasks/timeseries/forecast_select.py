"""Choosing a forecaster on the user's own data: :func:`select_forecaster`, what ``lstmkit forecast train`` runs.

The config's "auto" fields (``transform``, ``residual_to``, ``combine``, ``net.members``) are chosen on the user's
history: rolling-origin validation on its last horizons (up to three origins, one horizon apart; the test data, if
any, is never read). The candidates are the direct LSTM with each residual (to seasonal-naive, to the window's mean
seasonal profile, none; with several seasonalities also to seasonal-naive over the longer period) under the transform
a positive series suggests (log), then the winner with the other transform, then the winner's forecasts averaged with
the statistical ones (``combine="statistical"``: AutoETS and AutoTheta, or MSTL and AutoTheta with several
seasonalities; scored from the forecasts already made, no refit). The baselines (seasonal-naive, AutoETS, AutoTheta,
MSTL) are scored on the same origins, and when one of them beats every LSTM candidate the record says so plainly.

The selection and the final fit share the time budget ``train.max_minutes``: the validation fits share 60 % of it
(each gets what is left divided by the fits still to run), the final fit what remains, at least 40 %; the final fit
trains a seed ensemble of as many networks (up to three) as that allows at the speed the validation fits showed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..._atomic import atomic_write_bytes
from .backtest import Fold, check_folds, rolling_folds, score_forecasts, season_periods
from .baselines import baseline_forecasts, combination_members
from .forecast_config import ForecastConfig
from .forecasting import Forecaster
from .metrics import nan_mean, summarize
from .seasonality import resolve_season
from .series import Series, as_table, prepare_series

__all__ = ["Candidate", "Selection", "portfolio", "select_forecaster", "validation_folds"]

logger = logging.getLogger(__name__)

MAX_FOLDS = 3
SELECTION_FILE = "selection.json"  # in the run directory: the choice, which a resumed run reuses
MAX_MEMBERS = 3  # seed-ensemble members of the final fit, when the budget allows
FINAL_SHARE = 0.4  # of the time budget kept for the final fit, however long validation took


@dataclass(frozen=True)
class Candidate:
    """One model of the portfolio: a name for the table and the config fields it sets."""

    name: str
    overrides: Mapping[str, Any]


@dataclass
class Selection:
    """What the selection did: the table rows (candidates and baselines), the choice, and why."""

    folds: list[str] = field(default_factory=list)  # the validation origins
    rows: list[dict[str, Any]] = field(default_factory=list)
    chosen: str | None = None
    skipped: str | None = None  # why no selection ran (too little history), else None
    verdict: str = ""
    members: int | None = None  # the seed ensemble's size the final fit trained (None: as configured)

    def record(self) -> dict[str, Any]:
        """The JSON-ready record ``result.json`` and ``--json`` carry."""
        return {"metric": "mase", "origins": self.folds, "table": self.rows, "chosen": self.chosen,
                "members": self.members, "skipped": self.skipped, "verdict": self.verdict}  # fmt: skip


def _residual_names(season: int) -> dict[str, str]:
    if season <= 1:
        return {"seasonal_naive": "residual to the last value", "none": "no residual"}
    return {"seasonal_naive": "residual to seasonal-naive", "seasonal_mean": "residual to the seasonal mean",
            "none": "no residual"}  # fmt: skip


def portfolio(
    config: ForecastConfig, series: list[Series], longer: tuple[int, ...] = ()
) -> tuple[list[Candidate], str | None]:
    """The first round of candidates (every residual, under the suggested transform; with ``longer``, the periods
    beyond the season the windows can hold, also the residual to seasonal-naive over each) and the transform to try
    on the winner in the second round (None when the transform is given or only one applies)."""
    assert config.season is not None
    positive = all(np.nanmin(s.y) > 0 for s in series)
    if config.transform != "auto":
        first, other = config.transform, None
    else:
        first, other = ("log", "none") if positive else ("none", None)
    residuals = [config.residual_to] if config.residual_to != "auto" else list(_residual_names(config.season))
    if config.strategy == "recurrent":  # its network has no residual: one candidate, not several identical ones
        residuals, longer = ["none"], ()
    names = _residual_names(config.season)
    cands = [
        Candidate(f"{names.get(r, r)}, {first}", {"transform": first, "residual_to": r}) for r in residuals
    ]  # fmt: skip
    if config.residual_to in ("auto", "seasonal_naive") and config.residual_period is None:
        cands += [
            Candidate(f"residual to seasonal-naive over {p} steps, {first}",
                      {"transform": first, "residual_to": "seasonal_naive", "residual_period": p})
            for p in longer
        ]  # fmt: skip
    return cands, other


def validation_folds(config: ForecastConfig, shortest: int) -> int:
    """How many origins the history allows (up to :data:`MAX_FOLDS`), each fold's history holding more than two
    seasons and two horizons; 0 when not even one does."""
    for folds in range(MAX_FOLDS, 0, -1):
        try:
            check_folds(config, shortest, folds, config.horizon)
        except ValueError:
            continue
        if shortest - folds * config.horizon >= 2 * config.horizon + 1:
            return folds
    return 0


class _Clock:
    """The budget: the validation fits share what is left of the first part (each gets what is left divided by their
    number); the final fit gets the rest, never less than :data:`FINAL_SHARE` of the whole."""

    def __init__(self, minutes: float | None, validation_fits: int) -> None:
        self.start, self.minutes, self.fits = time.monotonic(), minutes, validation_fits

    def share(self) -> float | None:
        """Minutes for the next validation fit."""
        if self.minutes is None:
            return None
        left = self.minutes * (1 - FINAL_SHARE) - (time.monotonic() - self.start) / 60
        share = max(left, 0.0) / max(self.fits, 1)
        self.fits -= 1
        return max(share, self.minutes / 200)  # never zero: a fit always takes a few steps

    def final(self) -> float | None:
        """Minutes for the final fit (all of its fits together)."""
        if self.minutes is None:
            return None
        return max(self.minutes - (time.monotonic() - self.start) / 60, self.minutes * FINAL_SHARE)


def select_forecaster(
    data: Any, config: ForecastConfig, *, run_dir: Any = None, resume: bool = False
) -> tuple[Forecaster, Selection]:
    """Choose the "auto" fields of ``config`` on rolling-origin validation, then fit the winner on all of ``data``.

    Args:
        data: the table (every series), as :meth:`Forecaster.fit` takes it.
        config: fields other than "auto" ones are kept as given; ``train.max_minutes`` is the whole budget.
        run_dir, resume: for the final fit (its checkpoints); the validation fits write nothing.

    Returns:
        The fitted forecaster (its config holds the chosen values) and the :class:`Selection`.
    """
    table = as_table(data)
    budget = config.train.max_minutes
    saved = None if run_dir is None else Path(run_dir) / SELECTION_FILE
    if resume and saved is not None and saved.is_file():  # the choice the interrupted run made, not a new one
        doc = json.loads(saved.read_text())
        selection, final = Selection(**doc["selection"]), ForecastConfig.from_dict(doc["final"])
        _check_resumed(config, final, saved)
    else:
        final, selection = _choose(table, config)
        if saved is not None:
            saved.parent.mkdir(parents=True, exist_ok=True)
            document = {"selection": dataclasses.asdict(selection), "final": final.to_dict()}
            atomic_write_bytes(saved, (json.dumps(document, indent=2) + "\n").encode())
    forecaster = Forecaster(final).fit(table, run_dir=run_dir, resume=resume)
    forecaster.config = forecaster.config.replace(
        train=forecaster.config.train.replace(max_minutes=budget)
    )  # the config saved is the user's, its searched fields chosen
    if selection.verdict.startswith("On validation"):
        logger.warning("%s", selection.verdict)
    return forecaster, selection


def _flat(config: ForecastConfig) -> dict[str, Any]:
    out = {}
    for key, value in config.to_dict().items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def _check_resumed(config: ForecastConfig, final: ForecastConfig, saved: Path) -> None:
    """The fields given now (not "auto", not chosen at fit) are those the interrupted run chose with.

    Raises:
        ValueError: naming each field that differs, and how to go on.
    """
    free = {"train.max_minutes", "train.progress", "season", "net.members"}
    now, then = _flat(config), _flat(final)
    changed = [k for k, v in now.items() if k not in free and v not in ("auto", None) and then.get(k) != v]
    if changed:
        shown = ", ".join(f"{k} (now {now[k]!r}, then {then.get(k)!r})" for k in changed[:4])
        raise ValueError(
            f"The interrupted run in {saved.parent} was started with other settings: {shown}. Resume with the same "
            "settings, or start a new run without --resume."
        )


def _choose(table: Any, config: ForecastConfig) -> tuple[ForecastConfig, Selection]:
    """The final fit's config (the "auto" fields chosen, its budget and ensemble size set) and the selection."""
    series = prepare_series(table, config)
    config, season = resolve_season(config, table, series, warn=False)
    assert config.season is not None
    shortest = min(len(s.y) for s in series)
    if config.horizon >= shortest:  # said before any progress is shown (Forecaster.fit says the same)
        raise ValueError(
            f"The horizon ({config.horizon} steps) must be shorter than the history; the shortest series has "
            f"{shortest} points."
        )
    selection = Selection()
    budget = config.train.max_minutes
    auto = [k for k in ForecastConfig.AUTO_RULE if getattr(config, k) == "auto"]
    folds = validation_folds(config, shortest) if auto and config.horizon < shortest else 0
    final_fits = 2 if config.calibrate_intervals else 1
    if not folds:
        selection.skipped = (
            "nothing to choose: every searched field is given" if not auto else
            f"too little history to validate on: the shortest series has {shortest} points, which do not hold a "
            f"horizon of {config.horizon} after two seasons of {config.season} and two horizons"
        )  # fmt: skip
        final = config.resolved()
    else:
        history = shortest - folds * config.horizon  # the first origin's
        longer = tuple(
            p for p in season_periods(config, season)[1:]
            if p > config.season and (history - config.horizon) // 2 >= p and (config.input_window or p) >= p
        )  # fmt: skip
        first, other = portfolio(config, series, longer)
        clock = _Clock(budget, (len(first) + (other is not None)) * folds)
        splits = rolling_folds(table, config, series, folds, config.horizon)
        selection.folds = [f.origin for f in splits]
        start = time.monotonic()
        baselines = _baseline_forecasts(series, splits, config.horizon, season_periods(config, season))
        base_seconds = (time.monotonic() - start) / len(baselines[0][0])
        scored = [_validate(c, config, series, splits, clock) for c in first]
        best = min(scored, key=_rank)
        if other is not None:
            name = best["name"].rsplit(", ", 1)[0] + f", {other}"
            scored.append(_validate(Candidate(name, {**best["config"], "transform": other}), config, series, splits,
                                    clock))  # fmt: skip
            best = min(scored, key=_rank)
        if config.combine == "auto" and best["mase"] is not None and not config.future_covariates:
            scored.append(_combination(best, series, splits, baselines, config, season_periods(config, season)))
        names = list(baselines[0][0])
        table_rows = [{k: v for k, v in r.items() if k != "forecasts"} for r in scored]
        for name in names:
            forecasts = [[per_series[name] for per_series in fold] for fold in baselines]
            selection.rows.append(
                {
                    "name": name,
                    "kind": "baseline",
                    **_scores(series, splits, forecasts, config),
                    "seconds": round(base_seconds, 2),
                }
            )
        selection.rows[:0] = table_rows
        chosen = min(scored, key=_rank)
        selection.chosen = chosen["name"]
        selection.verdict = _verdict(chosen, [r for r in selection.rows if r["kind"] == "baseline"])
        final = config.replace(**{"combine": "none" if config.combine == "auto" else config.combine,
                                   **chosen["config"]}).resolved()  # fmt: skip
        minutes = clock.final()
        if final.net.members is None:  # as many members as the budget left allows at the speed measured, up to 3
            per_fit = chosen["seconds"] / 60 / folds  # the chosen candidate's validation fit, on a shorter history
            fits = math.inf if minutes is None else minutes / max(per_fit * final_fits * 1.5, 1e-9)
            fits = 1 if chosen.get("cut_by_budget", False) else fits  # a cut fit would be cut shorter still
            selection.members = int(max(1, min(MAX_MEMBERS, fits)))
            final = final.replace(net=final.net.replace(members=selection.members))
        final = final.replace(train=final.train.replace(max_minutes=minutes))
    return final, selection


def _baseline_forecasts(
    series: list[Series], splits: list[Fold], horizon: int, periods: list[int]
) -> list[list[dict[str, np.ndarray]]]:
    """Per fold, per series: ``{baseline: (horizon,) forecast}`` from the history before the fold's origin."""
    return [
        [baseline_forecasts(s.y[:n], horizon, periods) for s, n in zip(series, fold.cuts, strict=True)]
        for fold in splits
    ]


def _scores(
    series: list[Series], splits: list[Fold], forecasts: list[list[np.ndarray]], config: ForecastConfig
) -> dict[str, float | None]:
    """Mean MASE and sMAPE over folds and series of point forecasts ``forecasts[fold][series]``."""
    assert config.season is not None
    rows = [
        summarize(s.y[n : n + config.horizon], f, s.y[:n], config.season)
        for fold, per_series in zip(splits, forecasts, strict=True)
        for s, n, f in zip(series, fold.cuts, per_series, strict=True)
    ]
    mean = {m: _finite(nan_mean([r[m] for r in rows])) for m in ("mase", "smape")}
    return mean


def _combination(
    best: dict[str, Any], series: list[Series], splits: list[Fold], baselines: list[list[dict[str, np.ndarray]]],
    config: ForecastConfig, periods: list[int],
) -> dict[str, Any]:  # fmt: skip
    """The best LSTM's validation forecasts averaged with AutoETS' and AutoTheta's: a table row (no refit needed)."""
    forecasts, used = [], set()
    for fold, fold_lstm, fold_base in zip(splits, best["forecasts"], baselines, strict=True):
        per_series = []
        for n, lstm, b in zip(fold.cuts, fold_lstm, fold_base, strict=True):
            names = combination_members(n, periods)  # per series, as Forecaster.predict chooses them
            used.update(names)
            per_series.append(_mean_of([lstm, *(b[name] for name in names)]))
        forecasts.append(per_series)
    shown = {"mstl": "MSTL", "auto_ets": "AutoETS", "auto_theta": "AutoTheta"}
    members = " + ".join(shown[n] for n in ("mstl", "auto_ets", "auto_theta") if n in used)
    return {"name": f"{best['name']} + {members} (mean)", "kind": "combination",
            "config": {**best["config"], "combine": "statistical"}, **_scores(series, splits, forecasts, config),
            "seconds": best["seconds"], "cut_by_budget": best["cut_by_budget"], "forecasts": forecasts}  # fmt: skip


def _mean_of(forecasts: list[np.ndarray]) -> np.ndarray:
    """The mean of the forecasts that exist (a statistical model that refused the history is NaN: left out)."""
    kept = [f for f in forecasts if not np.isnan(f).all()]
    return np.mean(kept, axis=0)


def _validate(
    cand: Candidate, config: ForecastConfig, series: list[Series], splits: list[Fold], clock: _Clock
) -> dict[str, Any]:
    """One candidate fitted on each fold's history and scored on its horizon: a table row (with its forecasts,
    ``[fold][series]``, which the table leaves out)."""
    cfg = config.replace(**cand.overrides, calibrate_intervals=False)
    start = time.monotonic()
    forecasts, error, cut = [], None, False
    for k, fold in enumerate(splits, 1):
        logger.info("validating %s: origin %d of %d", cand.name, k, len(splits))
        fold_cfg = cfg.replace(train=cfg.train.replace(max_minutes=clock.share(), progress=False))
        try:
            model = Forecaster(fold_cfg).fit(fold.history)
        except ValueError as e:  # this candidate cannot fit this history (e.g. log of a value <= 0 in it)
            error = str(e)
            break
        cut = cut or len(model.history_) < fold_cfg.train.epochs  # stopped by its share of the budget
        pred = model.predict(fold.history, future=fold.future)
        forecasts.append(list(score_forecasts(series, fold, model.config, pred)[1].values()))
    row: dict[str, Any] = {"name": cand.name, "kind": "lstm", "config": dict(cand.overrides)}
    row.update({"mase": None, "smape": None} if error else _scores(series, splits, forecasts, config))
    row["seconds"] = round(time.monotonic() - start, 2)
    row["cut_by_budget"] = cut
    if error:
        row["error"] = error
    row["forecasts"] = forecasts
    return row


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _score(row: dict[str, Any]) -> float:
    """The row's validation MASE for ranking (a failed or unscorable candidate ranks last)."""
    return math.inf if row["mase"] is None else row["mase"]


def _rank(row: dict[str, Any]) -> tuple[float, float]:
    """Lower validation MASE first; on a tie, the quicker."""
    return _score(row), row["seconds"]


def _verdict(best: dict[str, Any], baselines: list[dict[str, Any]]) -> str:
    """One sentence on how the chosen LSTM compares with the best baseline on validation."""
    scored = [r for r in baselines if r["mase"] is not None]
    if not scored or best["mase"] is None:
        return f"chose {best['name']}"
    top = min(scored, key=_score)
    if top["mase"] < best["mase"]:
        return (
            f"On validation, the baseline {top['name']} (MASE {top['mase']:.3f}) beat every LSTM candidate (the best, "
            f"{best['name']}, MASE {best['mase']:.3f}); the LSTM is the model returned, but expect the baseline to "
            "forecast better on this data."
        )
    return (
        f"chose {best['name']} (validation MASE {best['mase']:.3f}), ahead of the best baseline, {top['name']} "
        f"({top['mase']:.3f})"
    )
