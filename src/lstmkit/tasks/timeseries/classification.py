"""Time-series classification: labelled series from a table (or a bundled UCR/UEA problem) to a run directory.

A long-form table holds one row per series and time step: an id column naming the series, a label column (the same
value on every row of a series), optionally a step column that orders the rows within a series and a split column
(``train`` / ``test``), and numeric feature columns, one per channel. The bundled problems
(:func:`lstmkit.datasets.load_dataset`) come in exactly this layout (``id``, ``split``, ``step``, ``dim_0..``,
``label``). Series may differ in length; the classifier reads each one only up to its own end.

:func:`train_run` chooses the network by stratified cross-validation on the training series (``selection="auto"``,
:mod:`lstmkit.tasks.timeseries.classify_select`; the table goes into ``result.json``), fits a
:class:`lstmkit.SequenceClassifier` on the training series (its normalisation fitted on them only), scores it on the
test series beside a 1-nearest-neighbour Euclidean baseline computed on the same split, and writes the run
directory: ``config.json`` (this module's :class:`ClassifyConfig` under ``data``, the estimator's and the model's
config), ``model.safetensors``, ``metrics.csv``, ``result.json``, ``predictions.csv``,
``confusion.png``, ``attention.png`` (attention pooling) and ``report.html``.

1-NN Euclidean on variable lengths: Euclidean distance needs equal lengths, so every series (train and test) is
linearly resampled to the longest training length first; the result says so. This is one common choice, not the
UCR archive's (its published figures for variable-length sets use its own padded files).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ... import runs
from ..._atomic import atomic_write_bytes
from ...data.tables import cap, check_finite, check_numeric, check_rows, row_of, shown
from ..sequence.estimators import SequenceClassifier, UnderfitWarning, classification_scores
from .classify_config import ClassifyConfig, ClassifyTrain

__all__ = ["ClassifyConfig", "ClassifyTrain", "Series", "evaluate_table", "one_nn_euclidean", "predict_table",
           "read_series", "train_run"]  # fmt: skip

logger = logging.getLogger(__name__)

SPLITS = ("train", "test")
SELECTION_FILE = "selection.json"  # the selection, written before the refit, so that --resume refits the same network


@dataclass
class Series:
    """Series read from a table: ``X`` (N, T, C) float32 when every length is equal, else a list of (T_i, C)."""

    ids: np.ndarray  # (N,)
    X: Any
    y: np.ndarray | None  # (N,) labels as strings, or None when the table has no labels
    split: np.ndarray | None  # (N,) "train" / "test", or None
    features: list[str]

    def subset(self, mask: np.ndarray) -> Series:
        index = np.flatnonzero(mask)
        X = self.X[index] if isinstance(self.X, np.ndarray) else _stack_if_equal([self.X[i] for i in index])
        y = None if self.y is None else self.y[index]
        split = None if self.split is None else self.split[index]
        return Series(self.ids[index], X, y, split, self.features)

    def __len__(self) -> int:
        return len(self.ids)


def _pd() -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("Reading tables needs pandas: pip install 'lstmkit[timeseries]'.") from None
    return pd


def _stack_if_equal(seqs: list[np.ndarray]) -> Any:
    return np.stack(seqs) if seqs and len({len(s) for s in seqs}) == 1 else seqs


def _label_text(value: Any) -> str:
    """One label as text: 1.0 (a pandas integer column with gaps) reads as "1", like the rows without gaps."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _check_column(table: Any, name: str, role: str) -> None:
    if name not in table.columns:
        columns = ", ".join(cap(str(c)) for c in table.columns[:20]) + (", ..." if len(table.columns) > 20 else "")
        raise ValueError(f"The table has no column {shown(name)} (the {role}); its columns are: {columns}.")


def _infer_features(table: Any, roles: set[str]) -> list[str]:
    """Every numeric column but the roles'. A column of numbers with a few cells that are not (``oops``, ``n/a``),
    which pandas reads as text, is refused naming the first such cell: leaving it out would train on the rest in
    silence. A column of mostly text is not a feature."""
    pd = _pd()
    out = []
    for c in table.columns:
        col = table[c]
        if c in roles or pd.api.types.is_bool_dtype(col):
            continue
        if not pd.api.types.is_numeric_dtype(col):
            numbers = pd.to_numeric(col, errors="coerce").notna()
            if numbers.sum() < (col.notna() & ~numbers).sum():
                continue  # text: not a feature
            check_numeric(
                table, c, name="Feature column",
                advice="fix or empty that cell, or name the feature columns with --features.",
            )  # fmt: skip
        out.append(c)
    return out


