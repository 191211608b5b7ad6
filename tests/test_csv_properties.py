"""Every CSV entry point answers any table with success or one sentence (issue 18, item 5).

One hypothesis test per command that trains on a CSV file (``forecast train``, ``anomaly train``, ``classify train``,
``text classify train``), run in-process through ``lstmkit.cli.main``. Each case builds a small valid table and, in
about seven cases of eight, applies one or two harmful changes (empty / NaN / infinite / beyond-float32 /
non-numeric / 100,000-character cells, duplicated rows, one row, a header alone, an empty file, another delimiter,
stray quotes or NUL bytes, invalid UTF-8, ragged rows, renamed or missing columns, mixed time zones, ...); the others
get changes that keep it valid (a byte-order mark, CRLF, shuffled or missing rows, blank lines, a missing value,
numeric times, thousands of tiny series). The outcome must be:

- exit 0 with a finished run (``config.json`` without a training status, ``model.safetensors``, ``result.json``);
  the valid table as generated, or with only a BOM or CRLF, must train; or
- exit 2 with exactly one line on stderr, ``error: ...`` under 300 characters, no traceback, no Python warning
  beside it, nothing on stdout, no weights or result in the run directory, and when the run directory was created,
  the same command run again refused the same way (not as a finished run);

and the input file's bytes are never changed. An exception escaping ``main`` is a traceback for the user: it fails.
``derandomize=True``: the same cases on every run. ``LSTMKIT_CSV_EXAMPLES=1000`` searches deeper.
"""

from __future__ import annotations

import csv
import io
import math
import os
import random
import tempfile
import warnings
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from lstmkit import runs
from lstmkit.cli import main


def _examples(default: int) -> int:
    """Cases per entry point: ``default`` (about 20 s each on a 2-core machine: a refusal takes a few milliseconds, a
    case that trains about a second, pictures and report included), or LSTMKIT_CSV_EXAMPLES for a deeper search."""
    return int(os.environ.get("LSTMKIT_CSV_EXAMPLES", default))


PROPERTY = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

HUGE_TEXT = "x" * 100_000
HUGE_DIGITS = "9" * 100_000
POISON = (
    "inf", "-inf", "Infinity", "1e400", "-1e400", "1e308", "-3.5e38", "abc", "TRUE", "1,5", "0x1F", "\u0661\u0662",
    "caf\u00e9", '"', HUGE_TEXT, HUGE_DIGITS,
)  # fmt: skip
MISSING = ("", "nan", "NaN", "N/A", " 7 ", "3e38", "-0")  # a missing value, or a number written oddly: may be valid
STRAY = (",", '"', "\n", "\r", "\x00", ";", "\t", "\ufeff")
OFFSETS = ("+01:00", "Z", "-05:00", "+05:30", "")


# ---- tables and how they are written --------------------------------------------------------------------------


class Table:
    """A header and rows of cells as text, and how the file is written (delimiter, line ends, byte-order mark)."""

    def __init__(
        self, header: list[str], rows: list[list[str]], checked: tuple[str, ...], poison: tuple[str, ...] = ()
    ) -> None:
        self.header, self.rows = header, rows
        self.checked = checked  # the columns whose cells the entry point checks (a bad one there is refused)
        self.poison = poison or POISON  # the bad values for those cells
        self.delimiter, self.newline, self.bom, self.header_only, self.empty = ",", "\n", False, False, False
        self.stray: tuple[float, str] | None = None  # a character inserted at this share of the text
        self.latin1 = False  # one character written as Latin-1 (invalid UTF-8)

    def column(self, name: str) -> int:
        return self.header.index(name)

    def to_bytes(self) -> bytes:
        if self.empty:
            return b"\xef\xbb\xbf" if self.bom else b""
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=self.delimiter, lineterminator=self.newline)
        writer.writerow(self.header)
        if not self.header_only:
            writer.writerows(self.rows)
        text = buffer.getvalue()
        if self.stray is not None:
            at = int(self.stray[0] * len(text))
            text = text[:at] + self.stray[1] + text[at:]
        data = text.encode("utf-8")
        if self.latin1:
            data = data.replace(b"e", b"\xe9", 1)
        return (b"\xef\xbb\xbf" if self.bom else b"") + data


