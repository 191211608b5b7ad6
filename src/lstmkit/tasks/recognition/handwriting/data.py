"""Synthetic online handwriting: words from the Hershey stroke fonts, and the data set files.

Trajectories, their checks and features live in :mod:`.strokes` (``x, y, pen_up`` points, ``y`` up).

Synthetic data (:func:`make_samples`): words rendered from the Hershey fonts (package ``Hershey-Fonts``), with a
random slant, rotation, scale, aspect, baseline drift (a slow wave), per-point jitter and writing-speed variation
(the points are taken at equal time along the strokes while the speed varies), all from one seed; optionally
elastic distortion, doubled and broken strokes, letters borrowed from other fonts within a word
(:func:`render_mixed`: a few fonts then give many combinations of letter shapes), and ascender and descender loops
narrowed toward a stroke written up and back down (:func:`collapse_loops`). Only two script
designs exist among the 32 fonts: ``scripts`` (script simplex, one line; ``cursive`` is the same glyphs) and
``scriptc`` (script complex, drawn with double lines). See :data:`TRAIN_FONTS` and :data:`TEST_FONTS`.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "LOOPED",
    "MORE_FONTS",
    "SCRIPT_FONTS",
    "TEST_FONTS",
    "TRAIN_FONTS",
    "Sample",
    "collapse_loops",
    "load_dataset",
    "make_dataset",
    "make_samples",
    "read_words",
    "render_mixed",
    "render_word",
    "save_dataset",
    "split_words",
    "word_list",
]

SCRIPT_FONTS = ("scripts", "scriptc")
# Training: the script simplex (the one single-line script design) and Latin roman / italic fonts of every weight
# (simplex, duplex, triplex), so the network meets single- and multi-line renderings of letters. Held out: script
# complex, the double-line rendering of the script letters, never seen in training in any form.
TRAIN_FONTS = ("scripts", "futural", "rowmand", "timesr", "timesi", "timesib")
TEST_FONTS = ("scriptc",)
# More letter shapes for training (still no script complex): Futura medium (duplex), Roman triplex and Gothic
# italic, a calligraphic hand whose letterforms differ most from the others.
MORE_FONTS = ("futuram", "rowmant", "gothicita")
FONT_WEIGHTS = {"scripts": 0.5}  # half the training words are written in the script font, the rest share 0.5


@dataclass(frozen=True)
class Sample:
    """One written word: ``points`` (N, 3) x, y, pen_up; ``times`` (N,) seconds; its text and font."""

    text: str
    font: str
    points: np.ndarray
    times: np.ndarray


# ---- words and fonts ---------------------------------------------------------------------------------------------
def word_list(min_count: int = 3, min_length: int = 2, max_length: int = 10) -> list[str]:
    """Lower-case words (a-z only) used at least ``min_count`` times in the bundled Shakespeare corpus, sorted."""
    from ...text.data import load_corpus

    counts = Counter(re.findall(r"\b[a-z]+\b", load_corpus("shakespeare")))
    return sorted(w for w, c in counts.items() if c >= min_count and min_length <= len(w) <= max_length)


def read_words(path: str | os.PathLike[str], alphabet: str = "abcdefghijklmnopqrstuvwxyz") -> list[str]:
    """Distinct words of a text file, one per line (blank lines skipped); each must be written in ``alphabet``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No word list at {path}.")
    words = sorted({w.strip() for w in path.read_text(encoding="utf-8").splitlines() if w.strip()})
    bad = [w for w in words if set(w) - set(alphabet)]
    if bad:
        raise ValueError(f"{path.name} has {len(bad)} word(s) with characters outside {alphabet!r} (first: "
                         f"{bad[0]!r}); keep to those characters, one word per line.")  # fmt: skip
    if not words:
        raise ValueError(f"{path.name} has no words; give one word per line.")
    return words


