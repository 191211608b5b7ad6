"""Music generation: ``lstmkit.MusicModel``, an LSTM language model over four-voice Bach chorales.

The encoding (``music_data``): each chorale is transposed to C major or A minor and read on a sixteenth-note grid,
five tokens per step (a bar / beat separator, then soprano, alto, tenor and bass: ``on:P``, ``hold:P`` or
``rest``), after a header ``<start> <mode> <metre>``. A grid rather than note events because the four voices then
stay aligned for free and each step's tokens are the whole chord, predicted top voice first, so the network sees
the harmony being built as well as each voice's line; see the module docstring of
:mod:`lstmkit.tasks.music.data` for the full reasoning.

The network is the language model's (:class:`lstmkit.tasks.text.language.LMNet`: embedding, stacked
:class:`lstmkit.nn.LSTM`, linear decoder), trained the char-rnn way on the training chorales joined into one token
stream, with truncated BPTT and the state carried from batch to batch. Held-out chorales are scored one by one from
a zero state, as generation starts, in nats per token and per sixteenth-note step.

Generation conditions on the mode and metre tokens (a key given by the user picks the mode, and the output is
transposed to its tonic, an exact operation), or continues the opening bars of a chorale (the prime). Sampling is
restricted to what the grammar allows at each position, so every sample is a well-formed score: the separator's
bar / beat choice follows the metre (the model only chooses the fermata), a voice may only ``hold`` the pitch it
already sounds. Output: a :class:`~lstmkit.tasks.music.data.Piece`, written as MIDI, MusicXML and a piano roll by
:func:`~lstmkit.tasks.music.data.write_piece`.

Example:
    >>> from lstmkit.tasks.music.data import load_chorales, split_pieces                  # doctest: +SKIP
    >>> train, val, test = split_pieces(load_chorales())                                  # doctest: +SKIP
    >>> model = MusicModel(hidden_size=256, epochs=20).fit(train, val)                    # doctest: +SKIP
    >>> piece = model.generate(key="D minor", metre="3/4", bars=8, seed=1)                # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ... import runs
from ...train import StepOutput, resolve_device, seed_everything
from ..text.language import LMNet, TokenStream, sample_token
from ..training import on_training_device, task_trainer
from .config import MusicModelConfig, MusicNet, MusicTrain
from .data import (
    MusicError,
    Piece,
    Vocabulary,
    bar_steps,
    parse_key,
    parse_metre,
    read_score,
)  # fmt: skip

__all__ = ["MAX_BARS", "MAX_PRIME_BARS", "MusicModel", "MusicModelConfig", "MusicNet", "MusicTrain", "build_net"]

KIND = "music"
MAX_BARS = 64  # bars one generate() call writes at most
MAX_PRIME_BARS = 16  # bars of a chorale's opening a prime may take


def build_net(vocab_size: int, net: MusicNet) -> LMNet:
    """The language model's network (:class:`~lstmkit.tasks.text.language.LMNet`) with ``net``'s sizes."""
    sizes = {"embedding_size": net.embedding_size, "hidden_size": net.hidden_size, "num_layers": net.num_layers,
             "dropout": net.dropout}  # fmt: skip
    return LMNet(vocab_size, **sizes)


@runs.register_kind(KIND)
class MusicModel:
    """An LSTM over chorale tokens: ``fit``, ``evaluate``, ``generate``, ``save``, ``load``. Keyword arguments are
    :class:`MusicModelConfig` fields, flat (``hidden_size=64, epochs=5``) or by section (``net=MusicNet(...)``)."""

    def __init__(self, config: MusicModelConfig | None = None, **kwargs: Any) -> None:
        self.config = config if config is not None else MusicModelConfig.from_dict(kwargs)
        self.vocab = Vocabulary()
        self.net: LMNet | None = None
        self.metres_: list[str] = []  # the metres and modes seen in training: the ones generate() accepts
        self.modes_: list[str] = []
        self.history_: list[dict[str, Any]] = []

    # ---- training ---------------------------------------------------------------------------------------------
    def _stream(self, pieces: Sequence[Piece]) -> np.ndarray:
        return np.asarray([i for p in pieces for i in self.vocab.encode(p)], dtype=np.int64)

    def fit(
        self, pieces: Sequence[Piece], val: Sequence[Piece] = (), run_dir: str | os.PathLike[str] | None = None,
        *, resume: bool = False,
    ) -> MusicModel:  # fmt: skip
        """Train on ``pieces`` (validation loss on ``val`` each epoch, for early stopping).

        Raises:
            MusicError: no pieces, or too few tokens for one batch of ``batch_size`` streams of ``bptt + 1``.
        """
        cfg = self.config
        batch_size = cfg.train.batch_size
        if not pieces:
            raise MusicError("No pieces to train on; give at least one chorale.")
        train_ids = self._stream(pieces)
        need = batch_size * (cfg.bptt + 1)
        if len(train_ids) < need:
            raise MusicError(
                f"The training pieces make {len(train_ids):,} tokens, too few for one batch of {batch_size} "
                f"streams x {cfg.bptt + 1} tokens ({need:,}); give more pieces or lower batch_size / bptt."
            )
        self.metres_ = sorted({p.metre for p in pieces})
        self.modes_ = sorted({p.mode for p in pieces})
        device = resolve_device(cfg.train.device)
        seed_everything(cfg.train.seed)
        self.net = build_net(len(self.vocab), cfg.net)
        val_ids = self._stream(val) if val else np.zeros(0, dtype=np.int64)
        val_streams = min(batch_size, max(1, len(val_ids) // (cfg.bptt + 1)))
        enough = len(val_ids) > cfg.bptt + 1
        val_data = TokenStream(val_ids, val_streams, cfg.bptt, dtype=torch.long) if enough else None

        def loss_fn(model: LMNet, batch: tuple[Tensor, Tensor], state: Any) -> StepOutput:
            x, y = batch  # (B, T) each
            logits, state = model(x, state)  # (B, T, V)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            return StepOutput(loss=loss, state=state, n_items=y.numel())

        train_cfg = cfg.train if val_data is not None else cfg.train.replace(early_stopping_patience=None)
        with on_training_device(self.net, device):  # evaluate, generate and save run on the CPU
            trainer = task_trainer(self.net, loss_fn, cfg, kind=KIND, run_dir=run_dir, train=train_cfg)
            data = TokenStream(train_ids, batch_size, cfg.bptt, dtype=torch.long)
            self.history_ = trainer.fit(data, val_data=val_data, resume=resume)
        self.net.eval()
        return self

    def _check(self) -> LMNet:
        if self.net is None:
            raise RuntimeError("This MusicModel is not fitted: call fit(pieces) or MusicModel.load(run_dir).")
        return self.net

    # ---- evaluation -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def token_log_probs(self, piece: Piece) -> np.ndarray:
        """Natural-log probability of each token of the piece after ``<start>`` given the ones before, from a zero
        state (as generation starts)."""
        net = self._check()
        net.eval()
        ids = torch.as_tensor(self.vocab.encode(piece))[None]  # (1, n)
        logits, _ = net(ids[:, :-1])  # (1, n - 1, V)
        return -F.cross_entropy(logits[0].double(), ids[0, 1:], reduction="none").numpy()

    def evaluate(self, pieces: Sequence[Piece]) -> dict[str, float]:
        """Held-out negative log-likelihood of whole pieces, each scored from a zero state.

        Returns:
            ``nats_per_token``, ``bits_per_token``, ``nats_per_step`` (per sixteenth-note frame: the four voices
            and the separator), ``tokens``, ``steps``, ``pieces``.
        """
        if not pieces:
            raise MusicError("No pieces to evaluate; give at least one.")
        total = sum(float(-self.token_log_probs(p).sum()) for p in pieces)
        tokens = sum(len(self.vocab.encode(p)) - 1 for p in pieces)
        steps = sum(p.frames for p in pieces)
        return {"nats_per_token": total / tokens, "bits_per_token": total / tokens / math.log(2),
                "nats_per_step": total / steps, "tokens": tokens, "steps": steps, "pieces": len(pieces)}  # fmt: skip

    # ---- generation -------------------------------------------------------------------------------------------
    def generate(
        self, key: str | None = None, metre: str | None = None, bars: int = 8, *, prime: Piece | str | None = None,
        prime_bars: int = 2, temperature: float = 1.0, seed: int | None = None,
    ) -> Piece:  # fmt: skip
        """A new piece of ``bars`` bars (after the prime's, if any).

        Args:
            key: e.g. ``"D minor"``, ``"Bb major"``; default: the prime's key, else C major. The model writes in C
                major or A minor (the mode is its conditioning token) and the result is transposed to this tonic.
            metre: a time signature the model saw in training (``"4/4"``, ``"3/4"``, ...); default: the prime's,
                else 4/4.
            bars: bars to write, 1 .. :data:`MAX_BARS`.
            prime: a :class:`Piece`, a score file or a corpus chorale name (``"bwv66.6"``) whose opening the piece
                continues; its ``prime_bars`` bars (1 .. :data:`MAX_PRIME_BARS`) are kept at the start.
            temperature: > 0; below 1 sharper (safer), above 1 flatter (wilder).
            seed: repeats a sample exactly.

        Raises:
            MusicError: an unknown key or metre, a metre or mode the model never saw, a prime that cannot be read,
                is shorter than ``prime_bars`` or disagrees with the key's mode or the metre, or options out of range.
        """
        net = self._check()
        if not temperature > 0:
            raise MusicError(f"temperature must be > 0, got {temperature}.")
        if not 1 <= bars <= MAX_BARS:
            raise MusicError(f"bars must lie in 1 .. {MAX_BARS}, got {bars}.")
        user_key = parse_key(key) if key is not None else None
        user_metre = parse_metre(metre, self.metres_) if metre is not None else None
        if prime is not None:
            if not 1 <= prime_bars <= MAX_PRIME_BARS:
                raise MusicError(
                    f"The prime may be 1 .. {MAX_PRIME_BARS} bars of a chorale's opening, got prime_bars={prime_bars}."
                )
            piece = read_score(prime) if isinstance(prime, (str, os.PathLike)) else prime
            if user_metre is not None and user_metre != piece.metre:
                raise MusicError(
                    f"The prime is in {piece.metre} but the metre asked is {user_metre}; give one of them."
                )
            if user_key is not None and user_key[2] != piece.mode:
                raise MusicError(
                    f"The prime is in {piece.mode} ({piece.tonic_name} {piece.mode}) but the key asked is "
                    f"{user_key[1]} {user_key[2]}; give a {piece.mode} key or no key."
                )
            parse_metre(piece.metre, self.metres_)
            head = piece.head(prime_bars)
            ids = self.vocab.encode(head, end=False)
            mode, metre_, tonic, tonic_name = piece.mode, piece.metre, piece.tonic, piece.tonic_name
            name = f"{piece.name or 'prime'} + {bars} bars"
        else:
            tonic, tonic_name, mode = user_key if user_key is not None else (0, "C", "major")
            metre_ = user_metre or parse_metre("4/4", self.metres_)
            ids = self.vocab.header(mode, metre_)
            name = f"{bars} bars"
        if mode not in self.modes_:
            raise MusicError(f"The model never saw a {mode} piece in training; give a {' or '.join(self.modes_)} key.")
        if user_key is not None:
            tonic, tonic_name = user_key[0], user_key[1]
        gen = torch.Generator().manual_seed(seed if seed is not None else secrets.randbits(63))
        ids = self._continue(net, ids, bar_steps(metre_), bars, temperature, gen)
        out = self.vocab.decode(ids, name=name)
        return replace(out, tonic=tonic, tonic_name=tonic_name)

    @torch.no_grad()
    def _continue(
        self, net: LMNet, ids: list[int], per_bar: int, bars: int, temperature: float, gen: torch.Generator
    ) -> list[int]:
        """Sample frames after ``ids`` until ``bars`` more bars are complete, within the grammar."""
        v = self.vocab
        net.eval()
        logits, state = net(torch.tensor([ids]))  # (1, P, V): the header and prime, once
        frames = (len(ids) - 3) // 5
        body = ids[3:]
        since_bar = per_bar  # steps since the last bar line; no prime: the first frame starts a bar
        previous = [-1, -1, -1, -1]
        for f in range(frames):  # the prime: where its last bar began, what each voice sounds at its end
            since_bar = 1 if body[5 * f] in (v.separators[0], v.separators[2]) else since_bar + 1
            voices = body[5 * f + 1 : 5 * f + 5]
            previous = [int(v.tokens[t].split(":")[1]) if t != v.rest else -1 for t in voices]
        bars_done = 0
        voice_mask = torch.full((len(v),), -math.inf, dtype=torch.float64)
        voice_mask[torch.as_tensor(np.concatenate([v.on_ids, [v.rest]]))] = 0.0
        while True:
            is_bar = since_bar >= per_bar
            if is_bar:
                if bars_done == bars:
                    break
                bars_done += 1
                since_bar = 0
            allowed = [v.separators[0], v.separators[2]] if is_bar else [v.separators[1], v.separators[3]]
            mask = torch.full((len(v),), -math.inf, dtype=torch.float64)
            mask[allowed] = 0.0
            token = sample_token(logits[0, -1].double() + mask, temperature, None, None, gen)
            ids.append(token)
            logits, state = net(torch.tensor([[token]]), state)  # (1, 1, V): one step, state carried
            for voice in range(4):
                mask = voice_mask.clone()
                if previous[voice] >= 0:
                    mask[v.hold(previous[voice])] = 0.0
                token = sample_token(logits[0, -1].double() + mask, temperature, None, None, gen)
                ids.append(token)
                name = v.tokens[token]
                previous[voice] = int(name.split(":")[1]) if ":" in name else -1
                logits, state = net(torch.tensor([[token]]), state)
            since_bar += 1
        return ids

    # ---- persistence ------------------------------------------------------------------------------------------
    def save(self, run_dir: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """config.json (the config, the vocabulary and the metres / modes seen) + model.safetensors."""
        net = self._check()
        cfg = {"music": self.config.to_dict(), "tokens": self.vocab.tokens, "metres": self.metres_,
               "modes": self.modes_}  # fmt: skip
        return runs.save_run(run_dir, KIND, cfg, net, overwrite=overwrite)

    @classmethod
    def load(cls, run_dir: str | os.PathLike[str]) -> MusicModel:
        saved = runs.read_run_config(run_dir, KIND)["config"]
        model = cls(MusicModelConfig.from_dict(saved["music"]))
        if saved["tokens"] != model.vocab.tokens:
            raise ValueError(f"{run_dir} was written with another token set than this lstmkit reads; retrain it.")
        model.metres_, model.modes_ = list(saved["metres"]), list(saved["modes"])
        model.net = build_net(len(model.vocab), model.config.net)
        model.net.load_state_dict(runs.read_state_dict(run_dir))
        model.net.eval()
        return model


def ngram_baseline(
    train: Sequence[Piece], val: Sequence[Piece], test: Sequence[Piece], orders: Sequence[int] = (2, 3, 4, 5, 6, 7, 8)
) -> dict[str, Any]:
    """Interpolated Witten-Bell n-gram models on the same tokens, fitted on ``train``; the order with the lowest
    validation loss is the baseline's test figure. Each held-out piece is scored on its own from ``<start>`` (the
    first tokens use the history they have), over the same tokens as :meth:`MusicModel.evaluate`."""
    from ..text.ngram import WittenBellLM

    vocab = Vocabulary()
    stream = np.asarray([i for p in train for i in vocab.encode(p)], dtype=np.int64)

    def nats(lm: WittenBellLM, pieces: Sequence[Piece]) -> tuple[float, int, int]:
        total = tokens = 0.0
        for p in pieces:
            lp = lm.log_probs(np.asarray(vocab.encode(p)))[1:]
            total, tokens = total - float(lp.sum()), tokens + len(lp)
        return total, int(tokens), sum(p.frames for p in pieces)

    by_order: dict[str, float] = {}
    best = None
    for order in orders:
        lm = WittenBellLM(order, len(vocab)).fit(stream)
        total, tokens, _ = nats(lm, val if val else train)
        by_order[str(order)] = total / tokens
        if best is None or by_order[str(order)] < by_order[str(best[0])]:
            best = (order, lm)
    assert best is not None
    total, tokens, steps = nats(best[1], test)
    return {"order": best[0], "smoothing": "interpolated Witten-Bell", "nats_per_token": total / tokens,
            "bits_per_token": total / tokens / math.log(2), "nats_per_step": total / steps,
            "val_nats_per_token_by_order": by_order}  # fmt: skip


def resolve_pieces(
    scores: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> list[Piece]:
    """The training pieces: music21's Bach chorales (cached after the first read; ``limit``: only the first N, not
    cached), or every score file in a folder (``scores``)."""
    from .data import load_chorales

    if scores is None:
        return load_chorales(cache_dir, limit=limit)
    folder = Path(scores)
    if not folder.is_dir():
        raise FileNotFoundError(f"No folder at {folder}; give a folder of four-part score files (MusicXML, MIDI, ...).")
    files = sorted(f for f in folder.iterdir() if f.is_file() and not f.name.startswith("."))[:limit]
    if not files:
        raise MusicError(f"{folder} holds no files; give a folder of four-part score files.")
    return [read_score(f) for f in files]


def train_run(
    config: MusicModelConfig, out: str | os.PathLike[str], pieces: Sequence[Piece], *, resume: bool = False,
    statistics_pieces: int = 40, samples: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """Split ``pieces`` by piece, train, and write a run directory: config.json, model.safetensors, metrics.csv,
    ``result.json`` (held-out NLL beside the n-gram baseline fitted in the same run, and the musical statistics of
    generated pieces against the held-out ones), ``samples/`` (MIDI, MusicXML, piano roll) and ``report.html``.

    The statistics: one piece generated per held-out piece (up to ``statistics_pieces``), unprimed, with its mode,
    metre and number of bars, at temperature 1.0; compared with the held-out pieces, and the training pieces
    compared with the same held-out pieces as the floor two sets of real chorales reach.
    """
    import json
    import time

    from ..._atomic import atomic_write_bytes
    from ...report import write_report
    from .data import compare_statistics, corpus_statistics, split_pieces, write_piece

    out = Path(out)
    if runs.is_finished(out):
        raise FileExistsError(f"{out} already holds a finished music model; choose another --out or delete it.")
    train, val, test = split_pieces(pieces, config.val_fraction, config.test_fraction, config.train.seed)
    if not test:
        raise MusicError(f"{len(pieces)} piece(s) leave none for the test split; give more pieces.")
    t0 = time.perf_counter()
    model = MusicModel(config).fit(train, val, run_dir=out, resume=resume)
    seconds = time.perf_counter() - t0
    assert model.net is not None
    model.save(out)  # the model first: a failure in a step after training cannot lose it
    result: dict[str, Any] = {
        "run_dir": str(out), "train_seconds": round(seconds, 1), "pieces": {"train": len(train), "val": len(val),
        "test": len(test)}, "parameters": sum(p.numel() for p in model.net.parameters()),
        "test_pieces": [p.name for p in test], "metres": model.metres_, "encoding": "sixteenth grid, SATB, C/Am",
    }  # fmt: skip
    result["test"] = model.evaluate(test)
    result["ngram"] = ngram_baseline(train, val, test)
    generated = []
    for i, ref in enumerate(test[:statistics_pieces]):
        if ref.metre not in model.metres_ or ref.mode not in model.modes_:
            continue
        n_bars = int(min(max(ref.bars.sum(), 1), MAX_BARS))
        key = "C major" if ref.mode == "major" else "A minor"
        generated.append(model.generate(key, ref.metre, n_bars, temperature=1.0, seed=i))
    reference = corpus_statistics(test)
    result["statistics"] = {
        "held_out": reference, "generated": corpus_statistics(generated),
        "generated_vs_held_out": compare_statistics(corpus_statistics(generated), reference),
        "train_vs_held_out": compare_statistics(corpus_statistics(train), reference),
    }  # fmt: skip
    if samples:
        examples = [("unprimed-major", dict(key="G major", metre="4/4", bars=8)),
                    ("unprimed-minor", dict(key="D minor", metre="3/4" if "3/4" in model.metres_ else "4/4", bars=8)),
                    ("primed", dict(prime=test[0], prime_bars=2, bars=6))]  # fmt: skip
        written = {}
        for name, kwargs in examples:
            if "metre" in kwargs and kwargs["metre"] not in model.metres_:
                continue
            piece = model.generate(**kwargs, temperature=1.0, seed=0)  # type: ignore[arg-type]
            written[name] = write_piece(piece, out / "samples" / name)
        result["samples"] = written
    atomic_write_bytes(out / "result.json", (json.dumps(result, indent=2) + "\n").encode())
    write_report(out)
    return result