def _number(i: int, scale: float = 1.0) -> str:
    return f"{scale * (10 + 3 * math.sin(i / 2) + (i % 3)):.3f}"


def _mutate_common(draw, table: Table, name: str) -> None:
    """The mutations every entry point gets."""
    rows = table.rows
    if name in ("cell", "missing") and rows:
        checked = [j for j, column in enumerate(table.header) if column in table.checked]
        i, j = draw(st.integers(0, len(rows) - 1)), draw(st.sampled_from(checked or range(len(table.header))))
        if j < len(rows[i]):  # (a row cut short by an earlier change may lack the cell)
            rows[i][j] = draw(st.sampled_from(table.poison if name == "cell" else MISSING))
    elif name == "cells" and rows:  # the same bad value down a whole column
        j, value = draw(st.integers(0, len(table.header) - 1)), draw(st.sampled_from(POISON + MISSING))
        for row in rows:
            if j < len(row):
                row[j] = value
    elif name == "duplicate_row" and rows:
        i = draw(st.integers(0, len(rows) - 1))
        rows.insert(draw(st.integers(0, len(rows))), list(rows[i]))
    elif name == "shuffle" and rows:
        random.Random(draw(st.integers(0, 2**16))).shuffle(rows)
    elif name == "drop_row" and len(rows) > 1:
        del rows[draw(st.integers(0, len(rows) - 1))]
    elif name == "one_row" and rows:
        table.rows = [rows[draw(st.integers(0, len(rows) - 1))]]
    elif name == "header_only":
        table.header_only = True
    elif name == "empty_file":
        table.empty = True
    elif name == "delimiter":
        table.delimiter = draw(st.sampled_from([";", "\t", "|"]))
    elif name == "bom":
        table.bom = True
    elif name == "crlf":
        table.newline = "\r\n"
    elif name == "stray":
        table.stray = (draw(st.floats(0, 1)), draw(st.sampled_from(STRAY)))
    elif name == "latin1":
        table.latin1 = True
    elif name == "ragged" and rows:
        rows[draw(st.integers(0, len(rows) - 1))].append("extra")
    elif name == "short_row" and rows:
        row = rows[draw(st.integers(0, len(rows) - 1))]
        del row[-1:]
    elif name == "drop_column":
        j = draw(st.integers(0, len(table.header) - 1))
        del table.header[j]
        for row in rows:
            del row[j : j + 1]
    elif name == "rename_column":
        j = draw(st.integers(0, len(table.header) - 1))
        table.header[j] = draw(st.sampled_from(["", " time", "VALUE", HUGE_TEXT, *table.header]))
    elif name == "blank_lines" and rows:
        rows.insert(draw(st.integers(0, len(rows))), [])


BENIGN = ("bom", "crlf", "shuffle", "drop_row", "blank_lines", "missing")  # files as they come: still valid
HARMFUL = (
    "cell", "cell", "cells", "duplicate_row", "one_row", "header_only", "empty_file", "delimiter", "stray", "latin1",
    "ragged", "short_row", "drop_column", "rename_column",
)  # fmt: skip


def _mutations(draw, table: Table, valid: tuple[str, ...], bad: tuple[str, ...], apply_own) -> list[str]:
    """Some cases (one choice in eight; hypothesis does not choose evenly): a valid table with up to two changes that
    keep it valid (common: BOM, CRLF, shuffled rows, a missing value, ...; or the entry point's own ``valid`` ones).
    The others: one harmful change (common or the entry point's own ``bad`` ones) and maybe one more of any kind,
    mostly refusals, which are fast. About one case in five trains (measured: 16-21 %)."""
    if draw(st.sampled_from(range(8))) == 7:
        names = draw(st.lists(st.sampled_from(BENIGN + valid), max_size=2))
    else:
        names = [draw(st.sampled_from(HARMFUL + bad))]
        names += draw(st.lists(st.sampled_from(BENIGN + HARMFUL + valid + bad), max_size=1))
    for name in names:
        if name in BENIGN + HARMFUL:
            _mutate_common(draw, table, name)
        else:
            apply_own(draw, table, name)
    return names


