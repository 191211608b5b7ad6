"""Pen trajectories: reading them (JSON, CSV), checking them, and turning them into the network's input.

A trajectory is an array of points ``(N, 3)``: ``x, y, pen_up``, with ``y`` growing upward (as in a plot; screen
coordinates grow downward: flip them with ``y_down=True`` when reading) and ``pen_up = 1`` on the last point of each
stroke (the pen lifts after it). The optional time of each point is accepted but not used: the features resample
the trajectory at equal arc length, which removes the writing speed (the point of doing it).

:func:`features` turns a trajectory into the network's input:

1. split into strokes at the pen lifts;
2. normalise: translate to the ink's median height and left edge, and scale by the ink's height, measured as the
   10th-90th percentile range of ``y`` over points spaced evenly along the ink (robust to a stray point; ascenders
   and descenders are a small share of the ink, so the scale follows the body of the letters);
3. resample each stroke at equal arc length (``step`` heights apart, its ends kept);
4. per point: ``(dx, dy, y, pen_up)``: the offset from the previous point in units of ``step`` (so about 1 along
   the ink; across a pen lift: the jump), the height above the ink's median in ink heights, and the pen lift: all
   of order 1.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import numpy as np

__all__ = ["OVERLAP_COVER", "StrokeError", "check_points", "drop_overlapping", "features", "read_strokes"]


class StrokeError(ValueError):
    """Pen strokes that cannot be read as handwriting: empty, one point, no movement, NaN, wrong columns."""


# ---- checking and reading trajectories ---------------------------------------------------------------------------
def check_points(points: object, what: str = "the strokes") -> np.ndarray:
    """``points`` as a float (N, 3) array ``x, y, pen_up``, or a :class:`StrokeError` saying what is wrong.

    A 4th column (time) is accepted and dropped after checking it never decreases. The last point always ends a
    stroke.
    """
    try:
        arr = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise StrokeError(f"{what} are not a table of numbers ({e}); expected rows of x, y, pen_up.") from e
    if arr.size == 0:
        raise StrokeError(f"{what} are empty: no points were given; expected a pen trajectory of rows x, y, pen_up.")
    if arr.ndim != 2 or arr.shape[1] not in (3, 4):
        cols = arr.shape[1] if arr.ndim == 2 else f"a {arr.ndim}-d array of shape {arr.shape}"
        raise StrokeError(
            f"{what} have the wrong columns ({cols}); expected 3 columns x, y, pen_up, or 4 with the time last."
        )
    bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
    if len(bad):
        raise StrokeError(
            f"{what} have {len(bad)} point(s) with a missing or infinite value (first at row {bad[0]}); remove or "
            "fill in those points."
        )
    if len(arr) < 2:
        raise StrokeError(f"{what} have only one point; a word needs a pen trajectory of at least two points.")
    if not np.isin(arr[:, 2], (0.0, 1.0)).all():
        raise StrokeError(
            f"{what} have pen_up values other than 0 and 1 ({sorted(set(arr[:, 2].tolist()) - {0.0, 1.0})[:3]}); "
            "pen_up is 1 on the last point of each stroke and 0 elsewhere."
        )
    if arr.shape[1] == 4 and (np.diff(arr[:, 3]) < 0).any():
        raise StrokeError(f"{what} have times that go backwards; give the points in the order they were written.")
    if np.ptp(arr[:, 0]) == 0 and np.ptp(arr[:, 1]) == 0:
        raise StrokeError(
            f"All {len(arr)} points of {what} are at the same place ({arr[0, 0]:g}, {arr[0, 1]:g}): the pen never "
            "moved, so there is no writing to read."
        )
    out = arr[:, :3].copy()
    out[-1, 2] = 1.0
    return out


def _points_from_json(doc: object) -> np.ndarray:
    """JSON layouts: ``{"strokes": [[[x, y], ...], ...]}`` or a bare list of strokes (each a list of ``[x, y]`` or
    ``[x, y, t]``), or ``{"points": [[x, y, pen_up(, t)], ...]}`` or a bare list of such rows."""
    if isinstance(doc, dict):
        if "strokes" in doc:
            doc = doc["strokes"]
        elif "points" in doc:
            return check_points(doc["points"])
        else:
            raise StrokeError(f"The JSON object has keys {sorted(doc)}; expected 'strokes' (a list of strokes) or "
                              "'points' (rows x, y, pen_up).")  # fmt: skip
    if not isinstance(doc, list):
        raise StrokeError(f"The JSON holds a {type(doc).__name__}; expected a list of strokes or of points.")
    if doc and all(isinstance(s, list) and s and isinstance(s[0], list) for s in doc):  # a list of strokes
        rows = []
        for stroke in doc:
            arr = np.asarray(stroke, dtype=np.float64) if stroke else np.zeros((0, 2))
            if arr.ndim != 2 or arr.shape[1] not in (2, 3):
                raise StrokeError(f"A stroke has points of the wrong shape {arr.shape}; expected [x, y] or [x, y, t].")
            pen = np.zeros((len(arr), 1))
            pen[-1] = 1.0
            rows.append(np.concatenate([arr[:, :2], pen, arr[:, 2:]], axis=1))
        widths = {r.shape[1] for r in rows}
        return check_points(np.concatenate(rows) if len(widths) == 1 else np.concatenate([r[:, :3] for r in rows]))
    return check_points(doc)


def read_strokes(path: str | os.PathLike[str], *, y_down: bool = False) -> np.ndarray:
    """A trajectory (N, 3) from a JSON or CSV file (by extension).

    CSV: a header naming the columns ``x``, ``y``, ``pen_up`` (or ``pen-up``/``penup``), optionally ``t``/``time``.
    JSON: see :func:`_points_from_json`. ``y_down``: the file uses screen coordinates (y grows downward).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No strokes file at {path}.")
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise StrokeError(f"{path.name} is not valid JSON ({e}).") from e
        points = _points_from_json(doc)
    elif path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = [h.strip().lower().replace("-", "_") for h in next(reader, [])]
            rows = list(reader)
        names = {"penup": "pen_up", "time": "t"}
        header = [names.get(h, h) for h in header]
        missing = [c for c in ("x", "y", "pen_up") if c not in header]
        if missing:
            raise StrokeError(f"{path.name} has columns {header}; expected a header with x, y, pen_up (and "
                              f"optionally t); missing {missing}.")  # fmt: skip
        cols = [header.index(c) for c in ("x", "y", "pen_up", "t") if c in header]
        try:
            table = [[float(r[c]) if r[c].strip() else math.nan for c in cols] for r in rows if any(r)]
        except (ValueError, IndexError) as e:
            raise StrokeError(f"{path.name} has a row that is not numbers in x, y, pen_up ({e}).") from e
        points = check_points(np.array(table).reshape(-1, len(cols)), f"the strokes in {path.name}")
    else:
        raise StrokeError(f"{path.name}: strokes are read from .json or .csv files, not {path.suffix or 'no suffix'}.")
    if y_down:
        points[:, 1] = -points[:, 1]
    return points


