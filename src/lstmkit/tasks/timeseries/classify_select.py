"""Choosing the classifier on the user's own training series: stratified cross-validation over a small portfolio.

``lstmkit classify train`` does this by default (``ClassifyConfig.selection="auto"``): every candidate of
:data:`PORTFOLIO` is trained on k-1 folds of the training series and scored on the k-th (k from the smallest class,
at most :data:`MAX_FOLDS`; one stratified hold-out when a class has a single series), the candidate with the highest
mean validation accuracy wins (ties: the earlier one), and the caller refits it on all the training series. 1-NN
Euclidean is scored on the same folds, as a baseline in the same table. The test split is never read here.

The whole selection and the refit share one time budget (``max_minutes``): each fit gets the time left divided by
the fits left, a candidate that no longer fits is skipped (the table says so), and the first candidate, the one that
wins most often on the bundled training splits, always runs.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["MAX_FOLDS", "PORTFOLIO", "Selection", "portfolio_fields", "select_classifier", "stratified_folds"]

MAX_FOLDS = 3
# In order: the first runs even when the budget is short, and ties go to the earlier one. Each is a set of
# SequenceClassifier parameters on top of the run's own. LSTM-FCN (Karim et al. 2017): the convolutional branch beside
# the LSTM, whose "dimension shuffle" has the LSTM read each series transposed (one step of T features); that needs
# series of one length, so on series of varying lengths the LSTM reads them step by step instead (on the bundled
# equal-length sets the two scored alike on hold-outs, the shuffle in 70% of the time).
PORTFOLIO: tuple[tuple[str, dict[str, Any]], ...] = (
    ("lstm-fcn", {"conv_branch": True, "dimension_shuffle": True}),
    ("lstm-fcn, step-wise lstm", {"conv_branch": True}),
    ("lstm, attention pooling", {"pooling": "attention"}),
    ("lstm", {}),
)
STANDS_IN = {"lstm-fcn, step-wise lstm": "lstm-fcn"}  # runs only where that one cannot (varying lengths)


def portfolio_fields() -> set[str]:
    """The network settings the portfolio varies (given by hand, they turn selection off)."""
    return {k for _, params in PORTFOLIO for k in params}


@dataclass
class Selection:
    """What :func:`select_classifier` found: the winner's name and parameters, the table (one row per candidate and
    one for 1-NN Euclidean), the folds' description and the seconds it took."""

    chosen: str
    params: dict[str, Any]
    table: list[dict[str, Any]] = field(default_factory=list)
    folds: str = ""
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"chosen": self.chosen, "params": self.params, "folds": self.folds, "seconds": round(self.seconds, 2),
                "table": self.table}  # fmt: skip


def stratified_folds(y: np.ndarray, seed: int, max_folds: int = MAX_FOLDS) -> tuple[list[np.ndarray], str]:
    """Validation index sets over ``y``: k stratified folds, k = min(``max_folds``, the smallest class's size); when
    a class has one series, one stratified hold-out of a third (each class keeps at least one series to train on).

    Returns:
        ``(folds, how)``: the validation indices of each fold and a sentence saying which split it was.
    """
    rng = np.random.default_rng(seed)
    labels, counts = np.unique(y, return_counts=True)
    k = min(max_folds, int(counts.min()))
    if k >= 2:
        fold_of = np.empty(len(y), dtype=np.int64)
        start = 0
        for label in labels:  # deal each class's shuffled members round the folds, continuing where the last ended
            members = rng.permutation(np.flatnonzero(y == label))
            fold_of[members] = (start + np.arange(len(members))) % k
            start = (start + len(members)) % k
        return [np.flatnonzero(fold_of == i) for i in range(k)], f"{k}-fold stratified cross-validation"
    held = []
    for label in labels:
        members = rng.permutation(np.flatnonzero(y == label))
        held.extend(members[: min(int(round(len(members) / 3)), len(members) - 1)].tolist())
    how = f"one stratified hold-out of {len(held)} series (a class has a single series, too few for {max_folds} folds)"
    return [np.sort(np.array(held, dtype=np.int64))], how


def _subset(X: Any, index: np.ndarray) -> Any:
    return X[index] if isinstance(X, np.ndarray) else [X[i] for i in index]


def _equal_lengths(X: Any) -> bool:
    return isinstance(X, np.ndarray) or len({np.shape(x) for x in X}) == 1


