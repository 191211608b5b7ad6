"""The scorecard (issue 20, part 2): a forecasting row with lstmkit's defaults and the statistical peers on the same
held-out horizon, the page written per task without losing the others, and the command's refusals."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("statsforecast")

from lstmkit.cli import main  # noqa: E402
from lstmkit.scorecard import forecasting, report  # noqa: E402


@pytest.fixture(scope="module")
def airline_row():
    return forecasting.run(forecasting.Spec("airline", 12), quick=True, max_minutes=0.1)


def test_a_forecasting_row_scores_lstmkit_and_the_peers_on_the_same_horizon(airline_row) -> None:
    row = airline_row
    assert (row["dataset"], row["horizon"], row["season"], row["series"]) == ("airline", 12, 12, 1)
    assert {"lstmkit", "seasonal_naive", "auto_ets", "auto_theta", "auto_arima"} <= set(row["scores"])
    for name in ("lstmkit", "seasonal_naive", "auto_ets", "auto_theta", "auto_arima"):
        (value,) = row["scores"][name]
        assert math.isfinite(value) and value > 0, name
    # airline's last year: seasonal-naive misses by the growth, ETS and Theta follow it (published: ETS ~1/3 of it)
    assert row["scores"]["auto_ets"][0] < row["scores"]["seasonal_naive"][0]
    assert row["chosen"] and row["seconds"]["lstmkit"] > 0
    summary = forecasting.summarize([row])
    assert summary["seasonal_naive"] == pytest.approx(1.0)
    assert summary["auto_ets"] == pytest.approx(row["scores"]["auto_ets"][0] / row["scores"]["seasonal_naive"][0])


def test_the_page_keeps_the_other_tasks_sections(airline_row, tmp_path) -> None:
    page = tmp_path / "scorecard.md"
    text = report.section("forecasting", "lstmkit benchmark forecasting", [airline_row],
                          forecasting.summarize([airline_row]))  # fmt: skip
    report.write(page, "forecasting", text)
    report.write(page, "classification", "## classification\n\nold table\n")
    assert "| airline (12, 12) |" in page.read_text() and "old table" in page.read_text()
    report.write(page, "classification", "## classification\n\nnew table\n")
    out = page.read_text()
    assert "new table" in out and "old table" not in out and "| airline (12, 12) |" in out
    assert out.startswith(report.TITLE) and out.count("## forecasting") == 1


def test_the_command_refuses_an_unknown_task_or_data_set_in_one_sentence(capsys, tmp_path) -> None:
    assert main(["benchmark", "speech", "--page", str(tmp_path / "p.md")]) == 2
    assert "Unknown task 'speech'" in capsys.readouterr().err
    assert main(["benchmark", "forecasting", "--only", "nope", "--page", str(tmp_path / "p.md")]) == 2
    err = capsys.readouterr().err
    assert "Unknown data set(s) ['nope']" in err and "airline" in err
    assert not (tmp_path / "p.md").exists()


def test_the_command_writes_the_section_and_the_log(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(forecasting, "SETS", (forecasting.Spec("airline", 12),))
    page, log = tmp_path / "card.md", tmp_path / "card.jsonl"
    argv = ["benchmark", "forecasting", "--quick", "--page", str(page), "--log", str(log), "--json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["task"] == "forecasting" and [r["dataset"] for r in doc["rows"]] == ["airline"]
    assert "| airline (12, 12) |" in page.read_text()
    assert json.loads(log.read_text().splitlines()[0])["dataset"] == "airline"