# ---- features ----------------------------------------------------------------------------------------------------
def _strokes(points: np.ndarray) -> list[np.ndarray]:
    ends = np.flatnonzero(points[:, 2] > 0.5)
    starts = np.concatenate([[0], ends[:-1] + 1])
    return [points[s : e + 1, :2] for s, e in zip(starts, ends, strict=True)]


def _resample(stroke: np.ndarray, step: float) -> np.ndarray:
    """Points every ``step`` along a polyline (M, 2), both ends kept; a stroke shorter than ``step`` -> its ends."""
    seg = np.linalg.norm(np.diff(stroke, axis=0), axis=1)  # (M-1,)
    arc = np.concatenate([[0.0], np.cumsum(seg)])  # (M,)
    if arc[-1] < step:
        return stroke[[0, -1]] if arc[-1] > 0 else stroke[:1]
    n = max(int(round(arc[-1] / step)), 1)
    at = np.linspace(0.0, arc[-1], n + 1)  # (n+1,)
    return np.stack([np.interp(at, arc, stroke[:, 0]), np.interp(at, arc, stroke[:, 1])], axis=1)


OVERLAP_COVER = 0.8  # drop_overlapping: the share of a stroke's length that must lie on earlier ink


def drop_overlapping(strokes: list[np.ndarray], radius: float, cover: float = OVERLAP_COVER) -> list[np.ndarray]:
    """The strokes, in order, without those that go over ink already written.

    A stroke is dropped when at least ``cover`` (0-1] of its length lies within ``radius`` of the strokes kept
    before it (measured on points ``radius / 2`` apart). Such strokes add no shape: a writer going over a line
    again, or the second and third lines with which "complex" fonts (scriptc, timesi, gothicita) draw a thick
    stroke. Without them a doubled stem reads like one line, instead of a line followed by a pen lift and another
    line (the pattern of a crossed ``t``). A stroke crossing earlier ink (a ``t``'s bar, an ``x``) or touching it at
    one end (the next letter of joined writing) keeps most of its length away from it and stays, if it is longer
    than about 2.5 radii (a straight crossing stroke shorter than that lies wholly within the radius of the line it
    crosses). ``radius <= 0``: every stroke is kept.
    """
    if not 0.0 < cover <= 1.0:
        raise ValueError(f"cover is a share of a stroke's length, in (0, 1], not {cover}.")
    if radius <= 0 or len(strokes) < 2:
        return list(strokes)
    kept: list[np.ndarray] = []
    inks: list[np.ndarray] = []  # points along each kept stroke, (m, 2) each
    boxes = np.empty((0, 4))  # (K, 4): each kept stroke's x0, y0, x1, y1, widened by radius
    for stroke in strokes:
        pts = _resample(stroke, radius / 2)  # (n, 2)
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        # only kept strokes whose box reaches this one's can be within radius of it
        touch = np.flatnonzero(
            (boxes[:, 0] <= hi[0]) & (boxes[:, 2] >= lo[0]) & (boxes[:, 1] <= hi[1]) & (boxes[:, 3] >= lo[1])
        )
        if len(touch):
            ink = np.concatenate([inks[k] for k in touch])  # (M, 2)
            near = ((pts[:, None, :] - ink[None, :, :]) ** 2).sum(axis=2).min(axis=1) <= radius**2  # (n,)
            if near.mean() >= cover:
                continue
        kept.append(stroke)
        inks.append(pts)
        boxes = np.concatenate([boxes, [[lo[0] - radius, lo[1] - radius, hi[0] + radius, hi[1] + radius]]])
    return kept