def split_words(words: list[str], n_test: int, n_val: int, seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    """Disjoint (train, validation, test) word lists, a seeded shuffle."""
    order = np.random.default_rng(seed).permutation(len(words))
    if n_test + n_val >= len(words):
        raise ValueError(f"{len(words)} words cannot give {n_test} test and {n_val} validation words and leave any "
                         "for training.")  # fmt: skip
    pick = [words[i] for i in order]
    return pick[n_test + n_val :], pick[n_test : n_test + n_val], pick[:n_test]


_FONT_CACHE: dict[str, object] = {}


def render_word(word: str, font: str) -> list[np.ndarray]:
    """The strokes (each (M, 2) x, y; y up; letter height about 100) of ``word`` in a Hershey font."""
    try:
        from HersheyFonts import HersheyFonts
    except ImportError as e:
        raise ImportError("Handwriting data comes from the Hershey fonts: pip install 'lstmkit[handwriting]' "
                          "(the Hershey-Fonts package).") from e  # fmt: skip
    if font not in _FONT_CACHE:
        f = HersheyFonts()
        if font not in f.default_font_names:
            raise KeyError(f"Unknown Hershey font {font!r}; the fonts are {', '.join(f.default_font_names)}.")
        f.load_default_font(font)
        f.normalize_rendering(100)
        _FONT_CACHE[font] = f
    strokes = [np.array(list(s), dtype=np.float64) for s in _FONT_CACHE[font].strokes_for_text(word)]  # type: ignore[attr-defined]
    return [s for s in strokes if len(s)]


def _glyph(char: str, font: str) -> tuple[list[np.ndarray], float]:
    """One letter's strokes in a Hershey font (its left edge at x = 0) and its advance (how far the next starts)."""
    strokes = render_word(char, font)
    f = _FONT_CACHE[font]
    glyphs = list(f.glyphs_for_text(char))  # type: ignore[attr-defined]
    return strokes, (glyphs[0].char_width * f.render_options.scalex if glyphs else 0.0)  # type: ignore[attr-defined]


@functools.cache
def _x_band(font: str) -> tuple[float, float]:
    """The baseline and x-height of a font: where its ``x`` sits (fonts differ in both after normalising)."""
    y = np.concatenate(render_word("x", font))[:, 1]
    return float(y.min()), float(np.ptp(y))


# Letters whose ascender or descender a cursive hand often writes as a loop (``t`` is left out: its crossbar is what
# tells it from an unlooped ``l``, and narrowing the ascender would shorten the crossbar). They are narrowed in every
# font: in print fonts that also pulls in what sticks out above or below the body (the hook of ``f``, the lower bowl
# of a two-storey ``g``, serifs), which makes other shapes, not looped ones.
LOOPED = frozenset("bdfhklgjpqyz")


def _subdivide(stroke: np.ndarray, step: float) -> np.ndarray:
    """A polyline (M, 2) with points added along its segments at most ``step`` apart; its own vertices (corners,
    cusps) all kept."""
    if len(stroke) < 2:
        return stroke.copy()
    pieces = [stroke[:1]]
    for a, b in zip(stroke[:-1], stroke[1:], strict=True):
        n = max(int(math.ceil(np.linalg.norm(b - a) / step)), 1)
        pieces.append(a + (b - a) * (np.arange(1, n + 1) / n)[:, None])  # (n, 2), ending on b
    return np.concatenate(pieces)


def collapse_loops(strokes: list[np.ndarray], base: float, height: float, keep: float) -> list[np.ndarray]:
    """One letter's strokes with its ascender and descender narrowed to ``keep`` of their width (0: a loop becomes
    a line written up and back down, as many writers write ``l``, ``b``, ``d`` or ``g``; 1: unchanged).

    ``base`` and ``height``: the letter's baseline and x-height. Above the x-height (and below the baseline) points
    move toward the straight line that best fits the ascender (descender), so a slanted stem stays slanted; the pull
    grows over the first 0.35 x-heights so the body of the letter is untouched and nothing breaks at the seam.
    """
    if not 0.0 <= keep <= 1.0:
        raise ValueError(f"keep is the share of a loop's width kept, between 0 and 1, not {keep}.")
    if not height > 0:
        raise ValueError(f"height is the letter's x-height, a positive distance, not {height}.")
    if keep == 1.0 or not strokes:
        return strokes
    ramp = 0.35 * height
    zones = (  # how far into the ascender, then the descender, each point is (0 in the body, 1 beyond the ramp)
        lambda y: np.clip((y - base - height) / ramp, 0, 1),
        lambda y: np.clip((base - y) / ramp, 0, 1),
    )
    out = [_subdivide(s, height / 15) for s in strokes]  # dense, so the pull bends the strokes smoothly
    pts = np.concatenate(out)  # (M, 2)
    for depth in zones:
        inside = depth(pts[:, 1]) > 0.5
        if inside.sum() < 2:
            continue
        y, x = pts[inside, 1], pts[inside, 0]
        # the stem: x = tilt[0] * y + tilt[1]; a zone too flat to show a direction is pulled toward its middle
        tilt = np.polyfit(y, x, 1) if np.ptp(y) > 0.1 * height else np.array([0.0, x.mean()])
        for s in out:
            axis = tilt[0] * s[:, 1] + tilt[1]
            s[:, 0] -= depth(s[:, 1]) * (1 - keep) * (s[:, 0] - axis)
    return out


def render_mixed(word: str, font: str, others: tuple[str, ...] | list[str], share: float,
                 rng: np.random.Generator, keep_loops: float = 1.0) -> list[np.ndarray]:  # fmt: skip
    """``word`` in ``font`` with about ``share`` of its letters written in a random font of ``others`` instead.

    Each borrowed letter is scaled to the word font's x-height and set on its baseline, so the word stays one line
    of one size: a writer whose letters take different forms from word to word (a looped or a plain ``l``, a
    rounded or an angular ``r``). Letter shapes combine freely this way, which whole-word rendering of a few fonts
    never shows; a word written in one font is always the same sequence of shapes. ``keep_loops``: the share of the
    width kept of the ascenders and descenders of :data:`LOOPED` letters (see :func:`collapse_loops`).
    """
    base, height = _x_band(font)
    out: list[np.ndarray] = []
    x = 0.0
    for char in word:
        pick = others[int(rng.integers(len(others)))] if others and rng.random() < share else font
        strokes, advance = _glyph(char, pick)
        b, h = _x_band(pick)
        if keep_loops < 1.0 and char in LOOPED:
            strokes = collapse_loops(strokes, b, h, keep_loops)
        k = height / h if h > 0 else 1.0
        out += [np.column_stack([s[:, 0] * k + x, (s[:, 1] - b) * k + base]) for s in strokes]
        x += advance * k
    return out


def _retrace(strokes: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """A writer who goes over parts of strokes again and lifts the pen mid-stroke.

    Per word, strokes are cut at a share ``p_cusp`` (0-1) of their cusps (where the pen turns back) and a share
    ``p_split`` (0-0.3) of them at one random point; then a share ``p_again`` (0-0.9) of the pieces is each followed
    by a copy of a random stretch of it (30-100 % of its length, reversed three times in ten) shifted by 3-12 % of
    the word's height. Doubled and broken strokes are common in real pen data; they also
    teach the network that two nearby lines can be one letter, which a single-line font alone never shows.
    """
    height = max(np.ptp(np.concatenate(strokes)[:, 1]), 1.0)
    p_again, p_split, p_cusp = rng.uniform(0, 0.9), rng.uniform(0, 0.3), rng.uniform(0, 1)
    out = []
    for stroke in strokes:
        cuts = []
        if len(stroke) > 2:  # cusps: vertices where the pen turns back by more than 90 degrees
            before, after = np.diff(stroke, axis=0)[:-1], np.diff(stroke, axis=0)[1:]  # (M-2, 2) each
            cusps = np.flatnonzero((before * after).sum(axis=1) < 0) + 1
            cuts += [int(c) for c in cusps if rng.random() < p_cusp]
        if len(stroke) > 3 and rng.random() < p_split:
            cuts.append(int(rng.integers(1, len(stroke) - 1)))
        bounds = [0, *sorted(set(cuts)), len(stroke) - 1]
        pieces = [stroke[a : b + 1] for a, b in zip(bounds, bounds[1:], strict=False) if b > a] or [stroke]
        for piece in pieces:
            out.append(piece)
            if len(piece) < 2 or rng.random() >= p_again:
                continue
            arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(piece, axis=0), axis=1))])
            if arc[-1] == 0:
                continue
            share = rng.uniform(0.3, 1.0)
            start = rng.uniform(0, 1 - share) * arc[-1]
            at = np.linspace(start, start + share * arc[-1], max(int(len(piece) * share), 2))
            copy = np.stack([np.interp(at, arc, piece[:, 0]), np.interp(at, arc, piece[:, 1])], axis=1)
            angle = rng.uniform(0, 2 * math.pi)
            copy = copy + rng.uniform(0.03, 0.12) * height * np.array([math.cos(angle), math.sin(angle)])
            out.append(copy[::-1] if rng.random() < 0.3 else copy)
    return out


