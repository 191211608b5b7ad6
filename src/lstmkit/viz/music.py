"""A piano roll of a (four-voice) piece, written as a PNG: numpy arrays in, the file's path out.

Notes are rows ``(start, length, pitch, voice)`` with ``start`` and ``length`` in grid steps (a sixteenth note for
the chorale encoding), ``pitch`` a MIDI number and ``voice`` an index (0 soprano .. 3 bass); each voice has its own
colour so crossing parts stay readable.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .plots import save_figure

__all__ = ["plot_piano_roll"]

_VOICE_COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#7f7f7f")
_NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def plot_piano_roll(
    notes: np.ndarray,
    path: str | os.PathLike[str],
    *,
    bar_lines: Sequence[float] = (),
    voice_names: Sequence[str] = ("soprano", "alto", "tenor", "bass"),
    title: str = "",
    steps_per_quarter: int = 4,
) -> Path:
    """Draw ``notes`` as coloured bars on a pitch / time grid.

    Args:
        notes: (N, 4) array of ``start, length, pitch, voice`` (steps, steps, MIDI number, voice index).
        path: the PNG to write.
        bar_lines: step positions of bar lines, drawn as thin vertical lines.
        voice_names: the legend's names, by voice index.
        title: the figure's title.
        steps_per_quarter: grid steps per quarter note, for the time axis (labelled in quarter notes).

    Returns:
        The path written.

    Raises:
        ValueError: ``notes`` is not an (N, 4) array.
    """
    notes = np.asarray(notes, dtype=float)
    if notes.ndim != 2 or notes.shape[1] != 4:
        raise ValueError(f"notes must be an (N, 4) array of start, length, pitch, voice; got shape {notes.shape}.")
    end = float((notes[:, 0] + notes[:, 1]).max()) if len(notes) else 16.0
    width = min(max(6.0, end / 16.0 * 1.2), 16.0)
    fig = Figure(figsize=(width, 3.6))
    ax = fig.add_subplot()
    for voice in np.unique(notes[:, 3]).astype(int):  # one collection per voice: fast for long pieces
        mine = notes[notes[:, 3] == voice]
        boxes = [Rectangle((start, pitch - 0.4), length - 0.15, 0.8) for start, length, pitch, _ in mine]
        colour = _VOICE_COLOURS[voice % len(_VOICE_COLOURS)]
        ax.add_collection(PatchCollection(boxes, facecolor=colour, edgecolor="none"))
    for x in bar_lines:
        ax.axvline(x, color="#bbbbbb", linewidth=0.6, zorder=0)
    low, high = (int(notes[:, 2].min()) - 2, int(notes[:, 2].max()) + 2) if len(notes) else (48, 84)
    ax.set_xlim(0, end)
    ax.set_ylim(low, high)
    c_notes = [p for p in range(low, high + 1) if p % 12 == 0]
    ax.set_yticks(c_notes, [f"{_NOTE_NAMES[p % 12]}{p // 12 - 1}" for p in c_notes])
    quarter_ticks = np.arange(0, end + 1, steps_per_quarter * 4)
    ax.set_xticks(quarter_ticks, [f"{int(t // steps_per_quarter)}" for t in quarter_ticks])
    ax.set_xlabel("quarter notes")
    ax.set_ylabel("pitch")
    used = sorted({int(v) for v in notes[:, 3]}) if len(notes) else []
    handles = [Rectangle((0, 0), 1, 1, color=_VOICE_COLOURS[v % len(_VOICE_COLOURS)]) for v in used]
    labels = [voice_names[v] if v < len(voice_names) else f"voice {v}" for v in used]
    if handles:
        ax.legend(handles, labels, loc="upper right", fontsize=7, ncols=len(handles), frameon=False)
    if title:
        ax.set_title(title, fontsize=9)
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.14, top=0.9)
    return save_figure(fig, path)