def _time_mutation(draw, table: Table, name: str) -> None:
    """Time-column mutations of the forecast and anomaly tables."""
    if "time" not in table.header:
        return
    j = table.column("time")
    rows = [r for r in table.rows if len(r) == len(table.header)]
    if name == "mixed_zones":  # ISO times with a mix of offsets: 'Z', '+01:00', none
        for k, row in enumerate(rows):
            row[j] = (pd.Timestamp("2021-03-01") + pd.Timedelta(hours=k)).isoformat() + draw(st.sampled_from(OFFSETS))
    elif name == "constant":  # every value the same (a series with no spread)
        for row in rows if "value" in table.header else []:
            row[table.column("value")] = "5"
    elif name == "time_text" and rows:
        rows[draw(st.integers(0, len(rows) - 1))][j] = draw(st.sampled_from(["yesterday", "2021-02-30", "", "1e400"]))
    elif name == "numeric_time":
        for k, row in enumerate(rows):
            row[j] = str(k * draw(st.sampled_from([1, 7, 10**12])))


TIME_VALID, TIME_BAD = ("constant", "numeric_time"), ("mixed_zones", "time_text")


# ---- running a case -------------------------------------------------------------------------------------------


def _one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, f"stderr is not one line: {err[:2000]!r}"
    line = lines[0]
    assert line.startswith("error:") and len(line) < 300 and "Traceback" not in line, line[:2000]
    return line


@pytest.fixture
def cli_built_once(monkeypatch):
    """The command line built once per test instead of on every ``main()``: typer rebuilds its click commands from the
    function signatures on each call (about 65 ms here, most of what a refusal costs), and they come out the same."""
    import typer.main

    build, built = typer.main.get_command, {}

    def get_command(typer_app):
        if id(typer_app) not in built:
            built[id(typer_app)] = (typer_app, build(typer_app))  # (the app kept alive: its id stays its own)
        return built[id(typer_app)][1]

    monkeypatch.setattr(typer.main, "get_command", get_command)


def _main(argv: list[str]) -> tuple[int, list[str]]:
    """``main(argv)`` and the warnings a user would see on stderr beside its output (pytest hides them from capsys):
    those Python shows by default, not deprecations."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(argv)
    hidden = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)
    return code, [f"{w.category.__name__}: {w.message}" for w in caught if not issubclass(w.category, hidden)]


def _run(capsys, command: list[str], data: bytes, mutations: list[str]) -> None:
    """Run ``command`` on ``data`` written to a fresh file and check the outcome (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="csvp") as tmp:
        path, out = Path(tmp) / "data.csv", Path(tmp) / "run"
        path.write_bytes(data)
        note(f"{command} {data[:3000]!r}")
        argv = [*command, "--csv", str(path), "--out", str(out), "--json"]
        capsys.readouterr()
        code, shown = _main(argv)
        first = capsys.readouterr()
        assert path.read_bytes() == data, "the input file was changed"
        if set(mutations) <= {"bom", "crlf"}:  # the valid table, as written or with a BOM or CRLF: it trains
            assert code == 0, f"a valid table was refused: {first.err[-2000:]}"
        if code == 0:
            event(f"trained ({' '.join(mutations) or 'valid table'})")
            for warning in shown:
                event(f"warning on success: {warning[:60]}")
            assert runs.is_finished(out), "exit 0 without a finished run"
            assert (out / runs.WEIGHTS_FILE).is_file() and (out / "result.json").is_file()
            return
        assert code == 2, f"exit code {code}: {first.err[-2000:]}"
        line = _one_line(first.err)
        assert not shown, f"a refusal printed warnings too: {shown}"
        event(f"refused: {line[7:40]}")
        assert first.out == "", f"stdout on a refusal: {first.out[:500]!r}"
        assert not (out / runs.WEIGHTS_FILE).exists(), "a refused run left model.safetensors"
        assert not (out / "result.json").exists(), "a refused run left result.json"
        assert not runs.is_finished(out), "a refused run looks finished"
        if not out.exists():
            return  # nothing written: a re-run starts afresh
        again, _ = _main(argv)  # re-runnable: refused again, not as "already holds a finished ..." run
        second = capsys.readouterr()
        assert again == 2, f"the re-run exited {again}: {second.err[-2000:]}"
        assert "already holds a finished" not in _one_line(second.err)
        assert path.read_bytes() == data, "the input file was changed by the re-run"


