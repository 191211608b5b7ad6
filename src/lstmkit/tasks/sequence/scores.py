"""Classification scores of predicted labels against true ones: accuracy, balanced accuracy, macro-F1, confusion."""

from __future__ import annotations

import json
from typing import Any

import numpy as np


def classification_scores(y_true: np.ndarray, y_pred: np.ndarray, classes: np.ndarray) -> dict[str, Any]:
    """Accuracy, balanced accuracy (mean recall over the classes present in ``y_true``), macro-F1 (over the classes
    in ``y_true`` or ``y_pred``; F1 = 0 where undefined) and the confusion matrix (rows: true class, columns:
    predicted, both in the order of ``classes``)."""
    index = {c: i for i, c in enumerate(classes.tolist())}
    t = np.array([index[c] for c in np.asarray(y_true).tolist()], dtype=np.int64)
    p = np.array([index[c] for c in np.asarray(y_pred).tolist()], dtype=np.int64)
    K = len(classes)
    confusion = np.zeros((K, K), dtype=np.int64)  # (K true, K predicted)
    np.add.at(confusion, (t, p), 1)
    tp, support, predicted = np.diag(confusion), confusion.sum(1), confusion.sum(0)
    present = support > 0
    recall = np.divide(tp, support, out=np.zeros(K), where=present)
    precision = np.divide(tp, predicted, out=np.zeros(K), where=predicted > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(K), where=(precision + recall) > 0)
    used = present | (predicted > 0)
    return {
        "accuracy": float((t == p).mean()),
        "balanced_accuracy": float(recall[present].mean()),
        "macro_f1": float(f1[used].mean()),
        "n": int(len(t)),
        "classes": json.loads(json.dumps(classes.tolist())),
        "confusion_matrix": confusion.tolist(),
    }
