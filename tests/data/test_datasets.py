"""The bundled time series (issue 3): each loads offline, in the documented layout; the CLI lists and shows them."""

from __future__ import annotations

import json
import socket

import pandas as pd
import pytest

from lstmkit.cli import main
from lstmkit.datasets import get_info, list_datasets, load_dataset

EXPECTED = {  # name: (rows, first time, columns)
    "airline": (144, "1949-01-01", ["time", "passengers"]),
    "sunspots": (2820, "1749-01-01", ["time", "sunspots"]),
    "co2": (2284, "1958-03-29", ["time", "co2"]),
    "msft": (7983, "1986-03-13", ["time", "close", "open", "high", "low", "volume"]),
    "electricity": (17520, "2014-01-01", ["time", "demand", "temperature", "workday"]),
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


def test_the_registry_lists_five_series_with_their_roles() -> None:
    assert [d.name for d in list_datasets()] == sorted(EXPECTED)
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
    assert pd.api.types.is_datetime64_any_dtype(df["time"]) and df["time"].is_monotonic_increasing
    assert set(info.targets) | set(info.past_covariates) | set(info.future_covariates) == set(columns) - {"time"}
    if info.frequency != "B*":  # trading days are irregular by design
        regular = pd.date_range(df["time"].iloc[0], periods=len(df), freq=info.frequency)
        assert (df["time"].to_numpy() == regular.to_numpy()).all()
    assert df[list(info.targets)].dtypes.map(pd.api.types.is_float_dtype).all()


def test_missing_values_are_kept_not_filled() -> None:
    assert int(load_dataset("co2")["co2"].isna().sum()) == 59


def test_cli_lists_and_shows(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets", "list", "--json"]) == 0
    assert [d["name"] for d in json.loads(capsys.readouterr().out)] == sorted(EXPECTED)
    assert main(["datasets", "show", "airline", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["rows"] == 144 and shown["end"].startswith("1960-12-01") and shown["missing"] == {"passengers": 0}
    assert main(["datasets", "show", "nope"]) == 2
    assert "Unknown dataset 'nope'" in capsys.readouterr().err
