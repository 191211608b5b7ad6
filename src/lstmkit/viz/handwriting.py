"""Pictures of pen trajectories with the text read from them: numpy arrays in, the PNG's path out."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .plots import save_figure

__all__ = ["plot_handwriting"]

ARROW, EMPTY = "\u2192", "\u2205"  # -> and the empty-set sign for an empty output


def plot_handwriting(
    trajectories: Sequence[np.ndarray],
    truths: Sequence[str],
    outputs: Sequence[str],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    ncols: int = 3,
) -> Path:
    """A grid of written words, each with its true text and the recognised one (green when equal, red otherwise).

    Args:
        trajectories: one (N, 3) array per word: x, y (up), pen_up (1 on the last point of a stroke).
        truths: the true texts; outputs: the recognised texts (same length).
        path: the PNG to write.
    """
    if not (len(trajectories) == len(truths) == len(outputs)) or not trajectories:
        raise ValueError(f"Give as many truths ({len(truths)}) and outputs ({len(outputs)}) as trajectories "
                         f"({len(trajectories)}), at least one.")  # fmt: skip
    ncols = min(ncols, len(trajectories))
    nrows = math.ceil(len(trajectories) / ncols)
    fig = Figure(figsize=(3.6 * ncols, 1.9 * nrows + (0.4 if title else 0)))
    for k, (points, truth, output) in enumerate(zip(trajectories, truths, outputs, strict=True)):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        points = np.asarray(points, dtype=np.float64)
        ends = np.flatnonzero(points[:, 2] > 0.5).tolist()
        if not ends or ends[-1] != len(points) - 1:
            ends.append(len(points) - 1)
        start = 0
        for end in ends:  # one line per stroke: the pen's jumps are not drawn
            ax.plot(points[start : end + 1, 0], points[start : end + 1, 1], color="black", linewidth=1.1)
            start = end + 1
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
        ok = output == truth
        ax.set_title(f"{truth} {ARROW} {output or EMPTY}", fontsize=10, color="#1a7f37" if ok else "#cf222e")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path)
