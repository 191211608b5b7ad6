"""Classification rows of the scorecard: ``classify train``'s defaults (its cross-validated selection) on each bundled
UCR/UEA problem's published split, against aeon's 1-NN DTW and MiniRocket and the 1-NN Euclidean baseline the run
itself reports; the test split is read once, by the finished model.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["names", "run", "summarize"]


def names() -> list[str]:
    """The bundled classification problems."""
    from ..datasets import list_datasets

    return [d.name for d in list_datasets("classification")]


def _aeon_x(X: Any) -> Any:
    """lstmkit's (N, T, C) or list of (T_i, C) -> aeon's (N, C, T) or list of (C, T_i)."""
    return X.transpose(0, 2, 1) if isinstance(X, np.ndarray) else [x.T for x in X]


def _peer(make: Any, train: tuple[Any, np.ndarray], test: tuple[Any, np.ndarray]) -> tuple[float | None, float, str]:
    start = time.monotonic()
    try:
        model = make().fit(_aeon_x(train[0]), train[1])
        accuracy = float((np.asarray(model.predict(_aeon_x(test[0]))) == test[1]).mean())
        return accuracy, time.monotonic() - start, ""
    except Exception as e:  # e.g. unequal lengths a peer refuses: reported, not fatal to the card
        return None, time.monotonic() - start, f"failed: {str(e).splitlines()[0][:80]}"


def run(name: str, *, seed: int = 0, max_minutes: float | None = None) -> dict[str, Any]:
    """One problem's row: lstmkit's default classifier, 1-NN Euclidean, 1-NN DTW and MiniRocket."""
    from aeon.classification.convolution_based import MiniRocketClassifier
    from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier

    from ..datasets import load_classification, load_dataset
    from ..tasks.timeseries.classification import train_run
    from ..tasks.timeseries.classify_config import ClassifyConfig

    given: dict[str, Any] = {"id": "id", "label": "label", "step": "step", "split": "split",
                             "train": {"seed": seed, "progress": False}}  # fmt: skip
    if max_minutes is not None:
        given["train"]["max_minutes"] = max_minutes
    cfg = ClassifyConfig.from_dict(given)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.monotonic()
        summary = train_run(load_dataset(name), cfg, Path(tmp) / "run", source=name)
        seconds = time.monotonic() - start
        result = json.loads((Path(tmp) / "run" / "result.json").read_text())
    train, test = load_classification(name, "train"), load_classification(name, "test")
    train = (train[0], np.asarray(train[1]).astype(str))
    test = (test[0], np.asarray(test[1]).astype(str))
    scores = {"lstmkit": summary["accuracy"], "one_nn_euclidean": result["one_nn_euclidean"]["accuracy"]}
    times = {"lstmkit": round(seconds, 1)}
    notes = {}
    peers = {
        "one_nn_dtw": lambda: KNeighborsTimeSeriesClassifier(n_neighbors=1, distance="dtw"),
        "minirocket": lambda: MiniRocketClassifier(random_state=seed),
    }
    for peer, make in peers.items():
        scores[peer], secs, note = _peer(make, train, test)
        times[peer] = round(secs, 1)
        if note:
            notes[peer] = note
    chosen = (result.get("selection") or {}).get("chosen")
    return {"dataset": name, "seed": seed, "n_train": summary["n_train"], "n_test": summary["n_test"],
            "scores": scores, "seconds": times, "notes": notes, "chosen": chosen}  # fmt: skip


def summarize(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """Mean accuracy per model over the problems (None where a model has no score on one of them)."""
    out: dict[str, float | None] = {}
    for name in rows[0]["scores"]:
        values = [r["scores"].get(name) for r in rows]
        out[name] = None if any(v is None for v in values) else float(np.mean(values))
    return out
