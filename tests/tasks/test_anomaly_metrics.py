"""Anomaly scoring (issue 3): point/event P/R/F1 and NAB's score, against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lstmkit.tasks.timeseries.anomaly.metrics import NabProfile, event_scores, nab_score, nab_windows, point_scores

N = 100  # probation: the first 15 steps are not scored
WINDOW = [(40, 49)]  # width 10


def flags_at(*steps: int) -> np.ndarray:
    f = np.zeros(N, dtype=bool)
    f[list(steps)] = True
    return f


def test_point_and_event_scores() -> None:
    labels = np.array([0, 1, 1, 0, 0, 0, 1, 1, 0, 0], dtype=bool)
    flags = np.array([0, 0, 1, 1, 0, 0, 0, 0, 0, 1], dtype=bool)
    p = point_scores(labels, flags)  # tp 1 (step 2), fp 2 (3, 9), fn 3 (1, 6, 7)
    assert p["precision"] == pytest.approx(1 / 3) and p["recall"] == pytest.approx(1 / 4)
    assert p["f1"] == pytest.approx(2 * (1 / 3) * (1 / 4) / (1 / 3 + 1 / 4))
    e = event_scores(labels, flags)  # events [1,2] and [6,7]; alarms [2,3] (touches event 1) and [9]
    assert (e["events"], e["alarms"]) == (2, 2)
    assert e["recall"] == pytest.approx(0.5) and e["precision"] == pytest.approx(0.5) and e["f1"] == pytest.approx(0.5)


def test_nab_earliest_detection_scores_full_marks() -> None:
    s = nab_score(flags_at(40), WINDOW)
    assert s["raw"] == pytest.approx(1.0) and s["null"] == -1.0 and s["perfect"] == 1.0
    assert s["normalized"] == pytest.approx(100.0) and (s["tp"], s["fp"], s["fn"]) == (1, 0, 0)


def test_nab_late_detection_earns_less() -> None:
    # last step of the window: y = -(49 - 49 + 1) / 10 = -0.1; sigma(-0.1) = 2 / (1 + e^-0.5) - 1 = 0.244919
    # divided by sigma(-1) = 2 / (1 + e^-5) - 1 = 0.986614 -> 0.248242
    s = nab_score(flags_at(49), WINDOW)
    assert s["raw"] == pytest.approx(0.248242, abs=1e-6)
    assert s["normalized"] == pytest.approx(100 * (0.248242 + 1) / 2, abs=1e-4)
    assert nab_score(flags_at(40, 49), WINDOW)["raw"] == pytest.approx(1.0)  # the best detection in a window counts


def test_nab_false_positives_cost_by_distance_and_probation_is_free() -> None:
    # a flag 11 steps past the window's right edge: y = 11 / (10 - 1); sigma = 2 / (1 + e^(5 * 11 / 9)) - 1
    sigma = 2 / (1 + math.exp(5 * 11 / 9)) - 1  # -0.995573
    s = nab_score(flags_at(40, 60), WINDOW)
    assert s["raw"] == pytest.approx(1.0 + 0.11 * sigma, abs=1e-9) and s["fp"] == 1
    before = nab_score(flags_at(20, 40), WINDOW)  # before any window: the full cost, -0.11
    assert before["raw"] == pytest.approx(1.0 - 0.11)
    assert nab_score(flags_at(5, 40), WINDOW)["raw"] == pytest.approx(1.0)  # step 5 is probationary
    assert nab_score(flags_at(20, 40), WINDOW, "reward_low_fp")["raw"] == pytest.approx(1.0 - 0.22)


def test_nab_missed_windows_and_a_silent_detector() -> None:
    silent = nab_score(np.zeros(N, dtype=bool), WINDOW)
    assert silent["raw"] == -1.0 and silent["normalized"] == pytest.approx(0.0) and silent["fn"] == 1
    assert nab_score(np.zeros(N, dtype=bool), WINDOW, "reward_low_fn")["raw"] == -2.0
    custom = nab_score(flags_at(40), WINDOW, NabProfile(tp=2.0, fp=0.5, fn=3.0))
    assert custom["raw"] == pytest.approx(2.0) and custom["normalized"] == pytest.approx(100.0)


def test_nab_windows_share_ten_percent_and_merge() -> None:
    assert nab_windows(100, [50]) == [(45, 55)]  # width 10 centred on the anomaly
    assert nab_windows(100, [10, 80]) == [(8, 12), (78, 82)]  # 10 % shared: width 5 each
    assert nab_windows(100, [50, 52]) == [(48, 54)]  # overlapping windows merge
    assert nab_windows(100, [2]) == [(0, 7)]  # clipped at the start
    with pytest.raises(ValueError, match="must not overlap"):
        nab_score(flags_at(40), [(40, 49), (45, 60)])