def read_series(
    table: Any, cfg: ClassifyConfig, *, features: list[str] | None = None, need_labels: bool = True
) -> Series:
    """The labelled series in ``table`` (a DataFrame in long form, see the module docstring).

    Args:
        table: one row per series and step.
        cfg: the column roles (``id``, ``label``, ``step``, ``split``, ``features``).
        features: the channels a trained model expects; when given, the table's channels must be exactly these.
        need_labels: whether every series must have a label (training, evaluation) or labels are optional.

    Raises:
        ValueError: one sentence naming the column, series or value at fault: a missing column, a non-numeric
            feature, a series without a label or with two, a missing or non-finite value, a repeated step, a split
            value other than train / test, or channels that differ from the model's.
    """
    pd = _pd()
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"Expected a table (pandas DataFrame) of series in long form, got {type(table).__name__}.")
    check_rows(table)
    _check_column(table, cfg.id, "series id, --id")
    has_labels = cfg.label in table.columns
    if need_labels:
        _check_column(table, cfg.label, "class label, --label")
    for name, role in ((cfg.step, "step order, --step"), (cfg.split, "train/test split, --split")):
        if name is not None:
            _check_column(table, name, role)
    roles = {c for c in (cfg.id, cfg.label, cfg.step, cfg.split) if c is not None}
    if cfg.features:
        for c in cfg.features:
            _check_column(table, c, "feature, --features")
            if c in roles:
                role = _role_of(c, cfg)
                raise ValueError(f"Column {shown(c)} is both a feature and the series' {role}; give it one role.")
        chosen = list(cfg.features)
    else:
        chosen = _infer_features(table, roles)
        if not chosen:
            raise ValueError(
                f"The table has no numeric feature columns besides {', '.join(sorted(roles))}; add one or name the "
                "channels with --features."
            )
    for c in chosen:
        check_numeric(table, c, name="Feature column", advice="fix or empty that cell, or give only numeric features.")
        check_finite(table, c)
    if features is not None and chosen != list(features):
        missing = [c for c in features if c not in table.columns]
        detail = f"it lacks {', '.join(missing)}" if missing else f"it has {', '.join(map(str, chosen))}"
        raise ValueError(
            f"The model was trained on the channels {', '.join(features)} ({len(features)}), but this table's "
            f"channels differ ({detail}); give a table with the training channels."
        )
    if table[cfg.id].isna().any():
        row = row_of(table, table.index[int(np.flatnonzero(table[cfg.id].isna().to_numpy())[0])])
        raise ValueError(f"{row.capitalize()} has no series id (column {shown(cfg.id)} is empty); every row needs one.")

    ids, seqs, labels, splits = [], [], [], []
    for key, rows in table.groupby(cfg.id, sort=False):
        if cfg.step is not None:
            if rows[cfg.step].duplicated().any():
                step = rows[cfg.step][rows[cfg.step].duplicated()].iloc[0]
                raise ValueError(
                    f"Series {shown(key)} has step {shown(step)} twice; each step of a series needs one row."
                )
            rows = rows.sort_values(cfg.step, kind="stable")
        values = rows[chosen].to_numpy(dtype=np.float32)  # (T_i, C)
        if not np.isfinite(values).all():
            t, c = np.argwhere(~np.isfinite(values))[0]
            where = row_of(table, rows.index[t])
            where = f"step {shown(rows[cfg.step].iloc[t])} ({where})" if cfg.step is not None else where
            raise ValueError(
                f"Series {shown(key)} has a missing or non-finite value in {shown(chosen[c])} at {where}; impute or "
                "drop it before training."
            )
        if has_labels:
            present = rows[cfg.label].dropna().unique()
            if len(present) == 0 and need_labels:
                raise ValueError(
                    f"Series {shown(key)} has no label (column {shown(cfg.label)} is empty on all its rows); label "
                    "every series or drop it."
                )
            if len(present) > 1:
                listed = ", ".join(cap(_label_text(v)) for v in present[:3])
                raise ValueError(
                    f"Series {shown(key)} has more than one label ({listed}); a series needs one label on all its rows."
                )
            labels.append(_label_text(present[0]) if len(present) else None)
        if cfg.split is not None:
            parts = rows[cfg.split].dropna().astype(str).unique()
            if len(parts) != 1 or parts[0] not in SPLITS:
                listed = ", ".join(cap(p) for p in parts[:3]) if len(parts) else "nothing"
                raise ValueError(
                    f"Series {shown(key)} has the split value(s) {listed} in column {shown(cfg.split)}; each series "
                    "needs exactly one of train or test on all its rows."
                )
            splits.append(parts[0])
        ids.append(key)
        seqs.append(values)
    y = np.array(labels, dtype=object) if has_labels else None
    if y is not None and all(v is not None for v in y):
        y = y.astype(str)
    return Series(np.array(ids), _stack_if_equal(seqs), y, np.array(splits) if splits else None, chosen)