def features(points: np.ndarray, step: float = 0.25, overlap: float = 0.0) -> np.ndarray:
    """Network input (T, 4) ``dx, dy, y, pen_up`` of a checked trajectory (see the module docstring).

    ``step``: the resampling distance in ink heights. ``overlap``: strokes that go over earlier ink within this
    many ink heights are dropped after normalising (:func:`drop_overlapping`); 0 keeps every stroke.
    """
    points = check_points(points)
    strokes = _strokes(points)
    # the ink's height from points spaced evenly along the ink (1/200 of the longest side apart)
    span = max(np.ptp(points[:, 0]), np.ptp(points[:, 1]))
    fine = np.concatenate([_resample(s, span / 200) for s in strokes])  # (M, 2)
    low, mid, high = np.percentile(fine[:, 1], [10, 50, 90])
    height = high - low if high - low > span * 0.02 else span * 0.25  # a flat line: fall back to its length
    origin = np.array([fine[:, 0].min(), mid])
    rows = []
    for s in drop_overlapping([(s - origin) / height for s in strokes], overlap):
        r = _resample(s, step)  # (n, 2)
        pen = np.zeros((len(r), 1))
        pen[-1] = 1.0
        rows.append(np.concatenate([r, pen], axis=1))
    xyp = np.concatenate(rows)  # (T, 3) x, y, pen_up
    d = np.diff(xyp[:, :2], axis=0, prepend=xyp[:1, :2]) / step  # (T, 2): 0 at the first point; about 1 along ink
    return np.concatenate([d, xyp[:, 1:2], xyp[:, 2:3]], axis=1).astype(np.float32)  # (T, 4)