def _distort(strokes: list[np.ndarray], rng: np.random.Generator, amount: float) -> list[np.ndarray]:
    """A smooth random displacement of the whole word (elastic distortion, Simard et al. 2003): each axis moves by
    a sum of three random plane waves (wavelength 0.7-2 word heights) of total amplitude up to ``amount`` heights,
    so letters bend and bulge a little differently each time while the word stays legible."""
    height = max(np.ptp(np.concatenate(strokes)[:, 1]), 1.0)
    waves = []
    for _ in range(2):  # x, then y
        k = rng.normal(size=(3, 2))
        k = k / np.linalg.norm(k, axis=1, keepdims=True) * (2 * math.pi / (rng.uniform(0.7, 2.0, (3, 1)) * height))
        waves.append((k, rng.uniform(0, 2 * math.pi, 3), rng.uniform(0, amount, 3) * height / 3))
    out = []
    for stroke in strokes:
        moved = stroke.copy()
        for axis, (k, phase, amp) in enumerate(waves):
            moved[:, axis] += (amp * np.sin(stroke @ k.T + phase)).sum(axis=1)  # (M,)
        out.append(moved)
    return out


def _write(strokes: list[np.ndarray], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One random writer's version of rendered strokes: (N, 3) points and (N,) times."""
    pts = np.concatenate(strokes)
    height = max(np.ptp(pts[:, 1]), 1.0)
    slant = math.tan(math.radians(rng.uniform(-15, 20)))
    angle = math.radians(rng.uniform(-4, 4))
    scale, aspect = rng.uniform(0.5, 2.0), rng.uniform(0.8, 1.25)
    wave_amp, wave_len, wave_phase = rng.uniform(0, 0.06) * height, rng.uniform(1.5, 5) * height, rng.uniform(0, 6.3)
    speed_amp, speed_len = rng.uniform(0, 0.6), rng.uniform(0.3, 2) * height
    step = height / rng.uniform(15, 40)  # ink per unit of time at speed 1: the pen's sampling rate
    jitter = rng.uniform(0, 0.012) * height
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    out, times, t = [], [], 0.0
    for s in strokes:
        if len(s) == 1:
            s = np.concatenate([s, s + 0.5])  # a dot: a tiny stroke
        seg = np.linalg.norm(np.diff(s, axis=0), axis=1)
        arc = np.concatenate([[0.0], np.cumsum(seg)])
        # equal time steps while the speed varies along the stroke: denser points where the pen is slow
        phase = rng.uniform(0, 6.3)
        fine = np.linspace(0, arc[-1], max(int(arc[-1] / step * 4), 2))
        speed = 1 + speed_amp * np.sin(2 * np.pi * fine / speed_len + phase)
        clock = np.concatenate([[0.0], np.cumsum(np.diff(fine) / speed[1:])])
        n = max(int(clock[-1] * 1 / step) + 1, 2)
        at = np.interp(np.linspace(0, clock[-1], n), clock, fine)
        xy = np.stack([np.interp(at, arc, s[:, 0]), np.interp(at, arc, s[:, 1])], axis=1)
        xy[:, 0] = xy[:, 0] * aspect + slant * xy[:, 1]
        xy[:, 1] = xy[:, 1] + wave_amp * np.sin(2 * np.pi * xy[:, 0] / wave_len + wave_phase)
        xy = (xy @ rot.T) * scale + rng.normal(0, jitter * scale, xy.shape)
        pen = np.zeros((n, 1))
        pen[-1] = 1.0
        out.append(np.concatenate([xy, pen], axis=1))
        times.append(t + np.linspace(0, clock[-1], n) * 0.01)
        t = times[-1][-1] + rng.uniform(0.05, 0.3)  # the pen in the air
    return np.concatenate(out), np.concatenate(times)


def make_samples(words: list[str], fonts: tuple[str, ...] | list[str], n: int, seed: int = 0,
                 weights: dict[str, float] | None = None, retrace: bool = False,
                 distort: float = 0.0, mix: float = 0.0, loops: float = 0.0) -> list[Sample]:  # fmt: skip
    """``n`` written words: each a random word of ``words`` in a random font of ``fonts`` (``weights``: the share
    of some fonts; the others share the rest equally) by a random writer, all drawn from ``seed``. ``retrace``:
    the writer also doubles and breaks strokes (see :func:`_retrace`); ``distort``: elastic distortion of up to
    this many word heights (see :func:`_distort`); ``mix``: the share of words whose letters are partly (20-60 %)
    borrowed from the other fonts (see :func:`render_mixed`; their font reads ``"<font>+mixed"``); ``loops``: the
    share of words whose ascenders and descenders (loops in script fonts) are narrowed to 0-60 % of their width (see
    :func:`collapse_loops`)."""
    if not 0.0 <= mix <= 1.0:
        raise ValueError(f"mix is the share of words with letters from several fonts, between 0 and 1, not {mix}.")
    if not 0.0 <= loops <= 1.0:
        raise ValueError(f"loops is the share of words with narrowed loops, between 0 and 1, not {loops}.")
    if not words or not fonts:
        raise ValueError("make_samples needs at least one word and one font.")
    weights = weights or {}
    fixed = sum(weights.get(f, 0.0) for f in fonts if f in weights)
    free = [f for f in fonts if f not in weights]
    p = np.array([weights[f] if f in weights else (1 - fixed) / len(free) for f in fonts])
    p = p / p.sum()
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n):
        word = words[int(rng.integers(len(words)))]
        font = fonts[int(rng.choice(len(fonts), p=p))]
        keep = rng.uniform(0.0, 0.6) if loops > 0 and rng.random() < loops else 1.0  # no draw at loops=0: same data
        if mix > 0 and len(fonts) > 1 and rng.random() < mix:
            others = [f for f in fonts if f != font]
            strokes = render_mixed(word, font, others, rng.uniform(0.2, 0.6), rng, keep_loops=keep)
            font = f"{font}+mixed"
        elif keep < 1.0:
            strokes = render_mixed(word, font, [], 0.0, rng, keep_loops=keep)
        else:
            strokes = render_word(word, font)
        strokes = _distort(strokes, rng, distort) if distort > 0 else strokes
        points, times = _write(_retrace(strokes, rng) if retrace else strokes, rng)
        samples.append(Sample(word, font, points, times))
    return samples