# ---- forecast train -----------------------------------------------------------------------------------------------


@st.composite
def forecast_cases(draw) -> tuple[bytes, list[str], list[str]]:
    n = draw(st.integers(10, 28))
    n_series = draw(st.sampled_from([1, 1, 1, 3]))
    freq = draw(st.sampled_from(["D", "h"]))
    fmt = draw(
        st.sampled_from(["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M"] + (["%Y-%m-%d", "%m/%d/%Y"] if freq == "D" else []))
    )
    times = pd.date_range("2021-03-01", periods=n, freq=freq).strftime(fmt)
    header = ["time", "value"] + (["series"] if n_series > 1 else [])
    rows = [[times[i], _number(i + s)] + ([f"s{s}"] if n_series > 1 else []) for s in range(n_series) for i in range(n)]
    table = Table(header, rows, ("time", "value"))
    names = _mutations(draw, table, TIME_VALID, TIME_BAD, _time_mutation)
    args = ["--target", "value", "--horizon", "2", "--epochs", "1"]
    args += ["--id", "series"] if n_series > 1 else []
    if draw(st.sampled_from([False, False, True])):
        args += ["--transform", "log"]
    return table.to_bytes(), args, names


@settings(PROPERTY, max_examples=_examples(140))
@given(case=forecast_cases())
def test_forecast_train_answers_any_csv(case, capsys, cli_built_once):
    data, args, names = case
    _run(capsys, ["forecast", "train", *args], data, names)


# ---- anomaly train ----------------------------------------------------------------------------------------------


@st.composite
def anomaly_cases(draw) -> tuple[bytes, list[str], list[str]]:
    n = draw(st.integers(70, 84))
    numeric_time = draw(st.booleans())
    times = [str(i) for i in range(n)] if numeric_time else pd.date_range("2021-03-01", periods=n, freq="h").astype(str)
    labelled = draw(st.booleans())
    header = ["time", "value"] + (["label"] if labelled else [])
    rows = [[times[i], _number(i)] + (["0"] if labelled else []) for i in range(n)]
    table = Table(header, rows, ("time", "value", "label"))

    def own(draw, table: Table, name: str) -> None:
        rows = [r for r in table.rows if len(r) == len(table.header)]
        if name == "anomaly_in_training" and "label" in table.header and rows:
            row = rows[draw(st.integers(0, len(rows) - 1))]
            row[table.column("label")] = draw(st.sampled_from(["1", "2", "yes", "0.5", ""]))
        else:
            _time_mutation(draw, table, name)

    names = _mutations(draw, table, TIME_VALID, (*TIME_BAD, "anomaly_in_training"), own)
    args = ["--target", "value", "--epochs", "1", "--method", draw(st.sampled_from(["prediction", "reconstruction"]))]
    args += ["--label", "label"] if labelled else []
    return table.to_bytes(), args, names


@settings(PROPERTY, max_examples=_examples(120))
@given(case=anomaly_cases())
def test_anomaly_train_answers_any_csv(case, capsys, cli_built_once):
    data, args, names = case
    _run(capsys, ["anomaly", "train", *args], data, names)


# ---- classify train ---------------------------------------------------------------------------------------------