def _role_of(column: str, cfg: ClassifyConfig) -> str:
    return next(role for role in ("id", "label", "step", "split") if getattr(cfg, role) == column)


def _resample(x: np.ndarray, length: int) -> np.ndarray:
    """(T, C) -> (length, C) by linear interpolation over the series' own time axis."""
    if len(x) == length:
        return x
    old = np.linspace(0.0, 1.0, len(x))
    new = np.linspace(0.0, 1.0, length)
    return np.stack([np.interp(new, old, x[:, c]) for c in range(x.shape[1])], axis=1).astype(np.float32)


def one_nn_euclidean(X_train: Any, y_train: np.ndarray, X_test: Any) -> tuple[np.ndarray, str]:
    """The 1-nearest-neighbour Euclidean classifier (the UCR archive's baseline) on the series as given.

    Returns:
        ``(predicted labels (N_test,), how)``: ``how`` says what was done to unequal lengths (resampled to the
        longest training length by linear interpolation) or "equal lengths".
    """
    how = "equal lengths"
    if not (isinstance(X_train, np.ndarray) and isinstance(X_test, np.ndarray) and X_train.shape[1] == X_test.shape[1]):
        length = max(len(x) for x in X_train)
        X_train = np.stack([_resample(np.asarray(x), length) for x in X_train])
        X_test = np.stack([_resample(np.asarray(x), length) for x in X_test])
        how = f"lengths vary: every series resampled to {length} steps (linear interpolation) first"
    # fmt: off
    a = X_train.reshape(len(X_train), -1).astype(np.float64)                           # (N_train, T*C)
    b = X_test.reshape(len(X_test), -1).astype(np.float64)                             # (N_test, T*C)
    d2 = (b**2).sum(1)[:, None] - 2 * b @ a.T + (a**2).sum(1)[None, :]                 # (N_test, N_train)
    # fmt: on
    return np.asarray(y_train)[d2.argmin(axis=1)], how


def _holdout(series: Series, fraction: float, seed: int) -> np.ndarray:
    """(N,) "train" / "test": a stratified random ``fraction`` of each class to test, at least one left to train."""
    rng = np.random.default_rng(seed)
    split = np.full(len(series), "train", dtype=object)
    for label in np.unique(series.y):
        members = rng.permutation(np.flatnonzero(series.y == label))
        take = min(int(round(len(members) * fraction)), len(members) - 1)
        split[members[:take]] = "test"
    return split.astype(str)


def _write_json(path: Path, document: dict[str, Any]) -> None:
    atomic_write_bytes(path, (json.dumps(document, indent=2) + "\n").encode("utf-8"))


def _predictions_frame(clf: SequenceClassifier, part: Series) -> Any:
    pd = _pd()
    proba = clf.predict_proba(part.X)  # (N, K)
    frame = pd.DataFrame({"id": part.ids})
    if part.split is not None:
        frame["split"] = part.split
    if part.y is not None:
        frame["label"] = part.y
    frame["predicted"] = clf.classes_[proba.argmax(axis=1)]
    for k, name in enumerate(clf.classes_.tolist()):
        frame[f"p_{name}"] = proba[:, k].round(6)
    return frame


