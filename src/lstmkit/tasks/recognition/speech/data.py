"""Spoken digit strings and commands synthesised by Debian's ``espeak-ng``, with noise and reverberation from ``sox``.

Nothing is downloaded: both programs are Debian packages that ``scripts/install-system-deps.sh`` installs. A *voice*
is one of espeak-ng's English accents (``en-us``, ``en-gb-scotland``, ...) with one of its voice variants (``m3``,
``f4``, ``klatt2``, ``whisper``, ...); each utterance also draws a speed, a pitch, a pause before and after, a
reverberation, a noise colour and level, a gain, an output sample rate and (sometimes) a second channel.

The split is by voice, and stricter than that: a test utterance's *variant* is never used in training with any
accent, and one accent (:data:`HELD_OUT_ACCENT`) is never heard in training at all, so every test voice is unseen.
Validation uses a third set of variants, for model selection only.

Generation is seeded (the whole plan of utterances is drawn first, from one generator), runs ``workers`` synthesis
jobs at once, each in its own temporary directory, and writes the data set atomically: everything goes into a
temporary directory beside ``out`` that is renamed to ``out`` at the end, and ``manifest.csv`` (one row per WAV)
plus ``dataset.json`` (the request) are written last. An existing complete data set made with the same request is
reused as it is.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "ACCENTS", "COMMANDS", "DIGITS", "HELD_OUT_ACCENT", "TEST_VARIANTS", "VALIDATION_VARIANTS", "Utterance",
    "espeak_variants", "make_dataset", "read_manifest", "speech_programs",
]  # fmt: skip

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "forward", "backward", "follow",
            "learn", "turn left", "turn right", "go back", "lights on", "lights off", "volume up",
            "volume down")  # fmt: skip
# espeak-ng 1.51's English accents (``espeak-ng --voices=en``, the non-mbrola ones)
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-us-nyc", "en-029")
HELD_OUT_ACCENT = "en-029"  # Caribbean English: only in the test set
# variants never used in training: 12 for test, 6 for validation, spread over male, female, klatt, whisper and others
TEST_VARIANTS = ("f4", "m3", "m7", "klatt4", "Andrea", "benjamin", "edward2", "grandma", "iven3", "steph2", "travis",
                 "whisperf")  # fmt: skip
VALIDATION_VARIANTS = ("f2", "m6", "klatt", "Mike", "linda", "Storm")
SAMPLE_RATES = (16000, 22050, 11025, 24000)  # output rates, drawn with the weights below
_RATE_WEIGHTS = (0.4, 0.3, 0.15, 0.15)
NOISES = ("whitenoise", "pinknoise", "brownnoise")
logger = logging.getLogger(__name__)
_INSTALL = "scripts/install-system-deps.sh (or: apt-get install espeak-ng sox)"


def speech_programs() -> tuple[str, str]:
    """Paths of ``espeak-ng`` and ``sox`` (``LSTMKIT_ESPEAK`` / ``LSTMKIT_SOX`` override them).

    Raises:
        FileNotFoundError: one of them is missing, saying how to install it.
    """
    found = []
    for name, env in (("espeak-ng", "LSTMKIT_ESPEAK"), ("sox", "LSTMKIT_SOX")):
        path = os.environ.get(env) or shutil.which(name)
        if not path:
            raise FileNotFoundError(f"Speech data is synthesised with {name}, which is not installed: {_INSTALL}.")
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise FileNotFoundError(f"{env}={path} is not an executable file; point it at {name}.")
        found.append(path)
    return found[0], found[1]


def espeak_variants(espeak: str | None = None) -> list[str]:
    """The voice variants this espeak-ng has (``espeak-ng --voices=variant``), as ``+name`` suffixes take them."""
    espeak = espeak or speech_programs()[0]
    proc = subprocess.run([espeak, "--voices=variant"], capture_output=True, text=True, timeout=60, check=False)
    names = [line.split()[4].removeprefix("!v/") for line in proc.stdout.splitlines()[1:] if len(line.split()) >= 5]
    if proc.returncode != 0 or not names:
        raise FileNotFoundError(f"`{espeak} --voices=variant` listed no variants (exit {proc.returncode}); {_INSTALL}.")
    return sorted(set(names))


@dataclass(frozen=True)
class Utterance:
    """One planned utterance: what is said, by which voice, and how it is degraded. A row of ``manifest.csv``."""

    id: str
    split: str  # train, validation or test
    kind: str  # digits or command
    text: str
    accent: str
    variant: str
    speed: int  # words per minute (espeak -s)
    pitch: int  # 0..99 (espeak -p)
    pad_before: float  # seconds of silence (then noise) around the speech
    pad_after: float
    reverb: int  # sox reverberance 0..100; 0: none
    room_scale: int
    noise: str  # sox synth colour
    noise_db: float  # noise level in dB relative to the speech peak (-6 dBFS after normalisation)
    gain_db: float  # applied last, <= 0
    sample_rate: int
    channels: int

    @property
    def voice(self) -> str:
        return f"{self.accent}+{self.variant}"

    @property
    def path(self) -> str:
        return f"wavs/{self.id}.wav"


def _digit_string(rng: np.random.Generator, max_digits: int) -> str:
    return " ".join(DIGITS[d] for d in rng.integers(0, 10, size=int(rng.integers(1, max_digits + 1))))


def plan_utterances(
    counts: dict[str, int], variants: list[str], seed: int = 0, command_share: float = 0.2, max_digits: int = 7
) -> list[Utterance]:
    """Draw every utterance of the data set from one seeded generator (nothing is synthesised here).

    ``counts``: utterances per split (``train``, ``validation``, ``test``). Training voices: every accent but
    :data:`HELD_OUT_ACCENT` with every variant outside :data:`TEST_VARIANTS` and :data:`VALIDATION_VARIANTS`.
    """
    held = set(TEST_VARIANTS) | set(VALIDATION_VARIANTS)
    pools = {
        "train": ([a for a in ACCENTS if a != HELD_OUT_ACCENT], [v for v in variants if v not in held]),
        "validation": (list(ACCENTS), [v for v in VALIDATION_VARIANTS if v in variants]),
        "test": (list(ACCENTS), [v for v in TEST_VARIANTS if v in variants]),
    }
    rng = np.random.default_rng(seed)
    plan = []
    for split in ("train", "validation", "test"):
        accents, pool = pools[split]
        if counts.get(split, 0) and not pool:
            raise ValueError(f"This espeak-ng has none of the {split} variants; it lists {variants[:8]}...")
        for k in range(counts.get(split, 0)):
            is_command = rng.random() < command_share
            text = str(rng.choice(COMMANDS)) if is_command else _digit_string(rng, max_digits)
            plan.append(Utterance(
                id=f"{split}-{k:05d}", split=split, kind="command" if is_command else "digits", text=text,
                accent=str(rng.choice(accents)), variant=str(rng.choice(pool)), speed=int(rng.integers(110, 211)),
                pitch=int(rng.integers(20, 81)), pad_before=round(float(rng.uniform(0.05, 0.4)), 3),
                pad_after=round(float(rng.uniform(0.05, 0.4)), 3),
                reverb=int(rng.choice([0, 0, int(rng.integers(10, 70))])), room_scale=int(rng.integers(20, 100)),
                noise=str(rng.choice(NOISES)), noise_db=round(float(rng.uniform(-45, -15)), 1),
                gain_db=round(float(rng.uniform(-18, 0)), 1),
                sample_rate=int(rng.choice(SAMPLE_RATES, p=_RATE_WEIGHTS)), channels=1 + int(rng.random() < 0.1),
            ))  # fmt: skip
    return plan


def _run(args: list[str], what: str) -> None:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {proc.returncode}): {proc.stderr.strip()[:300] or 'no message'}")


def synthesise(u: Utterance, out_path: Path, espeak: str, sox: str) -> None:
    """Speak ``u.text`` and degrade it: espeak-ng -> sox (pad, peak-normalise, reverb) -> sox (mix with noise, gain,
    resample, channels). Works in its own temporary directory; ``out_path`` appears complete or not at all."""
    with tempfile.TemporaryDirectory(prefix=f".{u.id}-", dir=out_path.parent) as tmp:
        raw, speech, mixed = Path(tmp, "raw.wav"), Path(tmp, "speech.wav"), Path(tmp, "mixed.wav")
        _run([espeak, "-v", u.voice, "-s", str(u.speed), "-p", str(u.pitch), "-w", str(raw), u.text], "espeak-ng")
        effects = ["pad", str(u.pad_before), str(u.pad_after), "gain", "-n", "-6"]
        if u.reverb:
            effects += ["reverb", str(u.reverb), "50", str(u.room_scale), "gain", "-n", "-6"]
        _run([sox, str(raw), "-b", "16", str(speech), *effects], "sox (padding, reverberation)")
        import soundfile

        info = soundfile.info(str(speech))
        seconds, volume = info.frames / info.samplerate, 10 ** ((u.noise_db - 6) / 20)  # noise peak vs speech peak
        noise = [sox, "-n", "-r", str(info.samplerate), "-c", "1", "-b", "16", "-t", "wav", "-", "synth",
                 f"{seconds:.6f}", u.noise, "vol", f"{volume:.6f}"]  # fmt: skip
        final = ["gain", str(u.gain_db), "rate", str(u.sample_rate), "dither", "-s"]
        if u.channels == 2:
            final += ["channels", "2"]
        _run([sox, "-m", "-v", "1", str(speech), "-v", "1", "|" + " ".join(noise), "-b", "16", str(mixed), *final],
             "sox (noise, gain, rate)")  # fmt: skip
        os.replace(mixed, out_path)


FIELDS = [f for f in Utterance.__dataclass_fields__]


def read_manifest(data_dir: str | os.PathLike[str]) -> list[Utterance]:
    """The utterances of a data set written by :func:`make_dataset` (``manifest.csv``)."""
    path = Path(data_dir) / "manifest.csv"
    if not path.is_file():
        raise FileNotFoundError(
            f"No speech data set at {data_dir} (no manifest.csv); make one with `lstmkit speech make-data --out DIR`."
        )
    types = Utterance.__annotations__
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    conv = {"int": int, "float": float, "str": str}
    return [Utterance(**{k: conv[types[k]](row[k]) for k in FIELDS}) for row in rows]


def make_dataset(
    out: str | os.PathLike[str], *, train: int = 6000, validation: int = 300, test: int = 600, seed: int = 0,
    command_share: float = 0.2, max_digits: int = 7, workers: int = 2,
) -> Path:  # fmt: skip
    """Synthesise a data set into ``out``: ``wavs/*.wav``, ``manifest.csv`` (one row per WAV: split, kind, text,
    voice, degradations) and ``dataset.json`` (this request). Reuses ``out`` if it holds a data set made with the
    same request; refuses to touch a different one.

    Raises:
        FileNotFoundError: espeak-ng or sox is missing.
        FileExistsError: ``out`` exists and is not this data set.
        ValueError: a count below 0, or workers below 1.
    """
    out = Path(out)
    request = {"train": train, "validation": validation, "test": test, "seed": seed, "command_share": command_share,
               "max_digits": max_digits}  # fmt: skip
    for name in ("train", "validation", "test"):
        if request[name] < 0:
            raise ValueError(f"The number of {name} utterances must be >= 0, got {request[name]}.")
    if train + validation + test == 0:
        raise ValueError("Ask for at least one utterance (train, validation and test are all 0).")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}.")
    if not 1 <= max_digits <= 20:
        raise ValueError(f"max_digits must lie in 1..20, got {max_digits}.")
    if out.exists():
        return _reuse(out, request)
    espeak, sox = speech_programs()
    variants = espeak_variants(espeak)
    plan = plan_utterances({"train": train, "validation": validation, "test": test}, variants, seed, command_share,
                           max_digits)  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        (tmp / "wavs").mkdir()
        done = 0
        with ThreadPoolExecutor(max_workers=workers) as pool:  # the work is in the subprocesses
            for _ in pool.map(lambda u: synthesise(u, tmp / u.path, espeak, sox), plan):
                done += 1
                if done % 500 == 0:
                    logger.info("synthesised %d / %d utterances", done, len(plan))
        with (tmp / "manifest.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(asdict(u) for u in plan)
        versions = {"espeak-ng": _version([espeak, "--version"]), "sox": _version([sox, "--version"])}
        info = {"request": request, "programs": versions, "variants": variants, "held_out_accent": HELD_OUT_ACCENT,
                "test_variants": list(TEST_VARIANTS), "validation_variants": list(VALIDATION_VARIANTS)}  # fmt: skip
        (tmp / "dataset.json").write_text(json.dumps(info, indent=2) + "\n")
        try:
            os.rename(tmp, out)  # atomic: out appears complete or not at all
        except OSError:
            if not out.exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process finished first: keep its data set if it matches
            return _reuse(out, request)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _reuse(out: Path, request: dict) -> Path:
    existing = out / "dataset.json"
    if existing.is_file() and json.loads(existing.read_text()).get("request") == request:
        return out
    raise FileExistsError(
        f"{out} already exists and is not a speech data set made with this request; choose another --out or delete it."
    )


def _version(args: list[str]) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    return (proc.stdout.strip().splitlines() or ["?"])[0][:120]
