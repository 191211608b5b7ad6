"""Pictures of LSTM behaviour, written as PNG files: numpy arrays in, the file's path out.

Figures are drawn on matplotlib's Agg canvas directly (``matplotlib.figure.Figure`` plus ``FigureCanvasAgg``, no
pyplot): nothing is ever shown, no global figure list grows, and the process's matplotlib backend is left alone.
Every function writes atomically (a temporary file in the target directory, then ``os.replace``), so a reader never
sees half a PNG, and returns the path it wrote.

Dimension letters: ``T`` time steps, ``H`` hidden size, ``I`` input size, ``N`` number of lags.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "plot_alignment",
    "plot_anomaly",
    "plot_attention",
    "plot_confusion",
    "plot_forecast",
    "plot_gates",
    "plot_gradient_flow",
    "plot_learning_curves",
]

_GATE_LABELS = ("i: input gate", "f: forget gate", "g: cell input", "o: output gate")  # gate order i, f, g, o
_LINE_STYLES = ("-", "--", ":", "-.")
_DPI = 110


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` as a PNG at ``path`` atomically; create the parent directory if needed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)  # attach the Agg canvas: render off-screen, whatever pyplot's backend is
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            fig.savefig(handle, format="png", dpi=_DPI)
        os.chmod(tmp, 0o644)  # mkstemp makes files 0600; a picture should be as readable as any other output
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return target


def plot_gradient_flow(
    lags: np.ndarray,
    norms: Mapping[str, np.ndarray],
    path: str | os.PathLike[str],
    title: str = "Gradient norm against time lag",
) -> Path:
    """Plot ‖∂L/∂h_t‖ against the time lag T - t, log-scale y, one curve per entry of ``norms``.

    This is the picture of H&S 1997 §3 and Arjovsky et al. 2016 Fig. 1: a tanh RNN's gradient decays exponentially with
    the lag (a straight line on a log axis), an LSTM's far less. Keys that share a model name before `` (`` share a
    colour and differ in line style, so ``"lstm (init)"`` and ``"lstm (trained)"`` read as one model at two times.
    Zero, negative and non-finite norms (underflow) are left out of the curve.

    Args:
        lags: ``(N,)`` time lags T - t, e.g. ``np.arange(T)``.
        norms: model name -> ``(N,)`` gradient norms at those lags.
        path: where the PNG goes.
        title: the figure title.

    Returns:
        The path written.

    Raises:
        ValueError: if ``norms`` is empty, a curve's shape differs from ``lags``, or no norm is positive.
    """
    lags = np.asarray(lags, dtype=float)
    if lags.ndim != 1:
        raise ValueError(f"`lags` must be 1-D (N,), got shape {lags.shape}.")
    if not norms:
        raise ValueError("`norms` is empty; pass at least one curve, e.g. {'lstm': norms_lstm, 'rnn': norms_rnn}.")
    fig = Figure(figsize=(7.0, 4.5))
    ax = fig.subplots()
    colours: dict[str, str] = {}
    variants: dict[str, int] = {}
    plotted = 0
    for name, values in norms.items():
        values = np.asarray(values, dtype=float)
        if values.shape != lags.shape:
            raise ValueError(f"norms[{name!r}] has shape {values.shape}; expected {lags.shape} to match `lags`.")
        model = name.split(" (")[0]
        if model not in colours:
            colours[model] = f"C{len(colours) % 10}"
        style = _LINE_STYLES[variants.get(model, 0) % len(_LINE_STYLES)]
        variants[model] = variants.get(model, 0) + 1
        keep = np.isfinite(values) & (values > 0)  # a log axis cannot show zeros (underflowed gradients)
        plotted += int(keep.sum())
        label = name if keep.all() else f"{name} ({int((~keep).sum())} zero or non-finite points left out)"
        ax.plot(lags[keep], values[keep], color=colours[model], linestyle=style, label=label)
    if plotted == 0:
        raise ValueError("No positive, finite gradient norm to plot on a log axis; every curve is zero or non-finite.")
    ax.set_yscale("log")
    ax.set_xlabel("time lag T − t (steps)")
    ax.set_ylabel("‖∂L/∂h_t‖")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)


def _gate_limits(values: np.ndarray, gate: int) -> tuple[float, float, str]:
    """Colour limits and map: sigmoid gates on [0, 1], the cell input symmetric about 0."""
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if gate == 2:  # g = tanh(...) in [-1, 1] (or [-2, 2] in the 1997 cell)
        bound = max(1.0, abs(low), abs(high))
        return -bound, bound, "RdBu_r"
    if low >= 0.0 and high <= 1.0:
        return 0.0, 1.0, "viridis"
    return low, high, "viridis"


def plot_gates(
    gates: np.ndarray,
    cells: np.ndarray,
    path: str | os.PathLike[str],
    units: int = 8,
    inputs: np.ndarray | None = None,
    title: str | None = None,
) -> Path:
    """Plot gate activations and the cell state over time for the first ``units`` hidden units.

    One heatmap per gate (units against time; i, f, o on a fixed [0, 1] colour scale when they lie in it, g symmetric
    about 0), then the cell state c_t as one line per unit, and, if given, the input sequence on top (a line for one
    feature, a heatmap for several). All panels share the time axis.

    Args:
        gates: ``(T, 4, H)`` gate activations in gate order i, f, g, o (after their sigmoid / tanh).
        cells: ``(T, H)`` cell states c_t.
        path: where the PNG goes.
        units: how many hidden units to show, the first ones (clipped to H).
        inputs: optional ``(T,)`` or ``(T, I)`` input sequence.
        title: optional figure title.

    Returns:
        The path written.

    Raises:
        ValueError: on shapes that do not match ``(T, 4, H)`` / ``(T, H)`` / ``(T, I)``, or ``units < 1``.
    """
    gates = np.asarray(gates, dtype=float)
    cells = np.asarray(cells, dtype=float)
    if gates.ndim != 3 or gates.shape[1] != 4:
        raise ValueError(f"`gates` must have shape (T, 4, H) in gate order i, f, g, o; got {gates.shape}.")
    steps, _, hidden = gates.shape
    if cells.shape != (steps, hidden):
        raise ValueError(f"`cells` must have shape (T, H) = {(steps, hidden)} to match `gates`; got {cells.shape}.")
    if isinstance(units, bool) or not isinstance(units, int) or units < 1:
        raise ValueError(f"`units` must be a positive integer, got {units!r}.")
    shown = min(units, hidden)
    if inputs is not None:
        inputs = np.asarray(inputs, dtype=float)
        if inputs.ndim == 1:
            inputs = inputs[:, None]  # (T, 1)
        if inputs.ndim != 2 or inputs.shape[0] != steps:
            raise ValueError(f"`inputs` must have shape (T,) or (T, I) with T = {steps}; got {inputs.shape}.")

    rows = 5 + (inputs is not None)
    fig = Figure(figsize=(10.0, 1.7 * rows + 0.6))
    # A narrow second column holds the colour bars, so heatmaps and line plots keep the same width and time axis.
    grid = fig.add_gridspec(rows, 2, width_ratios=(50, 1), hspace=0.25, wspace=0.03, top=0.94, bottom=0.07)
    extent = (-0.5, steps - 0.5, -0.5, shown - 0.5)  # pixel centres on time steps and unit indices
    time = np.arange(steps)
    first_ax = None
    row = 0

    def new_axes(r: int):
        ax = fig.add_subplot(grid[r, 0], sharex=first_ax)
        ax.tick_params(labelbottom=r == rows - 1)  # time labels on the bottom panel only
        return ax, fig.add_subplot(grid[r, 1])

    if inputs is not None:
        ax, cax = new_axes(row)
        first_ax = ax
        if inputs.shape[1] == 1:
            ax.plot(time, inputs[:, 0], color="k", linewidth=1.0)
            cax.set_axis_off()
        else:
            image = ax.imshow(
                inputs.T,
                aspect="auto",
                origin="lower",
                interpolation="nearest",
                cmap="Greys",
                extent=(-0.5, steps - 0.5, -0.5, inputs.shape[1] - 0.5),
            )
            fig.colorbar(image, cax=cax)
        ax.set_ylabel("input")
        row += 1

    for gate, label in enumerate(_GATE_LABELS):
        ax, cax = new_axes(row)
        first_ax = first_ax or ax
        values = gates[:, gate, :shown].T  # (units, T)
        vmin, vmax, cmap = _gate_limits(values, gate)
        image = ax.imshow(
            values,
            aspect="auto",
            origin="lower",
            interpolation="nearest",
            cmap=cmap,
            vmin=vmin,
            vmax=vmax,
            extent=extent,
        )
        fig.colorbar(image, cax=cax)
        ax.set_ylabel(f"{label}\nunit")
        row += 1

    ax, cax = new_axes(row)
    for unit in range(shown):
        ax.plot(time, cells[:, unit], linewidth=1.0, label=f"unit {unit}")
    cax.set_axis_off()
    ax.set_ylabel("cell state c_t")
    ax.set_xlabel("time step t")
    ax.set_xlim(-0.5, steps - 0.5)
    if shown <= 10:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small", frameon=False)
    fig.suptitle(title or f"Gates and cell state, first {shown} of {hidden} units")
    return save_figure(fig, path)


def plot_learning_curves(
    history: Sequence[Mapping[str, object]],
    path: str | os.PathLike[str],
    keys: Sequence[str] = ("train_loss", "val_loss"),
    title: str | None = None,
    log_y: bool = False,
) -> Path:
    """Plot metrics from a training history, one line per key.

    The x axis is the records' ``"step"`` (or else ``"epoch"``) when every record has one, otherwise the record index.
    Records without a key, or with ``None`` or NaN there, are skipped for that key (validation may run less often).

    Args:
        history: one mapping per logged point, e.g. ``[{"step": 100, "train_loss": 0.7, "val_loss": 0.8}, ...]``.
        path: where the PNG goes.
        keys: the metrics to draw; keys absent from every record are ignored.
        title: optional figure title.
        log_y: log-scale y axis (only positive values are drawn).

    Returns:
        The path written.

    Raises:
        ValueError: if ``history`` is empty, or none of ``keys`` occurs in it (the message lists the keys it has).
    """
    if len(history) == 0:
        raise ValueError("`history` is empty; pass one dict per logged point, e.g. [{'step': 1, 'train_loss': 0.5}].")
    x_key = next((k for k in ("step", "epoch") if all(k in record for record in history)), None)
    fig = Figure(figsize=(7.0, 4.5))
    ax = fig.subplots()
    drawn = 0
    for key in keys:
        xs, ys = [], []
        for index, record in enumerate(history):
            value = record.get(key)
            if value is None:
                continue
            try:
                y = float(value)  # plain, numpy or 0-d torch numbers
            except (TypeError, ValueError) as error:
                raise ValueError(f"history[{index}][{key!r}] = {value!r} is not a number.") from error
            if math.isnan(y) or (log_y and y <= 0.0):
                continue
            xs.append(float(record[x_key]) if x_key else float(index))
            ys.append(y)
        if xs:
            ax.plot(xs, ys, marker="." if len(xs) < 50 else None, label=key)
            drawn += 1
    if drawn == 0:
        available = sorted({key for record in history for key in record})
        raise ValueError(f"None of keys {list(keys)} has a value to plot in `history`; its keys are {available}.")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(x_key or "record")
    ax.set_ylabel("value")
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)


def plot_forecast(
    history_time: np.ndarray,
    history: np.ndarray,
    forecast_time: np.ndarray,
    median: np.ndarray,
    path: str | os.PathLike[str],
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
    actual: np.ndarray | None = None,
    title: str = "Forecast",
    interval_label: str = "prediction interval",
) -> Path:
    """History, the point forecast, its prediction interval (shaded) and, when known, what actually happened.

    All arrays are 1-D; times may be numbers or numpy datetimes. Missing history values (NaN) show as gaps.
    """
    fig = Figure(figsize=(9, 3.6))
    ax = fig.add_subplot()
    ax.plot(history_time, history, color="0.25", linewidth=1.0, label="history")
    if lower is not None and upper is not None:
        ax.fill_between(forecast_time, lower, upper, color="tab:blue", alpha=0.25, linewidth=0, label=interval_label)
    ax.plot(forecast_time, median, color="tab:blue", linewidth=1.6, label="forecast (median)")
    if actual is not None:
        ax.plot(forecast_time, actual, color="tab:orange", linewidth=1.0, linestyle="--", label="actual")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    fig.autofmt_xdate()
    fig.tight_layout()
    return save_figure(fig, path)


def _runs_of(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (start, end) of each run of True values."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(s), int(e) - 1) for s, e in zip(edges[::2], edges[1::2], strict=True)]


def plot_anomaly(
    time: np.ndarray,
    values: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    path: str | os.PathLike[str],
    flags: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    title: str = "Anomaly scores",
) -> Path:
    """The series on top, labelled anomalies shaded and flagged steps marked; the score below (log scale when it spans
    decades) with the threshold line.

    Args:
        time, values, scores: ``(T,)`` each; times may be numbers or numpy datetimes; NaN scores show as gaps.
        threshold: the score above which a step is flagged.
        path: where the PNG goes.
        flags: ``(T,)`` booleans, the flagged steps (default: ``scores > threshold``).
        labels: ``(T,)`` 0/1, the labelled anomalies (shaded on both panels), when known.
        title: the figure title.
    """
    time, values = np.asarray(time), np.asarray(values, dtype=float)
    scores = np.asarray(scores, dtype=float)
    if not (time.shape == values.shape == scores.shape) or values.ndim != 1:
        raise ValueError(
            f"time, values and scores must be 1-D and of one length, got shapes {time.shape}, {values.shape} and "
            f"{scores.shape}."
        )
    for name, given in (("flags", flags), ("labels", labels)):
        if given is not None and np.shape(given) != values.shape:
            raise ValueError(
                f"{name} must hold one value per step, like values: got shape {np.shape(given)} for {values.shape}; "
                f"pass the {name} of the steps plotted."
            )
    if flags is None:
        flags = np.nan_to_num(scores, nan=-np.inf) > threshold
    flags = np.asarray(flags, dtype=bool)
    fig = Figure(figsize=(10, 5.2))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    top.plot(time, values, color="0.25", linewidth=0.8, label="series")
    if labels is not None:
        for i, (s, e) in enumerate(_runs_of(np.asarray(labels).astype(bool))):
            for ax in (top, bottom):
                # at least a few steps wide, so a short anomaly in a long series stays visible
                lo, hi = time[max(s - 2, 0)], time[min(e + 2, len(time) - 1)]
                ax.axvspan(lo, hi, color="tab:orange", alpha=0.3, linewidth=0, label="labelled anomaly" if
                           i == 0 and ax is top else None)  # fmt: skip
    if flags.any():
        top.scatter(time[flags], values[flags], s=10, color="tab:red", zorder=3, label=f"flagged ({flags.sum()} steps)")
    top.set_title(title)
    top.grid(alpha=0.3)
    top.legend(loc="upper left", fontsize="small")
    finite = scores[np.isfinite(scores) & (scores > 0)]
    bottom.plot(time, scores, color="tab:blue", linewidth=0.8, label="score")
    bottom.axhline(threshold, color="tab:red", linestyle="--", linewidth=1.0, label=f"threshold {threshold:.3g}")
    if finite.size and threshold > 0 and finite.max() / max(finite.min(), 1e-300) > 1e3:
        bottom.set_yscale("log")
    bottom.set_ylabel("score")
    bottom.grid(alpha=0.3)
    bottom.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_confusion(
    matrix: np.ndarray,
    classes: Sequence[str],
    path: str | os.PathLike[str],
    title: str = "Confusion matrix",
) -> Path:
    """A confusion matrix as a heat map with the counts written in: rows the true class, columns the predicted one.

    Args:
        matrix: ``(K, K)`` counts, ``matrix[i, j]`` = series of class ``classes[i]`` predicted as ``classes[j]``.
        classes: the ``K`` class names, in the matrix's order.
        path: where the PNG goes.
        title: the figure title.
    """
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] != len(classes):
        raise ValueError(f"matrix must be (K, K) with K = {len(classes)} classes, got shape {matrix.shape}.")
    k = len(classes)
    side = min(3.0 + 0.45 * k, 12.0)
    fig = Figure(figsize=(side + 1.0, side))
    ax = fig.add_subplot()
    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, totals, out=np.zeros(matrix.shape, dtype=float), where=totals > 0)  # row-normalised
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    if k <= 30:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize="small",
                        color="white" if share[i, j] > 0.6 else "black")  # fmt: skip
    ax.set_xticks(range(k), [str(c) for c in classes], rotation=45 if k > 4 else 0, ha="right" if k > 4 else "center")
    ax.set_yticks(range(k), [str(c) for c in classes])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize="medium")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_attention(
    series: Sequence[np.ndarray],
    weights: Sequence[np.ndarray],
    path: str | os.PathLike[str],
    titles: Sequence[str] | None = None,
) -> Path:
    """A few series, one panel each, with the attention weight of every step shaded beneath them.

    Args:
        series: each ``(T_i, C)`` (or ``(T_i,)``): the series as the model read it, one line per channel.
        weights: each ``(T_i,)``: the attention weight of each step (summing to 1).
        path: where the PNG goes.
        titles: one title per panel.
    """
    if len(series) != len(weights) or not series:
        raise ValueError(f"Give one weight vector per series, got {len(series)} series and {len(weights)} weights.")
    fig = Figure(figsize=(9, 2.3 * len(series)))
    axes = np.atleast_1d(fig.subplots(len(series), 1, squeeze=False)[:, 0])
    for n, (ax, x, w) in enumerate(zip(axes, series, weights, strict=True)):
        x = np.asarray(x, dtype=float).reshape(len(w), -1)  # (T, C)
        steps = np.arange(len(w))
        for c in range(x.shape[1]):
            ax.plot(steps, x[:, c], linewidth=1.0, label=f"channel {c}" if x.shape[1] > 1 else "series")
        ax.set_ylabel("value")
        twin = ax.twinx()
        twin.fill_between(steps, 0.0, np.asarray(w, dtype=float), step="mid", color="tab:orange", alpha=0.35,
                          linewidth=0, label="attention")  # fmt: skip
        twin.set_ylim(0.0, max(float(np.max(w)) * 1.1, 1e-9))
        twin.set_ylabel("attention weight")
        ax.set_zorder(twin.get_zorder() + 1)  # the series over the shading
        ax.patch.set_visible(False)
        if titles is not None:
            ax.set_title(titles[n], fontsize="small")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("step")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_alignment(
    weights: np.ndarray, source_tokens: Sequence[str], output_tokens: Sequence[str], path: str | os.PathLike[str],
    title: str | None = None,
) -> Path:  # fmt: skip
    """A sequence-to-sequence attention alignment as a heat map: one row per output token, one column per source
    token, darker where the decoder looked.

    Args:
        weights: (outputs, sources) attention weights, each row summing to 1.
        source_tokens, output_tokens: the labels of the columns and rows.
    """
    w = np.asarray(weights, dtype=float)
    if w.shape != (len(output_tokens), len(source_tokens)):
        raise ValueError(
            f"weights are shaped {w.shape}, but there are {len(output_tokens)} output and {len(source_tokens)} source "
            "tokens; give one row per output token and one column per source token."
        )
    fig = Figure(figsize=(1.0 + 0.45 * max(len(source_tokens), 4), 1.0 + 0.4 * max(len(output_tokens), 4)))
    ax = fig.subplots()
    ax.imshow(w, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(source_tokens)), labels=list(source_tokens), rotation=60, ha="right")
    ax.set_yticks(range(len(output_tokens)), labels=list(output_tokens))
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)
