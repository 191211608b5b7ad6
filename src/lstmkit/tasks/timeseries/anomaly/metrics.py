"""Scoring anomaly detections: point-wise and event-wise precision / recall / F1, and the NAB score.

All functions take boolean (or 0/1) NumPy arrays over time steps: ``labels`` (true anomalies) and ``flags`` (what a
detector raised).

**Point-wise**: every time step is a sample. **Event-wise**: each run of consecutive anomalous labels is one event,
detected if any step in it is flagged (recall = detected events / events); each run of consecutive flags is one alarm,
correct if it touches an event (precision = correct alarms / alarms).

**NAB** (Lavin & Ahmad 2015, "Evaluating Real-time Anomaly Detection Algorithms - the Numenta Anomaly Benchmark"),
written from the paper and the benchmark's documented rules:

- each labelled anomaly gets a window; a window's score is the best of its detections, each weighted by how early it
  came, ``A_TP * sigma(y) / sigma(-1)`` with ``y = -(right - i + 1) / width`` (``-1`` at the window's first step, so
  the earliest detection earns exactly ``A_TP``), or ``-A_FN`` if nothing in it was flagged;
- a flag outside every window costs ``A_FP * sigma(y)`` (negative), with ``y`` the distance past the previous window's
  right edge in units of that window's width minus one (``y = 3``, the full cost, before the first window);
- ``sigma(y) = 2 / (1 + exp(5 y)) - 1`` for ``y < 3``, and ``-1`` from 3 on;
- the first 15 % of the series (at most 750 steps) is a probationary period and is not scored;
- the normalised score is ``100 * (S - S_null) / (S_perfect - S_null)``: 0 for a detector that never fires, 100 for
  one that flags every window at its first step and nothing else.

Profiles (cost matrices): ``standard`` (A_TP 1, A_FP 0.11, A_FN 1), ``reward_low_fp`` (A_FP 0.22),
``reward_low_fn`` (A_FN 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "NAB_PROFILES",
    "NabProfile",
    "detection_metrics",
    "event_scores",
    "nab_score",
    "nab_windows",
    "point_scores",
]


def _bool(a: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D over time steps, got shape {arr.shape}.")
    return arr.astype(bool)


def _prf(tp: float, fp: float, fn: float) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else math.nan
    recall = tp / (tp + fn) if tp + fn else math.nan
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else math.nan
    if tp == 0 and (fp or fn):
        f1 = 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def point_scores(labels: np.ndarray, flags: np.ndarray) -> dict[str, float]:
    """Precision, recall and F1 over time steps."""
    y, f = _bool(labels, "labels"), _bool(flags, "flags")
    if y.shape != f.shape:
        raise ValueError(f"labels and flags differ in length: {y.size} and {f.size}.")
    return _prf(float((y & f).sum()), float((~y & f).sum()), float((y & ~f).sum()))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (start, end) of each run of True values."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(s), int(e) - 1) for s, e in zip(edges[::2], edges[1::2], strict=True)]


def event_scores(labels: np.ndarray, flags: np.ndarray) -> dict[str, float]:
    """Event-wise precision (alarms touching an event), recall (events touched by an alarm) and F1."""
    y, f = _bool(labels, "labels"), _bool(flags, "flags")
    if y.shape != f.shape:
        raise ValueError(f"labels and flags differ in length: {y.size} and {f.size}.")
    events, alarms = _runs(y), _runs(f)
    detected = sum(1 for s, e in events if f[s : e + 1].any())
    correct = sum(1 for s, e in alarms if y[s : e + 1].any())
    precision = correct / len(alarms) if alarms else math.nan
    recall = detected / len(events) if events else math.nan
    if alarms and events and precision + recall > 0:
        f1 = 2 * precision * recall / (precision + recall)
    else:
        f1 = 0.0 if (alarms or events) else math.nan
    return {"precision": precision, "recall": recall, "f1": f1, "events": len(events), "alarms": len(alarms)}


@dataclass(frozen=True)
class NabProfile:
    """NAB's cost matrix: the weight of a true positive, a false positive and a missed window."""

    tp: float = 1.0
    fp: float = 0.11
    fn: float = 1.0


