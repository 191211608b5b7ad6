"""lstmkit.tasks.timeseries.series.dataset_or_csv: the one resolver of a bundled name or a CSV file for the three
time-series tasks, with the same sentences for every task."""

from __future__ import annotations

import pandas as pd
import pytest

from lstmkit.tasks.timeseries.series import dataset_or_csv


@pytest.mark.parametrize(
    "name, task, roles",
    [
        ("airline", "forecasting", {"target", "time", "season", "id"}),
        ("heartrate", "anomaly", {"target", "time", "label"}),
        ("gunpoint", "classification", {"id", "label", "step", "split"}),
    ],
)
def test_a_bundled_name_gives_its_table_and_column_roles(name, task, roles):
    table, defaults = dataset_or_csv(name, None, task)
    assert len(table) > 0 and roles <= set(defaults)
    assert set(defaults) - roles <= {"past_covariates", "future_covariates", "static_covariates"}


@pytest.mark.parametrize("task", ["forecasting", "anomaly", "classification"])
def test_a_csv_gives_its_table_and_no_roles(task, tmp_path):
    path = tmp_path / "mine.csv"
    pd.DataFrame({"time": [1, 2, 3], "y": [0.5, 0.25, 1.0]}).to_csv(path, index=False)
    table, defaults = dataset_or_csv(None, path, task)
    assert list(table.columns) == ["time", "y"] and defaults == {}


@pytest.mark.parametrize(
    "name, task, words",
    [
        ("gunpoint", "forecasting", "'gunpoint' is a classification dataset, not a forecasting one"),
        ("airline", "anomaly", "'airline' is a forecasting dataset, not an anomaly one"),
        ("heartrate", "classification", "'heartrate' is an anomaly dataset, not a classification one"),
    ],
)
def test_another_tasks_dataset_is_one_sentence_naming_the_list_to_choose_from(name, task, words):
    with pytest.raises(ValueError, match=words) as caught:
        dataset_or_csv(name, None, task)
    assert f"lstmkit datasets list --task {task}" in str(caught.value)


def test_both_or_neither_source_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--data"):
        dataset_or_csv(None, None, "forecasting")
    with pytest.raises(ValueError, match="--data"):
        dataset_or_csv("airline", tmp_path / "x.csv", "forecasting")
