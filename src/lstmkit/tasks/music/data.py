"""Four-voice chorales as token sequences, and back: reading scores (music21), the grid encoding, MIDI / MusicXML out,
and the musical statistics that compare generated pieces with real ones.

**The encoding: a sixteenth-note grid, four voices per step** (the BachBot encoding of Liang 2016, with the metre made
explicit). A piece is transposed to C major or A minor, then read as a sequence of frames, one per sixteenth note;
each frame is five tokens::

    <sep> <soprano> <alto> <tenor> <bass>

``<sep>`` is ``|`` when the frame starts a bar and ``.`` otherwise, with a fermata variant of each (``|f``, ``.f``)
when a note under a fermata sounds; a voice token is ``on:P`` (a note of MIDI pitch ``P`` starts), ``hold:P`` (the
voice's note ``P`` goes on) or ``rest``. A piece is ``<start> <mode> <metre>`` followed by its frames and ``<end>``.

Why a grid and not note events (pitch, duration): the four voices of a chorale move together, and a grid keeps
them aligned with no bookkeeping. Each frame holds the whole vertical sonority, so the network predicts a voice
knowing the notes already chosen above it in the same step (harmony) and the previous frames (voice leading);
durations come out of ``on``/``hold`` runs, so no note of one voice can drift off the beat against another, which a
per-voice event list would allow. The cost is length (five tokens per sixteenth), which an LSTM carries easily at
about 1,000 tokens per chorale. Chorales move mostly in quarters and eighths; the rare shorter values are rounded
to the sixteenth grid (counted in ``load_chorales``'s statistics).

Why transpose to C major / A minor: 371 chorales spread over 24 keys leave little per key; pooled in two keys the
network sees every progression in one place. A user's key is then a transposition of the output (exact), and the
mode (major / minor) is a conditioning token. The metre is a conditioning token too, and bar lines are tokens the
generator places itself from the metre (the model never has to count sixteenths to keep the bar).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "METRES",
    "STEPS_PER_QUARTER",
    "MusicError",
    "Piece",
    "Vocabulary",
    "corpus_statistics",
    "compare_statistics",
    "load_chorales",
    "parse_key",
    "parse_metre",
    "piece_to_score",
    "read_score",
    "split_pieces",
    "write_piece",
]

STEPS_PER_QUARTER = 4  # the grid: a sixteenth note
VOICES = ("soprano", "alto", "tenor", "bass")
METRES = ("2/4", "3/4", "4/4", "2/2", "3/2", "6/4", "6/8", "9/8", "12/8")  # the metres a token exists for
LOWEST, HIGHEST = 28, 93  # MIDI range of the pitch tokens (E1 .. A6), after transposition to C major / A minor
REFERENCE_TONIC = {"major": 0, "minor": 9}  # C major, A minor
CACHE_VERSION = 2

_PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_SHARP_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_KEY = re.compile(r"^\s*([A-Ga-g])\s*(#|b|-|sharp|flat)?\s*(major|minor|maj|min|m)?\s*$", re.IGNORECASE)
# scale degrees counted "in key": major scale; minor: natural minor plus the raised 6th and 7th (melodic / harmonic)
_IN_KEY = {"major": {0, 2, 4, 5, 7, 9, 11}, "minor": {9, 11, 0, 2, 4, 5, 7, 6, 8}}
DURATION_BINS = (1, 2, 3, 4, 6, 8, 12, 16)  # sixteenths; longer notes fall in the last bin


class MusicError(ValueError):
    """A score, key, metre or prime the music task cannot use (a ``ValueError``: one sentence for the user)."""


# ---- keys and metres --------------------------------------------------------------------------------------------
def parse_key(text: str) -> tuple[int, str, str]:
    """``"D minor"`` -> ``(2, "D", "minor")``: tonic pitch class, tonic name, mode. A missing mode means major.

    Raises:
        MusicError: not a key.
    """
    match = _KEY.match(text) if isinstance(text, str) else None
    if match is None:
        raise MusicError(
            f"Unknown key {text!r}; give a tonic A-G with an optional # or b and major or minor, e.g. 'D minor' or "
            "'Bb major'."
        )
    letter, accidental, mode = match.groups()
    shift = {"#": 1, "sharp": 1, "b": -1, "-": -1, "flat": -1}.get((accidental or "").lower(), 0)
    pc = (_PITCH_CLASS[letter.upper()] + shift) % 12
    name = letter.upper() + {1: "#", -1: "b", 0: ""}[shift]
    mode = "minor" if (mode or "").lower() in ("minor", "min", "m") else "major"
    return pc, name, mode


def parse_metre(text: str, known: Iterable[str] = METRES) -> str:
    """``"3/4"`` -> ``"3/4"`` if the model knows it.

    Raises:
        MusicError: not a time signature, or one the model has no token for (or never saw).
    """
    known = tuple(known)
    if not isinstance(text, str) or not re.fullmatch(r"\d+/\d+", text.strip()):
        raise MusicError(f"Unknown metre {text!r}; give a time signature such as {', '.join(known)}.")
    text = text.strip()
    if text not in known:
        raise MusicError(f"The model knows no {text} metre (it learnt {', '.join(known)}); choose one of those.")
    return text


def bar_steps(metre: str) -> int:
    """Grid steps in one bar of ``metre``: 4/4 -> 16, 6/8 -> 12."""
    beats, unit = (int(x) for x in metre.split("/"))
    return beats * STEPS_PER_QUARTER * 4 // unit


def transposition(from_pc: int, to_pc: int) -> int:
    """Semitones from tonic ``from_pc`` to ``to_pc`` by the shorter way, in -6 .. +5."""
    return (to_pc - from_pc + 6) % 12 - 6


# ---- the piece ----------------------------------------------------------------------------------------------------
@dataclass
class Piece:
    """Four voices on the sixteenth grid, in C major or A minor (``tonic`` says which key to write it in).

    Shape: ``pitches`` (F, 4) MIDI numbers, -1 for a rest; ``onsets`` (F, 4) True where a note starts; ``bars`` (F,)
    True where a bar starts; ``fermatas`` (F,) True under a fermata. F frames, voices soprano .. bass.
    """

    pitches: np.ndarray
    onsets: np.ndarray
    bars: np.ndarray
    fermatas: np.ndarray
    mode: str = "major"
    metre: str = "4/4"
    tonic: int = 0  # pitch class of the key to write it in (0 = C); the frames stay in C major / A minor
    tonic_name: str = "C"
    name: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return len(self.pitches)

    def notes(self) -> np.ndarray:
        """(N, 4) rows ``start, length, pitch, voice`` (steps, steps, MIDI in the reference key, voice index)."""
        rows = []
        for v in range(self.pitches.shape[1]):
            p, on = self.pitches[:, v], self.onsets[:, v]
            start = None
            for f in range(self.frames + 1):
                ends = f == self.frames or p[f] < 0 or on[f] or (f > 0 and p[f] != p[f - 1])
                if ends and start is not None:
                    rows.append((start, f - start, int(p[start]), v))
                    start = None
                if f < self.frames and p[f] >= 0 and start is None:
                    start = f
        return np.asarray(sorted(rows), dtype=np.int64).reshape(-1, 4)

    def head(self, n_bars: int) -> Piece:
        """The opening ``n_bars`` bars (a pickup, a first bar shorter than the metre's, comes with them).

        Raises:
            MusicError: the piece has fewer than ``n_bars`` bars.
        """
        starts = np.flatnonzero(self.bars)
        if n_bars < 1:
            raise MusicError(f"The prime needs at least 1 bar, got {n_bars}.")
        if n_bars > len(starts):
            raise MusicError(
                f"The prime asks for {n_bars} bars but {self.name or 'the piece'} has {len(starts)}; ask for fewer."
            )
        pickup = len(starts) > 1 and starts[0] == 0 and starts[1] < bar_steps(self.metre)  # comes with bar 1
        last = n_bars + int(pickup)
        end = starts[last] if last < len(starts) else self.frames
        return replace(self, pitches=self.pitches[:end], onsets=self.onsets[:end], bars=self.bars[:end],
                       fermatas=self.fermatas[:end])  # fmt: skip


# ---- tokens ---------------------------------------------------------------------------------------------------------
class Vocabulary:
    """The fixed token set: specials, mode and metre tokens, four separators, ``rest`` and ``on:P`` / ``hold:P``."""

    def __init__(self) -> None:
        self.tokens = ["<start>", "<end>", "mode:major", "mode:minor", *(f"metre:{m}" for m in METRES),
                       "|", ".", "|f", ".f", "rest"]  # fmt: skip
        self.first_pitch = len(self.tokens)
        self.tokens += [f"on:{p}" for p in range(LOWEST, HIGHEST + 1)]
        self.tokens += [f"hold:{p}" for p in range(LOWEST, HIGHEST + 1)]
        self.index = {t: i for i, t in enumerate(self.tokens)}
        n = HIGHEST - LOWEST + 1
        self.start, self.end, self.rest = self.index["<start>"], self.index["<end>"], self.index["rest"]
        self.separators = [self.index[s] for s in ("|", ".", "|f", ".f")]
        self.on_ids = np.arange(self.first_pitch, self.first_pitch + n)
        self.hold_ids = self.on_ids + n

    def __len__(self) -> int:
        return len(self.tokens)

    def on(self, pitch: int) -> int:
        return self.first_pitch + pitch - LOWEST

    def hold(self, pitch: int) -> int:
        return self.first_pitch + (HIGHEST - LOWEST + 1) + pitch - LOWEST

    def separator(self, bar: bool, fermata: bool) -> int:
        return self.separators[(0 if bar else 1) + (2 if fermata else 0)]

    def header(self, mode: str, metre: str) -> list[int]:
        return [self.start, self.index[f"mode:{mode}"], self.index[f"metre:{metre}"]]

    def frame(self, pitches: Sequence[int], onsets: Sequence[bool], previous: Sequence[int] | None) -> list[int]:
        """The four voice tokens of one frame (``previous``: the pitches of the frame before, or None)."""
        out = []
        for v, p in enumerate(pitches):
            if p < 0:
                out.append(self.rest)
            elif not onsets[v] and previous is not None and previous[v] == p:
                out.append(self.hold(int(p)))
            else:
                out.append(self.on(int(p)))
        return out

    def encode(self, piece: Piece, *, end: bool = True) -> list[int]:
        """``<start> <mode> <metre>``, five tokens per frame, and ``<end>`` (unless ``end=False``: a prime)."""
        ids = self.header(piece.mode, piece.metre)
        previous = None
        for f in range(piece.frames):
            ids.append(self.separator(bool(piece.bars[f]), bool(piece.fermatas[f])))
            ids += self.frame(piece.pitches[f], piece.onsets[f], previous)
            previous = piece.pitches[f]
        if end:
            ids.append(self.end)
        return ids

    def decode(self, ids: Sequence[int], *, name: str = "") -> Piece:
        """A piece from a token sequence (header, then whole frames; stops at ``<end>`` or an incomplete frame).

        Raises:
            MusicError: no ``<start> <mode> <metre>`` header, or a frame out of order.
        """
        t = self.tokens
        if (
            len(ids) < 3
            or ids[0] != self.start
            or not t[ids[1]].startswith("mode:")
            or not t[ids[2]].startswith("metre:")
        ):
            raise MusicError("A token sequence must begin <start> <mode> <metre>; this one does not.")
        mode, metre = t[ids[1]][5:], t[ids[2]][6:]
        pitches, onsets, bars, fermatas = [], [], [], []
        body = list(ids[3:])
        for f in range(0, len(body) - 4, 5):
            sep, voices = body[f], body[f + 1 : f + 5]
            if sep == self.end:
                break
            if sep not in self.separators:
                raise MusicError(f"Frame {f // 5} does not begin with a separator but with {t[sep]!r}.")
            k = self.separators.index(sep)
            bars.append(k % 2 == 0)
            fermatas.append(k >= 2)
            row_p, row_on = [], []
            for v, tok in enumerate(voices):
                name_v = t[tok]
                if name_v == "rest":
                    row_p.append(-1)
                    row_on.append(False)
                elif name_v.startswith("on:") or name_v.startswith("hold:"):
                    p = int(name_v.split(":")[1])
                    held = name_v.startswith("hold:") and pitches and pitches[-1][v] == p
                    row_p.append(p)
                    row_on.append(not held)
                else:
                    raise MusicError(f"Frame {f // 5}, voice {VOICES[v]}: {name_v!r} is not a note or a rest.")
            pitches.append(row_p)
            onsets.append(row_on)
        return Piece(
            np.asarray(pitches, dtype=np.int64).reshape(-1, 4), np.asarray(onsets, dtype=bool).reshape(-1, 4),
            np.asarray(bars, dtype=bool), np.asarray(fermatas, dtype=bool), mode, metre, name=name,
        )  # fmt: skip


# ---- reading scores -------------------------------------------------------------------------------------------
def _music21() -> Any:
    try:
        import music21
    except ImportError as e:  # pragma: no cover - music21 is in the [music] / [dev] extras
        raise ImportError("The music task needs music21: pip install 'lstmkit[music]' (or pip install music21).") from e
    return music21


def score_to_piece(score: Any, name: str = "") -> Piece:
    """Encode a music21 score of four parts (soprano, alto, tenor, bass, top to bottom; of more, the four named for
    the voices) on the sixteenth grid.

    Raises:
        MusicError: not four parts, no notes, no usable time signature, or pitches outside the token range.
    """
    m21 = _music21()
    label = name or "the score"
    parts = list(getattr(score, "parts", []))
    if len(parts) > 4:  # instruments beside the choir (trumpets, continuo): keep the parts named for the voices
        named: dict[str, Any] = {}
        for part in parts:
            label_p = (part.partName or "").strip().lower()
            voice = next((v for v in VOICES if label_p.startswith(v)), None)
            if voice is not None and voice not in named:
                named[voice] = part
        parts = [named[v] for v in VOICES] if len(named) == 4 else parts
    if len(parts) != 4:
        raise MusicError(
            f"{label} has {len(parts)} part(s); the chorale model needs exactly 4 (soprano, alto, tenor, bass)."
        )
    flat = [p.flatten() for p in parts]
    if not any(len(f.notes) for f in flat):
        raise MusicError(f"{label} has no notes.")
    signatures = list(score.recurse().getElementsByClass(m21.meter.TimeSignature))
    metre = signatures[0].ratioString if signatures else "4/4"
    if metre not in METRES:
        raise MusicError(f"{label} is in {metre}; the chorale model knows {', '.join(METRES)}.")
    key = score.analyze("key")
    mode = "minor" if key.mode == "minor" else "major"
    tonic = key.tonic.pitchClass
    shift = transposition(tonic, REFERENCE_TONIC[mode])
    frames = int(round(float(score.highestTime) * STEPS_PER_QUARTER))
    pitches = np.full((frames, 4), -1, dtype=np.int64)
    onsets = np.zeros((frames, 4), dtype=bool)
    fermatas = np.zeros(frames, dtype=bool)
    rounded = dropped = 0
    for v, part in enumerate(flat):
        for n in part.notes:
            start_q, end_q = float(n.offset), float(n.offset + n.quarterLength)
            start, stop = round(start_q * STEPS_PER_QUARTER), round(end_q * STEPS_PER_QUARTER)
            rounded += start != start_q * STEPS_PER_QUARTER or stop != end_q * STEPS_PER_QUARTER
            if stop <= start:  # a grace note, or shorter than the grid
                dropped += 1
                continue
            midi = (max(p.midi for p in n.pitches) if v < 2 else min(p.midi for p in n.pitches)) + shift
            if not LOWEST <= midi <= HIGHEST:
                raise MusicError(f"{label} has a pitch (MIDI {midi - shift}) outside the range the model reads.")
            pitches[start:stop, v] = midi
            tied = n.tie is not None and n.tie.type in ("stop", "continue")
            onsets[start, v] = not tied
            if any(isinstance(e, m21.expressions.Fermata) for e in n.expressions):
                fermatas[start:stop] = True
    bars = np.zeros(frames, dtype=bool)
    for m in parts[0].getElementsByClass(m21.stream.Measure):
        f = round(float(m.offset) * STEPS_PER_QUARTER)
        if 0 <= f < frames:
            bars[f] = True
    if frames == 0 or not bars.any():
        raise MusicError(f"{label} has no bars the model can read.")
    info = {"rounded_notes": int(rounded), "dropped_notes": int(dropped), "key": f"{key.tonic.name} {mode}",
            "transposed": int(shift)}  # fmt: skip
    tonic_name = _SHARP_NAMES[tonic]
    return Piece(pitches, onsets, bars, fermatas, mode, metre, tonic, tonic_name, name, info)


def read_score(source: str | os.PathLike[str]) -> Piece:
    """A piece from a file music21 can read (MusicXML, MIDI, ABC, Humdrum **kern, ...) or a corpus name
    (``bach/bwv66.6`` or ``bwv66.6``).

    Raises:
        MusicError: nothing at that path or corpus name, a file music21 cannot parse, or a score the model cannot
            read (see :func:`score_to_piece`).
    """
    m21 = _music21()
    text = str(source)
    path = Path(text)
    if path.is_file():
        try:
            score = m21.converter.parse(str(path))
        except Exception as e:  # music21 raises many types for a bad file
            reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise MusicError(
                f"Could not read a score from {path.name} ({reason}); give MusicXML, MIDI, ABC or Humdrum."
            ) from None
        if not hasattr(score, "parts"):
            raise MusicError(f"{path.name} holds no score with parts; give a four-part score.")
        return score_to_piece(score, path.name)
    score_suffixes = {".xml", ".musicxml", ".mxl", ".mid", ".midi", ".krn", ".abc", ".mei", ".json"}
    if path.suffix.lower() in score_suffixes or (os.sep in text and not text.startswith("bach/")):
        raise MusicError(f"No score file at {text}; give an existing file or a chorale name such as bwv66.6.")
    name = text if text.startswith("bach/") else f"bach/{text}"
    try:
        score = m21.corpus.parse(name)
    except Exception:
        raise MusicError(
            f"No file at {text} and no chorale {name!r} in music21's corpus; give a file or a name like bwv66.6."
        ) from None
    return score_to_piece(score, name)


def piece_to_score(piece: Piece) -> Any:
    """A music21 score of the piece, transposed to its ``tonic``, with key and time signatures and fermatas."""
    m21 = _music21()
    shift = transposition(REFERENCE_TONIC[piece.mode], piece.tonic)
    per_bar = bar_steps(piece.metre)
    starts = np.flatnonzero(piece.bars)
    # a pickup (a first bar shorter than the metre's): rests before it fill bar 1, so later bar lines fall in place
    first = int(starts[1] - starts[0]) if len(starts) > 1 and starts[0] == 0 else (int(starts[0]) if len(starts) else 0)
    pad = (per_bar - first) % per_bar
    score = m21.stream.Score()
    notes = piece.notes()
    for v, voice in enumerate(VOICES):
        part = m21.stream.Part(id=voice)
        part.partName = voice.capitalize()
        part.insert(
            0, m21.clef.TrebleClef() if v < 2 else (m21.clef.Treble8vbClef() if v == 2 else m21.clef.BassClef())
        )
        part.insert(0, m21.key.Key(piece.tonic_name.replace("b", "-"), piece.mode))
        part.insert(0, m21.meter.TimeSignature(piece.metre))
        at = 0
        for start, length, pitch, _ in notes[notes[:, 3] == v]:
            if start > at:
                part.insert(
                    (pad + at) / STEPS_PER_QUARTER, m21.note.Rest(quarterLength=(start - at) / STEPS_PER_QUARTER)
                )
            n = m21.note.Note(int(pitch + shift), quarterLength=length / STEPS_PER_QUARTER)
            if v == 0 and piece.fermatas[start : start + length].any():
                n.expressions.append(m21.expressions.Fermata())
            part.insert((pad + start) / STEPS_PER_QUARTER, n)
            at = start + length
        if at < piece.frames:
            part.insert(
                (pad + at) / STEPS_PER_QUARTER, m21.note.Rest(quarterLength=(piece.frames - at) / STEPS_PER_QUARTER)
            )
        if pad:
            part.insert(0, m21.note.Rest(quarterLength=pad / STEPS_PER_QUARTER))
        score.insert(0, part)
    score.insert(0, m21.metadata.Metadata(title=piece.name or "lstmkit chorale"))
    return score


def write_piece(piece: Piece, stem: str | os.PathLike[str], *, title: str = "") -> dict[str, str]:
    """Write ``stem.mid``, ``stem.musicxml`` and ``stem.png`` (a piano roll); returns their paths by kind."""
    from ..._atomic import atomic_write_bytes
    from ...viz.music import plot_piano_roll

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    score = piece_to_score(piece)
    out = {}
    for kind, suffix in (("midi", ".mid"), ("musicxml", ".musicxml")):
        tmp = stem.parent / f".{stem.name}{suffix}.tmp"
        score.write(kind, fp=str(tmp))
        atomic_write_bytes(stem.with_name(stem.name + suffix), tmp.read_bytes())
        tmp.unlink()
        out[kind] = str(stem.with_name(stem.name + suffix))
    shift = transposition(REFERENCE_TONIC[piece.mode], piece.tonic)
    notes = piece.notes()
    notes[:, 2] += shift
    roll = plot_piano_roll(notes, stem.with_name(stem.name + ".png"), bar_lines=np.flatnonzero(piece.bars),
                           title=title or f"{piece.name} ({piece.tonic_name} {piece.mode}, {piece.metre})")  # fmt: skip
    out["png"] = str(roll)
    return out


# ---- the corpus -------------------------------------------------------------------------------------------------
def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lstmkit" / "music"


def load_chorales(cache_dir: str | os.PathLike[str] | None = None, limit: int | None = None) -> list[Piece]:
    """The Bach chorales of music21's corpus that the model can read (four parts, a known metre), encoded.

    Parsing all 371 takes a minute or two, so the encoded corpus is kept in ``cache_dir`` (default
    ``$XDG_CACHE_HOME/lstmkit/music``) as ``chorales-v2.npz`` plus a JSON index; ``limit`` reads only the first
    ``limit`` chorales (not cached). Chorales the model cannot read are skipped; :func:`corpus_skipped` says which
    and why.
    """
    m21 = _music21()
    cache = Path(cache_dir) if cache_dir is not None else _cache_dir()
    stem = cache / f"chorales-v{CACHE_VERSION}"
    if limit is None and stem.with_suffix(".npz").exists() and stem.with_suffix(".json").exists():
        return _read_cache(stem)
    names = list(m21.corpus.chorales.Iterator(returnType="filename"))
    if limit is not None:
        names = names[:limit]
    pieces, skipped = [], {}
    for name in names:
        try:
            pieces.append(score_to_piece(m21.corpus.parse(name), name))
        except MusicError as e:
            skipped[name] = str(e)
    logger.info("read %d chorales, skipped %d", len(pieces), len(skipped))
    if limit is None:
        _write_cache(stem, pieces, skipped)
    return pieces


def _write_cache(stem: Path, pieces: list[Piece], skipped: dict[str, str]) -> None:
    from ..._atomic import atomic_write_bytes

    stem.parent.mkdir(parents=True, exist_ok=True)
    arrays = {
        "pitches": np.concatenate([p.pitches for p in pieces]), "onsets": np.concatenate([p.onsets for p in pieces]),
        "bars": np.concatenate([p.bars for p in pieces]), "fermatas": np.concatenate([p.fermatas for p in pieces]),
        "lengths": np.asarray([p.frames for p in pieces]),
    }  # fmt: skip
    tmp = stem.parent / f".{stem.name}.tmp.npz"
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, stem.with_suffix(".npz"))
    index = {"version": CACHE_VERSION, "skipped": skipped,
             "pieces": [{"name": p.name, "mode": p.mode, "metre": p.metre, "tonic": p.tonic,
                         "tonic_name": p.tonic_name, "info": p.info} for p in pieces]}  # fmt: skip
    atomic_write_bytes(stem.with_suffix(".json"), json.dumps(index).encode())


def _read_cache(stem: Path) -> list[Piece]:
    index = json.loads(stem.with_suffix(".json").read_text())
    with np.load(stem.with_suffix(".npz"), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    edges = np.concatenate([[0], np.cumsum(arrays["lengths"])])
    pieces = []
    for i, meta in enumerate(index["pieces"]):
        a, b = edges[i], edges[i + 1]
        pieces.append(Piece(arrays["pitches"][a:b], arrays["onsets"][a:b], arrays["bars"][a:b],
                            arrays["fermatas"][a:b], **meta))  # fmt: skip
    return pieces


def corpus_skipped(cache_dir: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """The chorales ``load_chorales`` skipped (name -> why), from its cache index."""
    cache = Path(cache_dir) if cache_dir is not None else _cache_dir()
    path = cache / f"chorales-v{CACHE_VERSION}.json"
    return json.loads(path.read_text())["skipped"] if path.exists() else {}


def split_pieces(
    pieces: Sequence[Piece], val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0
) -> tuple[list[Piece], list[Piece], list[Piece]]:
    """Train / validation / test by whole piece (never by note), from a seeded shuffle of the names."""
    order = sorted(range(len(pieces)), key=lambda i: pieces[i].name)
    rng = np.random.default_rng(seed)
    order = [order[i] for i in rng.permutation(len(order))]
    n_test = int(round(len(order) * test_fraction))
    n_val = int(round(len(order) * val_fraction))
    test = [pieces[i] for i in order[:n_test]]
    val = [pieces[i] for i in order[n_test : n_test + n_val]]
    train = [pieces[i] for i in order[n_test + n_val :]]
    return train, val, test


# ---- musical statistics -----------------------------------------------------------------------------------------
def corpus_statistics(pieces: Sequence[Piece]) -> dict[str, Any]:
    """Pitch-class histogram (note onsets, relative to the tonic), share of notes in key and the note-duration
    histogram (sixteenths, bins :data:`DURATION_BINS`), over all the pieces' notes."""
    pcs, durations = np.zeros(12), np.zeros(len(DURATION_BINS))
    in_key = total = steps = 0
    for piece in pieces:
        notes = piece.notes()
        if not len(notes):
            continue
        rel = (notes[:, 2] - REFERENCE_TONIC[piece.mode]) % 12  # relative to the tonic
        pcs += np.bincount(rel, minlength=12)
        in_key += int(np.isin(notes[:, 2] % 12, list(_IN_KEY[piece.mode])).sum())
        total += len(notes)
        steps += int(notes[:, 1].sum())
        bins = np.searchsorted(DURATION_BINS, np.minimum(notes[:, 1], DURATION_BINS[-1]))
        durations += np.bincount(bins, minlength=len(DURATION_BINS))
    return {
        "notes": total, "pieces": len(pieces), "in_key": in_key / max(total, 1),
        "pitch_classes": (pcs / max(pcs.sum(), 1)).tolist(),
        "durations": (durations / max(durations.sum(), 1)).tolist(), "mean_duration": steps / max(total, 1),
    }  # fmt: skip


def compare_statistics(generated: dict[str, Any], reference: dict[str, Any]) -> dict[str, float]:
    """Total-variation distances (0: the same, 1: disjoint) between two :func:`corpus_statistics`' pitch-class and
    duration histograms, and the two in-key shares."""
    tv = lambda a, b: 0.5 * float(np.abs(np.asarray(a) - np.asarray(b)).sum())  # noqa: E731
    return {
        "pitch_class_tv": tv(generated["pitch_classes"], reference["pitch_classes"]),
        "duration_tv": tv(generated["durations"], reference["durations"]),
        "in_key": generated["in_key"], "reference_in_key": reference["in_key"],
    }  # fmt: skip


def metre_counts(pieces: Iterable[Piece]) -> dict[str, int]:
    return dict(Counter(p.metre for p in pieces))