# ---- a whole data set --------------------------------------------------------------------------------------------
SPLITS = ("train", "validation", "test", "test_seen_font")


def make_dataset(
    n_train: int = 20000, n_validation: int = 500, n_test: int = 1000, *, test_words: int = 1000,
    validation_words: int = 300, seed: int = 0, words: list[str] | None = None,
    fonts: tuple[str, ...] = TRAIN_FONTS, distort: float = 0.0, mix: float = 0.0, loops: float = 0.0,
    test_fonts: tuple[str, ...] = TEST_FONTS,
) -> dict[str, list[Sample]]:  # fmt: skip
    """The handwriting data set, split by word and by font, all from ``seed``.

    - ``train``: training words in :data:`TRAIN_FONTS` (half in the script simplex), with doubled and broken strokes
      (``retrace``);
    - ``validation``: other words in the training fonts (picks the epoch; never the test font);
    - ``test``: the held-out words in the held-out font :data:`TEST_FONTS` (the bar);
    - ``test_seen_font``: the same held-out words in the training script font (for comparison).

    ``words``: the vocabulary (default :func:`word_list`, Shakespeare's words used at least 3 times). ``fonts``:
    the training fonts (never the test font); ``distort``: elastic distortion of training and validation words;
    ``mix``: the share of training and validation words with letters from several training fonts (see
    :func:`make_samples`); ``loops``: the share of training and validation words with narrowed loops.
    ``test_fonts``: the held-out font(s) of ``test`` (another font stands in for the real
    test font when choosing a recipe without looking at it).
    """
    if set(fonts) & set(test_fonts):
        raise ValueError(f"The training fonts {fonts} include the held-out font(s) {test_fonts}; leave them out.")
    words = word_list() if words is None else sorted(set(words))
    train_words, val_words, test_words_ = split_words(words, test_words, validation_words, seed)
    extra = dict(weights=FONT_WEIGHTS, retrace=True, distort=distort, mix=mix, loops=loops)
    return {
        "train": make_samples(train_words, fonts, n_train, seed=seed * 4 + 0, **extra),
        "validation": make_samples(val_words, fonts, n_validation, seed=seed * 4 + 1, **extra),
        "test": make_samples(test_words_, test_fonts, n_test, seed=seed * 4 + 2),
        "test_seen_font": make_samples(test_words_, ("scripts",), n_test, seed=seed * 4 + 3),
    }