NAB_PROFILES = {
    "standard": NabProfile(1.0, 0.11, 1.0),
    "reward_low_fp": NabProfile(1.0, 0.22, 1.0),
    "reward_low_fn": NabProfile(1.0, 0.11, 2.0),
}


def _sigma(y: float) -> float:
    return -1.0 if y >= 3.0 else 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def nab_windows(length: int, anomalies: list[int], fraction: float = 0.1) -> list[tuple[int, int]]:
    """NAB's anomaly windows: ``fraction`` of the series shared equally by the anomalies, each window centred on its
    anomaly, clipped to the series, overlapping windows merged. Returns inclusive (start, end) index pairs."""
    if not anomalies:
        return []
    width = max(1, int(fraction * length / len(anomalies)))
    windows: list[list[int]] = []
    for a in sorted(anomalies):
        s, e = max(0, a - width // 2), min(length - 1, a + width // 2)
        if windows and s <= windows[-1][1]:
            windows[-1][1] = max(windows[-1][1], e)
        else:
            windows.append([s, e])
    return [(s, e) for s, e in windows]


def nab_score(
    flags: np.ndarray, windows: list[tuple[int, int]], profile: str | NabProfile = "standard", probation: float = 0.15
) -> dict[str, float]:
    """The NAB score of a detector's flags against anomaly windows (see the module docstring).

    Args:
        flags: (T,) booleans, what the detector raised at each step.
        windows: inclusive (start, end) index pairs, sorted and disjoint (e.g. from :func:`nab_windows`).
        profile: a name in :data:`NAB_PROFILES` or a :class:`NabProfile`.
        probation: the share of the series (at most 5,000 x it) not scored at the start.

    Returns:
        ``{"raw", "null", "perfect", "normalized", "tp", "fp", "fn"}``: the raw score, the scores of a detector that
        never fires and of a perfect one, 100 * (raw - null) / (perfect - null), and the counts (windows detected,
        flags outside windows, windows missed).
    """
    f = _bool(flags, "flags")
    p = NAB_PROFILES[profile] if isinstance(profile, str) else profile
    n = f.size
    start_scoring = min(math.floor(probation * n), probation * 5000)
    ordered = sorted(windows)
    for (s0, e0), (s1, _) in zip(ordered, ordered[1:], strict=False):
        if s1 <= e0:
            raise ValueError(f"NAB windows must not overlap: ({s0}, {e0}) and ({s1}, ...). Merge them first.")
    best: dict[int, float] = {}
    fp_total, fp_count = 0.0, 0
    w = 0  # index of the next window not yet passed
    prev_right: int | None = None
    prev_width = 0.0
    for i in range(n):
        while w < len(ordered) and i > ordered[w][1]:
            prev_right, prev_width = ordered[w][1], float(ordered[w][1] - ordered[w][0] + 1)
            w += 1
        inside = w < len(ordered) and ordered[w][0] <= i <= ordered[w][1]
        if not f[i] or i < start_scoring:
            continue
        if inside:
            left, right = ordered[w]
            width = float(right - left + 1)
            score = _sigma(-(right - i + 1) / width) * p.tp / _sigma(-1.0)
            best[w] = max(best.get(w, -math.inf), score)
        else:
            y = 3.0 if prev_right is None else abs(prev_right - i) / max(prev_width - 1.0, 1.0)
            fp_total += _sigma(y) * p.fp
            fp_count += 1
    scored = [k for k, (s, e) in enumerate(ordered) if e >= start_scoring]
    raw = sum(best.get(k, -p.fn) for k in scored) + fp_total
    null = -p.fn * len(scored)
    perfect = p.tp * len(scored)
    normalized = 100.0 * (raw - null) / (perfect - null) if perfect != null else math.nan
    tp = sum(1 for k in scored if k in best)
    return {
        "raw": raw, "null": null, "perfect": perfect, "normalized": normalized,
        "tp": tp, "fp": fp_count, "fn": len(scored) - tp,
    }  # fmt: skip


# ---- everything a detection run reports ---------------------------------------------------------------------------


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