def train_run(
    table: Any, config: ClassifyConfig, out: str | os.PathLike[str], *, source: str | None = None,
    resume: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Fit a classifier on the training series of ``table`` and write the run directory (see the module docstring).

    The test series (the split column's ``test`` rows, or a stratified ``test_fraction``) are used only to score the
    finished model and the 1-NN baseline; with neither, the scores are on the training series and say so.

    Returns:
        A JSON-ready summary: the run directory, the sizes, the test (or training) scores and the baseline's.

    Raises:
        FileExistsError: if ``out`` already holds a finished run. ValueError: for bad input (see :func:`read_series`).
    """
    from ...report import write_report
    from ...viz.plots import plot_attention, plot_confusion

    out = Path(out)
    if runs.is_finished(out):
        raise FileExistsError(f"{out} already holds a finished classifier; choose another --out or delete it.")
    series = read_series(table, config)
    split = series.split
    if split is None and config.test_fraction > 0:
        split = _holdout(series, config.test_fraction, config.train.seed)
        series.split = split
    train = series.subset(split == "train") if split is not None else series
    test = series.subset(split == "test") if split is not None else None
    if len(train) == 0:
        raise ValueError(
            f"No series is marked train in column {shown(config.split)}; the classifier needs some to learn."
        )
    if test is not None and len(test) == 0:
        test = None
    classes = np.unique(train.y)
    if len(classes) < 2:
        raise ValueError(
            f"The training series hold a single class ({shown(classes[0])}); a classifier needs at least two."
        )
    if test is not None:
        unseen = sorted(set(test.y.tolist()) - set(classes.tolist()))
        if unseen:
            raise ValueError(
                f"The test series include the class(es) {', '.join(unseen[:5])}, which no training series has; "
                "every test class needs training examples."
            )

    t0 = time.perf_counter()
    clf, selection = config.classifier(), None
    if config.selection == "auto":
        given = _hand_set_net(config)
        if given:
            logger.info("selection off: the net settings %s were given by hand", ", ".join(given))
        elif resume and (out / SELECTION_FILE).exists():  # chosen before the crash: the refit resumes with it
            from .classify_select import Selection

            selection = Selection(**json.loads((out / SELECTION_FILE).read_text()))
            logger.info("selection: %s, as chosen before the run stopped", selection.chosen)
        else:
            from .classify_select import select_classifier

            selection = select_classifier(clf, train.X, train.y, max_minutes=config.train.max_minutes,
                                          seed=config.train.seed, log=logger.info)  # fmt: skip
            out.mkdir(parents=True, exist_ok=True)
            _write_json(out / SELECTION_FILE, {**selection.to_dict(), "warnings": selection.warnings})
        if selection is not None:
            left = None if clf.max_minutes is None else max(clf.max_minutes - selection.seconds / 60.0, 1 / 60)
            clf.set_params(**selection.params, max_minutes=left)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnderfitWarning)  # said once below, as a log line, and kept in result.json
        clf.fit(train.X, train.y, run_dir=out, resume=resume)
    clf.max_minutes = config.train.max_minutes  # saved as the run's budget, not the part the refit had left
    seconds = time.perf_counter() - t0
    fit_warnings = [*(selection.warnings if selection else []), *clf.fit_warnings_]
    for message in fit_warnings:
        logger.warning(message)
    clf.data_config_ = {**config.to_dict(), "resolved_features": series.features, "source": source}
    clf.save(out)  # the model first: a failure in a step after training cannot lose it

    scored, scored_on = (test, "test") if test is not None else (train, "train")
    scores = clf.evaluate(scored.X, scored.y)
    result: dict[str, Any] = {
        "source": source, "scored_on": scored_on, "n_train": len(train), "n_test": 0 if test is None else len(test),
        "channels": len(series.features), "classes": clf.classes_.tolist(), "epochs": len(clf.history_),
        "train_seconds": round(seconds, 2), "lstm": scores, "lstm_train": clf.evaluate(train.X, train.y),
        "warnings": fit_warnings, "selection": None if selection is None else selection.to_dict(),
    }  # fmt: skip
    if test is not None:
        nn_pred, how = one_nn_euclidean(train.X, train.y, test.X)
        result["one_nn_euclidean"] = {**classification_scores(test.y, nn_pred, clf.classes_), "lengths": how}
    else:
        result["note"] = "no test split: the scores are on the training series; the 1-NN baseline needs a test split"

    frame = _predictions_frame(clf, scored)
    atomic_write_bytes(out / "predictions.csv", frame.to_csv(index=False).encode("utf-8"))
    plot_confusion(
        np.asarray(scores["confusion_matrix"]), [str(c) for c in clf.classes_], out / "confusion.png",
        title=f"{source or 'classifier'}: {scored_on} confusion (accuracy {scores['accuracy']:.3f})",
    )  # fmt: skip
    if clf.pooling == "attention":
        pick = _examples(scored, 4)
        part = scored.subset(np.isin(np.arange(len(scored)), pick))
        weights = clf.predict_attention(part.X)  # (n, T_max)
        seqs = [np.asarray(x) for x in part.X]
        plot_attention(
            [x for x in seqs], [w[: len(x)] for w, x in zip(weights, seqs, strict=True)], out / "attention.png",
            titles=[f"series {i}: label {lab}, predicted {p}" for i, lab, p in zip(
                part.ids, part.y, clf.predict(part.X), strict=True)],
        )  # fmt: skip
    _write_json(out / "result.json", result)
    write_report(out)
    summary = {
        "run_dir": str(out), "scored_on": scored_on, "n_train": len(train), "n_test": result["n_test"],
        "accuracy": scores["accuracy"], "balanced_accuracy": scores["balanced_accuracy"],
        "macro_f1": scores["macro_f1"], "epochs": len(clf.history_), "train_seconds": result["train_seconds"],
        "warnings": result["warnings"], "selection": result["selection"],
    }  # fmt: skip
    summary["baselines"] = {}  # each baseline's scores on the same series, as the LSTM's above
    if "one_nn_euclidean" in result:
        summary["one_nn_euclidean_accuracy"] = result["one_nn_euclidean"]["accuracy"]
        keys = ("accuracy", "balanced_accuracy", "macro_f1")
        summary["baselines"]["one_nn_euclidean"] = {k: result["one_nn_euclidean"][k] for k in keys}
    return summary


def _hand_set_net(config: ClassifyConfig) -> list[str]:
    """The net settings the selection's portfolio varies that ``config`` changes from their defaults."""
    from ..sequence.config import SequenceNet
    from .classify_select import portfolio_fields

    default = SequenceNet()
    return sorted(f"net.{k}" for k in portfolio_fields() if getattr(config.net, k) != getattr(default, k))


def _examples(part: Series, n: int) -> np.ndarray:
    """Up to ``n`` indices of ``part``, one per class first, in order."""
    seen: dict[str, int] = {}
    for i, label in enumerate(part.y):
        seen.setdefault(label, i)
    picks = list(seen.values())[:n]
    picks += [i for i in range(len(part)) if i not in picks][: n - len(picks)]
    return np.array(sorted(picks))


def _saved_config(clf: SequenceClassifier, overrides: dict[str, Any]) -> tuple[ClassifyConfig, list[str] | None]:
    """The table layout the model was trained with (its ``data`` config), with ``overrides`` on top."""
    saved = dict(clf.data_config_ or {})
    features = saved.pop("resolved_features", None)
    saved.pop("source", None)
    given = {k: v for k, v in overrides.items() if v is not None and v != ()}
    if "features" in given:
        features = None  # the caller names the channels; only their number is checked against the model
    cfg = ClassifyConfig.from_dict({**saved, **given}).with_overrides({"train.progress": False})
    return cfg, features


def _table_series(clf: SequenceClassifier, table: Any, overrides: dict[str, Any], need_labels: bool) -> Series:
    cfg, features = _saved_config(clf, overrides)
    if cfg.split is not None and cfg.split not in getattr(table, "columns", ()) and not overrides.get("split"):
        cfg = dataclasses.replace(cfg, split=None)  # the training table's split column is optional on new data
    series = read_series(table, cfg, features=features, need_labels=need_labels)
    if len(series.features) != clf.input_size_:
        raise ValueError(
            f"The table has {len(series.features)} channels ({', '.join(series.features)}), but the model was "
            f"trained on {clf.input_size_}; give a table with the training channels."
        )
    return series


def predict_table(clf: SequenceClassifier, table: Any, **overrides: Any) -> Any:
    """Predicted class and class probabilities per series of ``table`` (labels, if present, are passed through).

    ``overrides`` are :class:`ClassifyConfig` column roles (``id``, ``step``, ...) that replace the saved layout.
    """
    series = _table_series(clf, table, overrides, need_labels=False)
    return _predictions_frame(clf, series)


def evaluate_table(clf: SequenceClassifier, table: Any, **overrides: Any) -> dict[str, Any]:
    """Scores of ``clf`` on the table's test series (all its series when it has no split column), with the 1-NN
    Euclidean baseline when the table also holds training series."""
    series = _table_series(clf, table, overrides, need_labels=True)
    if series.split is not None and (series.split == "test").any():
        test, train = series.subset(series.split == "test"), series.subset(series.split == "train")
        scored_on = "test"
    else:
        test, train, scored_on = series, None, "all"
    result: dict[str, Any] = {"scored_on": scored_on, "lstm": clf.evaluate(test.X, test.y)}
    if train is not None and len(train) > 0:
        known = set(clf.classes_.tolist())
        if set(train.y.tolist()) <= known:
            pred, how = one_nn_euclidean(train.X, train.y, test.X)
            result["one_nn_euclidean"] = {**classification_scores(test.y, pred, clf.classes_), "lengths": how}
    return result