def _series_rows(n_series: int, lengths: list[int], split: bool) -> list[list[str]]:
    rows = []
    for i in range(n_series):
        for t in range(lengths[i % len(lengths)]):
            part = ["test" if i % 4 == 3 else "train"] if split else []
            rows.append([f"s{i}", str(t), _number(i + t, 0.1 * (1 + i % 2)), "ab"[i % 2], *part])
    return rows


@st.composite
def classify_cases(draw) -> tuple[bytes, list[str], list[str]]:
    n_series = draw(st.integers(4, 8))
    lengths = draw(st.lists(st.integers(1, 5), min_size=1, max_size=n_series))
    split = draw(st.booleans())
    header = ["id", "step", "x", "label"] + (["split"] if split else [])
    table = Table(header, _series_rows(n_series, lengths, split), ("x", "split"))  # any step that sorts is a step

    def own(draw, table: Table, name: str) -> None:
        rows = [r for r in table.rows if len(r) == len(table.header)]
        if name == "many_series":  # thousands of series of one or two steps
            table.rows = _series_rows(draw(st.integers(1000, 2500)), [1, 2], split)
        elif name == "one_class" and "label" in table.header:
            for row in rows:
                row[table.column("label")] = "a"
        elif name == "split_value" and "split" in table.header and rows:
            row = rows[draw(st.integers(0, len(rows) - 1))]
            row[table.column("split")] = draw(st.sampled_from(["TEST", "", "valid"]))
        elif name == "step_text" and "step" in table.header and rows:
            row = rows[draw(st.integers(0, len(rows) - 1))]
            row[table.column("step")] = draw(st.sampled_from(["b", "", "1.5", "-0"]))

    names = _mutations(draw, table, ("many_series",), ("one_class", "split_value", "step_text"), own)
    args = ["--step", "step", "--epochs", "1", "--hidden-size", "4", "--batch-size", "64"]
    args += ["--split", "split"] if split else []
    return table.to_bytes(), args, names


@settings(PROPERTY, max_examples=_examples(100))
@given(case=classify_cases())
def test_classify_train_answers_any_csv(case, capsys, cli_built_once):
    data, args, names = case
    _run(capsys, ["classify", "train", *args], data, names)


# ---- text classify train ---------------------------------------------------------------------------------------

WORDS = ("good", "bad", "film", "plot", "great", "awful", "the", "a", "very", "not")
TEXTS = st.one_of(  # each with a word in it (a table of empty texts is refused, rightly)
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join), st.text(max_size=20).map("{} film".format)
)


@st.composite
def text_cases(draw) -> tuple[bytes, list[str], list[str]]:
    n = draw(st.integers(4, 14))
    texts = [draw(TEXTS) for _ in range(n)]
    rows = [[text, ("pos", "neg")[i % 2]] for i, text in enumerate(texts)]
    table = Table(["text", "label"], rows, ("label",), ("", "nan", "N/A", "inf", HUGE_TEXT))  # any other is a class

    def own(draw, table: Table, name: str) -> None:
        rows = [r for r in table.rows if len(r) == len(table.header)]
        if "label" not in table.header:
            return
        j = table.column("label")
        if name == "one_class":
            for row in rows:
                row[j] = "pos"
        elif name == "numeric_labels":
            for k, row in enumerate(rows):
                row[j] = draw(st.sampled_from(["0", "1", "1.0", "2", "-1", "nan"])) if k == 0 else str(k % 2)
        elif name == "text_cell" and rows:  # any text is a text: valid
            rows[draw(st.integers(0, len(rows) - 1))][table.column("text")] = draw(st.sampled_from(POISON + MISSING))

    names = _mutations(draw, table, ("numeric_labels", "text_cell"), ("one_class",), own)
    args = ["--epochs", "1", "--hidden-size", "4", "--embedding-size", "4", "--vocab-size", "50", "--max-length", "8"]
    return table.to_bytes(), args, names


@settings(PROPERTY, max_examples=_examples(100))
@given(case=text_cases())
def test_text_classify_train_answers_any_csv(case, capsys, cli_built_once):
    data, args, names = case
    _run(capsys, ["text", "classify", "train", *args], data, names)
