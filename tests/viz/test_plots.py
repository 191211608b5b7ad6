"""Tests for lstmkit.viz.plots: PNGs are written, readable and atomic, and bad input is refused."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from lstmkit.viz.plots import plot_gates, plot_gradient_flow, plot_learning_curves


def assert_png(path: Path) -> np.ndarray:
    assert path.is_file() and path.stat().st_size > 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 0  # not a blank canvas
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # no temporary file left behind
    return image


def gate_arrays(steps: int = 30, hidden: int = 12) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    gates = rng.random((steps, 4, hidden))  # (T, 4, H) in i, f, g, o order
    gates[:, 2] = np.tanh(rng.normal(size=(steps, hidden)))
    cells = np.cumsum(rng.normal(size=(steps, hidden)), axis=0)  # (T, H)
    return gates, cells


def test_gradient_flow_writes_a_png(tmp_path):
    lags = np.arange(100)
    norms = {
        "lstm (init)": 0.73**lags,
        "lstm (trained)": 0.95**lags,
        "rnn (init)": 0.5**lags,
        "rnn (trained)": np.where(lags < 50, 0.6**lags, 0.0),  # underflowed tail is dropped, not an error
    }
    path = plot_gradient_flow(lags, norms, tmp_path / "flow.png", title="adding, T = 100")
    assert path == tmp_path / "flow.png"
    assert_png(path)


def test_gradient_flow_overwrites_atomically_and_creates_directories(tmp_path):
    target = tmp_path / "new" / "dir" / "flow.png"
    lags = np.arange(10)
    first = assert_png(plot_gradient_flow(lags, {"lstm": 0.9**lags}, target))
    second = assert_png(plot_gradient_flow(lags, {"lstm": 0.9**lags, "rnn": 0.5**lags}, str(target)))
    assert first.shape != second.shape or not np.array_equal(first, second)
    assert sorted(p.name for p in target.parent.iterdir()) == ["flow.png"]


def test_gradient_flow_rejects_bad_input(tmp_path):
    lags = np.arange(10)
    with pytest.raises(ValueError, match=r"norms\['rnn'\] has shape \(9,\); expected \(10,\)"):
        plot_gradient_flow(lags, {"rnn": np.ones(9)}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="`norms` is empty"):
        plot_gradient_flow(lags, {}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="No positive, finite gradient norm"):
        plot_gradient_flow(lags, {"rnn": np.zeros(10)}, tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []  # a failed call leaves nothing behind


def test_gates_writes_a_png(tmp_path):
    gates, cells = gate_arrays()
    inputs = np.random.default_rng(1).random((30, 3))  # (T, I): drawn as a heatmap
    path = plot_gates(gates, cells, tmp_path / "gates.png", units=5, inputs=inputs)
    assert path == tmp_path / "gates.png"
    assert_png(path)


def test_gates_with_one_input_more_units_than_hidden_and_1997_cell_range(tmp_path):
    gates, cells = gate_arrays(hidden=3)
    gates[:, 2] *= 2.0  # g in [-2, 2], the 1997 cell
    inputs = np.random.default_rng(2).random(30)  # (T,): drawn as a line
    assert_png(plot_gates(gates, cells, tmp_path / "gates.png", units=8, inputs=inputs))


def test_gates_rejects_bad_shapes(tmp_path):
    gates, cells = gate_arrays()
    with pytest.raises(ValueError, match=r"`gates` must have shape \(T, 4, H\)"):
        plot_gates(gates[:, :3], cells, tmp_path / "g.png")
    with pytest.raises(ValueError, match=r"`cells` must have shape \(T, H\) = \(30, 12\)"):
        plot_gates(gates, cells[:-1], tmp_path / "g.png")
    with pytest.raises(ValueError, match=r"`inputs` must have shape \(T,\) or \(T, I\) with T = 30"):
        plot_gates(gates, cells, tmp_path / "g.png", inputs=np.ones(29))
    with pytest.raises(ValueError, match="`units` must be a positive integer"):
        plot_gates(gates, cells, tmp_path / "g.png", units=0)
    assert list(tmp_path.iterdir()) == []


def test_learning_curves_writes_a_png(tmp_path):
    history = [
        {"step": 10 * i, "train_loss": 1.0 / (i + 1), "val_loss": 1.2 / (i + 1) if i % 3 == 0 else None}
        for i in range(20)
    ]
    history[5]["train_loss"] = float("nan")  # skipped, not an error
    assert_png(plot_learning_curves(history, tmp_path / "curves.png", log_y=True, title="adding"))


def test_learning_curves_without_step_and_with_numpy_values(tmp_path):
    history = [{"loss": np.float32(1.0 / (i + 1)), "accuracy": i / 10} for i in range(10)]
    assert_png(plot_learning_curves(history, tmp_path / "curves.png", keys=("loss", "accuracy", "missing")))


def test_learning_curves_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="`history` is empty"):
        plot_learning_curves([], tmp_path / "c.png")
    with pytest.raises(ValueError, match=r"None of keys \['train_loss', 'val_loss'\].*\['loss', 'step'\]"):
        plot_learning_curves([{"step": 1, "loss": 0.5}], tmp_path / "c.png")
    with pytest.raises(ValueError, match=r"history\[1\]\['train_loss'\] = 'high' is not a number"):
        plot_learning_curves([{"train_loss": 0.5}, {"train_loss": "high"}], tmp_path / "c.png")
    assert list(tmp_path.iterdir()) == []
