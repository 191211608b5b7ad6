"""The bundled time series (issue 3): each loads offline, in the documented layout; the CLI lists and shows them."""

from __future__ import annotations

import json
import socket

import numpy as np
import pandas as pd
import pytest

from lstmkit.cli import main
from lstmkit.datasets import get_info, list_datasets, load_classification, load_dataset

EXPECTED = {  # name: (rows, first time, columns)
    "airline": (144, "1949-01-01", ["time", "passengers"]),
    "sunspots": (2820, "1749-01-01", ["time", "sunspots"]),
    "co2": (2284, "1958-03-29", ["time", "co2"]),
    "msft": (7983, "1986-03-13", ["time", "close", "open", "high", "low", "volume"]),
    "electricity": (17520, "2014-01-01", ["time", "demand", "temperature", "workday"]),
    "visnights": (1520, "1998-01-01", ["region", "time", "nights", "state", "zone"]),
}


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any network call raises: the data must come from installed packages."""

    def blocked(*args, **kwargs):
        raise OSError("network access attempted while loading a bundled dataset")

    for name in ("connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, name, blocked)
    monkeypatch.setattr(socket, "create_connection", blocked)
    monkeypatch.setattr(socket, "getaddrinfo", blocked)


CLASSIFICATION = {  # name: (train N, test N, T or None when lengths vary, channels, classes)
    "gunpoint": (50, 150, 150, 1, 2),
    "italy_power_demand": (67, 1029, 24, 1, 2),
    "basic_motions": (40, 40, 100, 6, 4),
    "pickup_gesture": (50, 50, None, 1, 10),
}


def test_the_registry_lists_each_task_s_datasets_with_their_roles() -> None:
    assert [d.name for d in list_datasets("forecasting")] == sorted(EXPECTED)
    assert [d.name for d in list_datasets("classification")] == sorted(CLASSIFICATION)
    assert [d.name for d in list_datasets("anomaly")] == ["heartrate"]
    elec = get_info("electricity")
    assert elec.targets == ("demand",) and elec.future_covariates == ("workday",) and elec.season == 48
    with pytest.raises(KeyError, match="Unknown dataset 'nope'. Bundled datasets: airline"):
        get_info("nope")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_dataset_loads_offline_in_the_documented_layout(name: str, offline: None) -> None:
    rows, first, columns = EXPECTED[name]
    df = load_dataset(name)
    info = get_info(name)
    assert len(df) == rows and df.columns.tolist() == columns and str(df["time"].iloc[0].date()) == first
    roles = {*info.targets, *info.past_covariates, *info.future_covariates, *info.static_covariates, info.id}
    assert roles - {None} == set(columns) - {"time"}
    for _, series in df.groupby(info.id) if info.id else [(None, df)]:
        assert pd.api.types.is_datetime64_any_dtype(series["time"]) and series["time"].is_monotonic_increasing
        if info.frequency != "B*":  # trading days are irregular by design
            regular = pd.date_range(series["time"].iloc[0], periods=len(series), freq=info.frequency)
            assert (series["time"].to_numpy() == regular.to_numpy()).all()
        assert all(series[c].nunique() == 1 for c in info.static_covariates)
    assert df[list(info.targets)].dtypes.map(pd.api.types.is_float_dtype).all()


def test_missing_values_are_kept_not_filled() -> None:
    assert int(load_dataset("co2")["co2"].isna().sum()) == 59


def test_cli_lists_and_shows(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets", "list", "--task", "forecasting", "--json"]) == 0
    assert [d["name"] for d in json.loads(capsys.readouterr().out)] == sorted(EXPECTED)
    assert main(["datasets", "list", "--task", "nope"]) == 2
    assert "Unknown task 'nope'" in capsys.readouterr().err
    assert main(["datasets", "show", "airline", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["rows"] == 144 and shown["end"].startswith("1960-12-01") and shown["missing"] == {"passengers": 0}
    assert main(["datasets", "show", "nope"]) == 2
    assert "Unknown dataset 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(CLASSIFICATION))
def test_classification_sets_load_offline_with_their_published_split(name: str, offline: None) -> None:
    n_train, n_test, length, channels, classes = CLASSIFICATION[name]
    X, y = load_classification(name, "train")
    X_test, y_test = load_classification(name, "test")
    assert len(X) == len(y) == n_train and len(X_test) == len(y_test) == n_test
    if length is None:  # variable length: a list of (T_i, C) arrays
        assert isinstance(X, list) and len({x.shape[0] for x in X}) > 1 and all(x.shape[1] == channels for x in X)
    else:
        assert X.shape == (n_train, length, channels) and X.dtype == np.float32
    assert len(set(y) | set(y_test)) == classes == get_info(name).classes
    assert get_info(name).split_sizes == (n_train, n_test)


def test_classification_long_form_is_the_csv_layout_and_round_trips() -> None:
    df = load_dataset("basic_motions")
    assert df.columns.tolist() == ["id", "split", "step", *[f"dim_{c}" for c in range(6)], "label"]
    X, y = load_classification("basic_motions", "test")
    first_test = df[df["split"] == "test"].groupby("id", sort=True)
    key, rows = next(iter(first_test))
    assert np.allclose(rows[[f"dim_{c}" for c in range(6)]].to_numpy(), X[0]) and rows["label"].iloc[0] == y[0]
    with pytest.raises(ValueError, match="'airline' is a forecasting dataset"):
        load_classification("airline")


def test_the_heart_rate_series_has_a_normal_start_and_one_labelled_anomaly_after_it(offline: None) -> None:
    df = load_dataset("heartrate")
    assert df.columns.tolist() == ["time", "heart_rate", "label", "split"]
    train, test = df[df["split"] == "train"], df[df["split"] == "test"]
    assert len(df) == 7501 and len(train) == 1200 and train["label"].sum() == 0 and len(test) == 6301
    assert train["time"].max() < test["time"].min()  # one series: train first, no step in both
    anomalous = df["time"][df["label"] == 1]
    assert anomalous.tolist() == list(range(4187, 4199))  # the archive's 12 labelled points
    assert (np.diff(df["time"].to_numpy()) == 1).all()