def select_classifier(
    base: Any, X: Any, y: np.ndarray, *, max_minutes: float | None, seed: int, log: Any = logger.info,
    portfolio: tuple[tuple[str, dict[str, Any]], ...] = PORTFOLIO,
) -> Selection:  # fmt: skip
    """Cross-validate ``portfolio`` on ``(X, y)`` with ``base``'s other parameters; see the module docstring.

    Args:
        base: a SequenceClassifier whose parameters every candidate starts from (its ``max_minutes`` is replaced
            by each fit's share of the budget).
        max_minutes: the budget of the selection and the refit after it, together (None: none).
        seed: draws the folds (and each fit's weights, through ``base.seed``).

    Returns:
        A :class:`Selection`; its ``params`` are the winner's, to set on ``base`` for the refit.
    """
    from .classification import one_nn_euclidean

    t0 = time.perf_counter()
    y = np.asarray(y)
    folds, how = stratified_folds(y, seed)
    if not folds or not len(folds[0]):  # every class has a single series: nothing can be held out
        name, params = portfolio[0]
        return Selection(name, dict(params), [], "no selection: every class has a single training series, none can be "
                         "held out", time.perf_counter() - t0)  # fmt: skip

    def train_of(val: np.ndarray) -> np.ndarray:
        return np.setdiff1d(np.arange(len(y)), val)

    equal = _equal_lengths(X)
    skipped = [(n, "needs series of one length") for n, p in portfolio if p.get("dimension_shuffle") and not equal]
    names = {n for n, _ in portfolio} - {n for n, _ in skipped}
    skipped += [(n, f"stands in for {STANDS_IN[n]} on series of varying lengths") for n, _ in portfolio
                if STANDS_IN.get(n) in names]  # fmt: skip
    runnable = [(n, p) for n, p in portfolio if n not in dict(skipped)]
    budget = None if max_minutes is None else max_minutes * 60.0
    reserve = 0.0  # seconds kept for the refit: the first candidate's longest fit (the refit trains as many steps)
    table: list[dict[str, Any]] = []
    log(f"selection: {len(runnable)} candidates, {how}")
    for name, params in runnable:
        row: dict[str, Any] = {"candidate": name, "params": params}
        started = time.perf_counter()
        first = not table
        scores, steps, fits = [], [], []
        for i, val in enumerate(folds):
            share = None
            if budget is not None:
                remaining = budget - (time.perf_counter() - t0)
                left = len(folds) - i
                share = remaining / (left + 1) if first else (remaining - reserve) / left
                if not first and share < 0.25 * reserve:  # too little to train this candidate as long as the first
                    break
            clf = base.__class__(**{**base.get_params(), **params, "progress": False,
                                    "max_minutes": None if share is None else max(share, 1.0) / 60.0})  # fmt: skip
            fit_start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # an underfit fold is a low score here, not a warning
                clf.fit(_subset(X, train_of(val)), y[train_of(val)])
            fits.append(time.perf_counter() - fit_start)
            scores.append(float(np.mean(clf.predict(_subset(X, val)) == y[val])))
            steps.append(int(clf.history_[-1]["step"]) if clf.history_ else 0)
        if first:
            reserve = max(fits)
        seconds = time.perf_counter() - started
        if len(scores) < len(folds):
            row.update(cv_accuracy=None, fold_accuracies=[], steps=None, seconds=round(seconds, 2),
                       status="skipped: time budget spent")  # fmt: skip
        else:
            row.update(cv_accuracy=round(float(np.mean(scores)), 4), fold_accuracies=[round(s, 4) for s in scores],
                       steps=int(np.median(steps)), seconds=round(seconds, 2), status="ok")  # fmt: skip
            log(f"selection: {name}: accuracy {np.mean(scores):.4f} over {len(folds)} fold(s), {seconds:.1f} s")
        table.append(row)
    order = [n for n, _ in portfolio]
    for name, reason in sorted(skipped, key=lambda r: order.index(r[0])):
        row = {"candidate": name, "params": dict(portfolio)[name], "cv_accuracy": None, "fold_accuracies": [],
               "steps": None, "seconds": 0.0, "status": f"skipped: {reason}"}  # fmt: skip
        table.insert(min(order.index(name), len(table)), row)
    started = time.perf_counter()
    nn = []
    for val in folds:
        pred, _ = one_nn_euclidean(_subset(X, train_of(val)), y[train_of(val)], _subset(X, val))
        nn.append(float(np.mean(pred == y[val])))
    seconds = round(time.perf_counter() - started, 2)
    table.append({"candidate": "1-NN Euclidean (baseline)", "params": {}, "cv_accuracy": round(float(np.mean(nn)), 4),
                  "fold_accuracies": [round(s, 4) for s in nn], "steps": None, "seconds": seconds,
                  "status": "baseline"})  # fmt: skip
    scored = [r for r in table if r["status"] == "ok"]
    best = max(scored, key=lambda r: r["cv_accuracy"])  # max keeps the first of equals: ties go to the earlier
    for r in table:
        r["chosen"] = r is best
    selection = Selection(best["candidate"], dict(best["params"]), table, how, time.perf_counter() - t0)
    if table[-1]["cv_accuracy"] > best["cv_accuracy"]:
        selection.warnings.append(
            f"1-NN Euclidean scored {table[-1]['cv_accuracy']:.3f} in the selection's {how}, above every LSTM "
            f"candidate (best: {best['candidate']}, {best['cv_accuracy']:.3f}); the LSTM is kept, but on this data "
            "the baseline is likely the better classifier. A larger time budget (--max-minutes) may close the gap."
        )
    log(f"selection: chose {best['candidate']} ({best['cv_accuracy']:.4f}) in {selection.seconds:.1f} s")
    return selection