def save_dataset(path: str | os.PathLike[str], dataset: dict[str, list[Sample]]) -> Path:
    """Write a data set as one ``.npz`` (points of all samples end to end, with offsets; texts, fonts, splits)."""
    from ...._atomic import atomic_write_bytes

    samples = [(split, s) for split, items in dataset.items() for s in items]
    if not samples:
        raise ValueError("The data set is empty; nothing to save.")
    offsets = np.cumsum([0] + [len(s.points) for _, s in samples])
    arrays = {
        "points": np.concatenate([s.points for _, s in samples]).astype(np.float32),
        "times": np.concatenate([s.times for _, s in samples]).astype(np.float32),
        "offsets": offsets.astype(np.int64),
        "texts": np.array([s.text for _, s in samples]),
        "fonts": np.array([s.font for _, s in samples]),
        "splits": np.array([split for split, _ in samples]),
    }
    import io

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_dataset(path: str | os.PathLike[str]) -> dict[str, list[Sample]]:
    """A data set written by :func:`save_dataset` (``lstmkit handwriting make-data``), by split."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No handwriting data set at {path}; write one with `lstmkit handwriting make-data`.")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("points", "times", "offsets", "texts", "fonts", "splits")}
    except (KeyError, ValueError, OSError) as e:
        raise ValueError(
            f"{path} is not a handwriting data set written by `lstmkit handwriting make-data` ({e})."
        ) from e
    out: dict[str, list[Sample]] = {}
    o = arrays["offsets"]
    for i, split in enumerate(arrays["splits"].tolist()):
        points, times = arrays["points"][o[i] : o[i + 1]].astype(np.float64), arrays["times"][o[i] : o[i + 1]]
        sample = Sample(str(arrays["texts"][i]), str(arrays["fonts"][i]), points, times)
        out.setdefault(split, []).append(sample)
    return out
