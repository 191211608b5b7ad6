"""Connectionist temporal classification (Graves et al. 2006): the pieces every recogniser shares.

A recogniser's network emits, at each of its ``T`` frames, a distribution over ``C = 1 + len(alphabet)`` classes:
the blank (class 0, "no new character here") and one class per character. A labelling is read off a frame path by
collapsing repeats and then dropping blanks (``a a - a b`` -> ``a a b`` needs the blank between the two ``a``).

- :class:`Alphabet`: characters <-> labels, blank = 0, saved as a plain string in a run's config.
- :func:`ctc_loss`: ``torch.nn.functional.ctc_loss`` with the shapes checked and impossible alignments zeroed.
- :func:`greedy_decode`: the best path (argmax per frame), collapsed.
- :func:`beam_search`: CTC prefix beam search (Hannun et al. 2014, "First-pass large vocabulary continuous speech
  recognition using bi-directional recurrent DNNs", Algorithm 1), which sums the probability of every frame path
  of a prefix, with an optional character language model (``lm``): a prefix is ranked by
  ``log P_ctc(prefix) + alpha * log P_lm(prefix) + beta * len(prefix)``. :func:`ngram_hook` and
  :func:`char_lm_hook` turn lstmkit's Witten-Bell n-gram and character LSTM into such a model.
- :func:`log_likelihoods` and :func:`rescore`: the exact CTC log-likelihood of given labellings, and labellings
  ranked by their mean log-likelihood under several readings of one input (several networks: a sequence-level
  ensemble) plus the language model.
- :func:`edit_distance`, :func:`cer`, :func:`wer`: Levenshtein distance and the error rates built on it.

Shapes: ``T`` frames, ``B`` batch, ``C`` classes (blank included), ``S`` target length.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

if TYPE_CHECKING:
    from lstmkit.tasks.text.language import LanguageModel
    from lstmkit.tasks.text.ngram import WittenBellLM

__all__ = [
    "BLANK",
    "Alphabet",
    "LMHook",
    "beam_search",
    "cer",
    "char_lm_hook",
    "collapse",
    "ctc_loss",
    "edit_distance",
    "greedy_decode",
    "mix_hooks",
    "log_likelihoods",
    "min_frames",
    "ngram_hook",
    "pack_targets",
    "rescore",
    "wer",
]

BLANK = 0

# A character language model for beam search: given the labels of a prefix (blank-free, 1 .. C-1), the natural-log
# probabilities of each possible next label, shape (C,). Entry 0 (the blank's slot) is the log probability that the
# text ends after the prefix; a model without an end symbol returns 0.0 there.
LMHook = Callable[[tuple[int, ...]], np.ndarray]


class Alphabet:
    """The characters a recogniser can emit; character ``chars[i]`` is label ``i + 1`` and the blank is label 0.

    Example:
        >>> ab = Alphabet("abc ")
        >>> ab.encode("cab"), ab.decode([3, 1, 2]), ab.num_classes
        ([3, 1, 2], 'cab', 5)
    """

    def __init__(self, chars: str | Iterable[str]) -> None:
        chars = "".join(chars)
        duplicates = sorted({c for c in chars if chars.count(c) > 1})
        if duplicates:
            raise ValueError(f"An alphabet lists each character once; {duplicates!r} appear more than once.")
        if not chars:
            raise ValueError("An alphabet needs at least one character; got an empty one.")
        self.chars = chars
        self._label = {c: i + 1 for i, c in enumerate(chars)}

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Alphabet:
        """The sorted set of characters used in ``texts``."""
        return cls(sorted(set("".join(texts))))

    @property
    def num_classes(self) -> int:
        """``C``: the characters plus the blank, the size of the network's output layer."""
        return len(self.chars) + 1

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, char: object) -> bool:
        return char in self._label

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Alphabet) and other.chars == self.chars

    def __hash__(self) -> int:
        return hash(self.chars)

    def __repr__(self) -> str:
        return f"Alphabet({self.chars!r})"

    def unknown(self, text: str) -> list[str]:
        """The characters of ``text`` that are not in the alphabet, sorted."""
        return sorted({c for c in text if c not in self._label})

    def encode(self, text: str) -> list[int]:
        """Labels of ``text`` (1 .. C-1); raises ValueError naming any character outside the alphabet."""
        unknown = self.unknown(text)
        if unknown:
            raise ValueError(
                f"{text!r} has characters outside the alphabet ({''.join(unknown)!r}); the alphabet is "
                f"{self.chars!r}. Drop or map those characters, or build the alphabet from texts that include them."
            )
        return [self._label[c] for c in text]

    def decode(self, labels: Iterable[int]) -> str:
        """Text of collapsed labels; blanks are skipped."""
        return "".join(self.chars[i - 1] for i in labels if i != BLANK)


def collapse(path: Iterable[int]) -> list[int]:
    """Labels read off a frame path: merge repeated classes, then drop blanks (``1 1 0 1 2 2`` -> ``1 1 2``)."""
    out: list[int] = []
    previous = None
    for k in path:
        k = int(k)
        if k != previous and k != BLANK:
            out.append(k)
        previous = k
    return out


def min_frames(labels: Sequence[int]) -> int:
    """Fewest frames that can emit ``labels``: one per label plus a blank between each pair of equal neighbours."""
    return len(labels) + sum(a == b for a, b in zip(labels, labels[1:], strict=False))


def pack_targets(labels: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """Targets for :func:`ctc_loss` from one label list per example: ``(targets (sum S,), target_lengths (B,))``."""
    lengths = torch.tensor([len(s) for s in labels], dtype=torch.long)
    flat = [int(k) for s in labels for k in s]
    return torch.tensor(flat, dtype=torch.long), lengths


def ctc_loss(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Tensor,
    target_lengths: Tensor,
    reduction: str = "mean",
    *,
    zero_infinity: bool = True,
) -> Tensor:
    """CTC negative log-likelihood of the targets, via ``torch.nn.functional.ctc_loss``, blank = 0.

    Args:
        log_probs: (T, B, C) ``log_softmax`` over classes (time first, as torch's CTC wants it).
        targets: (B, S) padded labels or (sum S,) concatenated labels, values 1 .. C-1.
        input_lengths: (B,) valid frames per example, each at most T.
        target_lengths: (B,) labels per example.
        reduction: "mean" (each example's loss divided by its target length, then averaged over the batch, torch's
            convention), "sum" or "none" ((B,) losses).

    Examples whose targets cannot fit their frames (see :func:`min_frames`) have infinite loss; by default it is
    replaced by 0 (``zero_infinity=True``) so one impossible example does not poison a batch. Keep such examples out
    of the data. ``zero_infinity=False`` keeps the infinity (scoring labellings, :func:`log_likelihoods`).
    """
    if log_probs.dim() != 3:
        raise ValueError(f"log_probs must be (T, B, C); got shape {tuple(log_probs.shape)}.")
    T, B, C = log_probs.shape
    if input_lengths.shape != (B,) or target_lengths.shape != (B,):
        raise ValueError(
            f"input_lengths and target_lengths must be ({B},) for a batch of {B}; got "
            f"{tuple(input_lengths.shape)} and {tuple(target_lengths.shape)}."
        )
    if int(input_lengths.max()) > T or int(input_lengths.min()) < 1:
        raise ValueError(f"input_lengths must lie in 1 .. T = {T}; got {input_lengths.tolist()}.")
    if targets.numel() and (int(targets.min()) < 1 or int(targets.max()) >= C):
        raise ValueError(f"targets must be labels 1 .. {C - 1} (0 is the blank); got values {targets.min()} .. "
                         f"{targets.max()}.")  # fmt: skip
    return F.ctc_loss(
        log_probs,
        targets,
        input_lengths,
        target_lengths,
        blank=BLANK,
        reduction=reduction,
        zero_infinity=zero_infinity,
    )


def _as_numpy(log_probs: Tensor | np.ndarray) -> np.ndarray:
    if isinstance(log_probs, Tensor):
        return log_probs.detach().to("cpu", torch.float64).numpy()
    return np.asarray(log_probs, dtype=np.float64)


def greedy_decode(
    log_probs: Tensor | np.ndarray, lengths: Sequence[int] | Tensor | None = None
) -> list[int] | list[list[int]]:
    """Best-path decoding: the most likely class at each frame, collapsed.

    Args:
        log_probs: (T, C) for one sequence -> ``list[int]``; or (T, B, C) for a batch -> one ``list[int]`` per
            example, each read over its first ``lengths[b]`` frames (all T when ``lengths`` is None).
    """
    scores = _as_numpy(log_probs)
    if scores.ndim == 2:
        return collapse(scores.argmax(axis=1))  # (T,)
    if scores.ndim != 3:
        raise ValueError(f"log_probs must be (T, C) or (T, B, C); got shape {scores.shape}.")
    T, B, _ = scores.shape
    lengths = [T] * B if lengths is None else [int(n) for n in lengths]
    best = scores.argmax(axis=2)  # (T, B)
    return [collapse(best[: lengths[b], b]) for b in range(B)]


def _logsumexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    hi, lo = (a, b) if a > b else (b, a)
    return hi + math.log1p(math.exp(lo - hi))


def beam_search(
    log_probs: Tensor | np.ndarray,
    beam_width: int = 16,
    *,
    lm: LMHook | None = None,
    alpha: float = 0.5,
    beta: float = 0.0,
    prune: float = 1e-3,
    max_candidates: int = 8,
    return_beams: bool = False,
) -> list[int] | list[tuple[list[int], float]]:
    """CTC prefix beam search over one sequence's (T, C) log-probabilities.

    Each prefix keeps two probabilities: of the frame paths so far that emit it and end in a blank (``p_b``) and
    that end in its last character (``p_nb``). At a frame, a prefix is kept by a blank or by repeating its last
    character, and extended by any character (a repeat of the last character extends it only from ``p_b``, since
    ``a a`` with no blank between collapses to ``a``). Paths reaching the same prefix are summed, which is why beam
    search can beat the best single path. Prefixes are ranked by
    ``log(p_b + p_nb) + alpha * log P_lm(prefix) + beta * len(prefix)`` and the ``beam_width`` best survive.

    Args:
        log_probs: (T, C) natural-log class probabilities of one sequence, blank = class 0.
        beam_width: prefixes kept after each frame; 1 is close to (not the same as) greedy decoding.
        lm: optional character language model, see :data:`LMHook`; its end-of-text entry is added once at the end.
        alpha: weight of the language model's log probability.
        beta: bonus per emitted character, to offset the language model's bias to short outputs.
        prune: characters with probability below this at a frame are not tried there (the most likely always is).
        max_candidates: at most this many characters, the most likely, are tried at a frame (the search's cost is
            about T x beam_width x candidates Python steps; a trained network's frames rarely have more than 2).
        return_beams: return every surviving ``(labels, score)``, best first, instead of the best labels.
    """
    if beam_width < 1 or max_candidates < 1:
        raise ValueError(f"beam_width and max_candidates must be at least 1, got {beam_width} and {max_candidates}.")
    scores = _as_numpy(log_probs)
    if scores.ndim != 2:
        raise ValueError(f"beam_search decodes one sequence: log_probs must be (T, C); got shape {scores.shape}.")
    T, C = scores.shape
    log_prune = math.log(prune) if prune > 0 else -math.inf
    lm_cache: dict[tuple[int, ...], np.ndarray] = {}
    lm_score: dict[tuple[int, ...], float] = {(): 0.0}  # alpha * log P_lm(prefix) + beta * len(prefix)

    def lm_next(prefix: tuple[int, ...]) -> np.ndarray:
        if prefix not in lm_cache:
            lm_cache[prefix] = np.asarray(lm(prefix), dtype=np.float64)  # type: ignore[misc]  # (C,)
        return lm_cache[prefix]

    def extension_score(prefix: tuple[int, ...], k: int) -> float:
        new = (*prefix, k)
        if new not in lm_score:
            lm_score[new] = lm_score[prefix] + beta + (alpha * float(lm_next(prefix)[k]) if lm else 0.0)
        return lm_score[new]

    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, -math.inf)}  # prefix -> (log p_b, log p_nb)
    for t in range(T):
        frame = scores[t]  # (C,)
        chars = frame[1:]  # (C-1,)
        above = np.flatnonzero(chars >= log_prune)
        if len(above) > max_candidates:
            above = above[np.argpartition(chars[above], -max_candidates)[-max_candidates:]]
        elif len(above) == 0:
            above = np.array([int(chars.argmax())])
        candidates = (above + 1).tolist()
        nxt: dict[tuple[int, ...], list[float]] = {}

        def add(prefix: tuple[int, ...], which: int, value: float, nxt: dict = nxt) -> None:
            entry = nxt.setdefault(prefix, [-math.inf, -math.inf])
            entry[which] = _logsumexp(entry[which], value)

        for prefix, (p_b, p_nb) in beams.items():
            p_total = _logsumexp(p_b, p_nb)
            add(prefix, 0, p_total + frame[BLANK])  # a blank keeps the prefix
            last = prefix[-1] if prefix else None
            if last is not None:
                add(prefix, 1, p_nb + frame[last])  # repeating the last character keeps it too
            for k in candidates:
                extension_score(prefix, k)
                if k == last:
                    add((*prefix, k), 1, p_b + frame[k])  # "a - a": a new character only after a blank
                else:
                    add((*prefix, k), 1, p_total + frame[k])

        alive = [(prefix, pb_pnb) for prefix, pb_pnb in nxt.items() if max(pb_pnb) > -math.inf]  # reachable
        ranked = heapq.nlargest(beam_width, alive, key=lambda kv: _logsumexp(*kv[1]) + lm_score[kv[0]])
        beams = {prefix: (pb, pnb) for prefix, (pb, pnb) in ranked}

    def final(prefix: tuple[int, ...]) -> float:
        end = alpha * float(lm_next(prefix)[BLANK]) if lm else 0.0
        return _logsumexp(*beams[prefix]) + lm_score[prefix] + end

    result = sorted(((list(p), final(p)) for p in beams), key=lambda b: b[1], reverse=True)
    return result if return_beams else result[0][0]


def log_likelihoods(log_probs: Tensor | np.ndarray, candidates: Sequence[Sequence[int]]) -> np.ndarray:
    """``log P(labels | input)`` of each candidate labelling under one sequence's (T, C) log-probabilities: the sum
    over every frame path that collapses to it (torch's CTC forward pass); ``-inf`` for a labelling that cannot fit
    T frames. Returns (K,) for K candidates."""
    scores = torch.as_tensor(_as_numpy(log_probs))  # (T, C) float64
    if scores.dim() != 2:
        raise ValueError(f"log_likelihoods scores one sequence: log_probs must be (T, C); got {tuple(scores.shape)}.")
    if not candidates:
        return np.zeros(0)
    K, T = len(candidates), scores.shape[0]
    targets, lengths = pack_targets(candidates)  # (sum S,), (K,)
    frames = torch.full((K,), T)
    nll = ctc_loss(scores.unsqueeze(1).expand(T, K, -1), targets, frames, lengths, "none", zero_infinity=False)
    return -nll.numpy()  # (K,)


def lm_log_prob(lm: LMHook, labels: Sequence[int]) -> float:
    """``log P_lm(labels, then the end of the text)`` under a :data:`LMHook`."""
    total, prefix = 0.0, ()
    for k in labels:
        total += float(lm(prefix)[k])
        prefix = (*prefix, k)
    return total + float(lm(prefix)[BLANK])


def rescore(
    readings: Sequence[Tensor | np.ndarray],
    candidates: Iterable[Sequence[int]],
    *,
    lm: LMHook | None = None,
    alpha: float = 0.5,
    beta: float = 0.0,
) -> list[tuple[list[int], float]]:
    """Candidate labellings ranked best first by ``mean over readings of log P_ctc(labels | reading) + alpha *
    log P_lm(labels) + beta * len(labels)``.

    A sequence-level ensemble: each network proposes its beams (:func:`beam_search` with ``return_beams=True``) and
    every network scores every proposal exactly. Unlike averaging per-frame probabilities, it needs no agreement on
    which frame a character's spike falls on, and the readings may even differ in length (a product of experts
    over whole labellings).

    Args:
        readings: one or more (T_r, C) log-probability arrays of the same input.
        candidates: labellings to rank (duplicates are scored once).
        lm, alpha, beta: as in :func:`beam_search` (``lm`` None: ``alpha`` is ignored).
    """
    unique = list(dict.fromkeys(tuple(c) for c in candidates))
    if not readings or not unique:
        raise ValueError(f"rescore needs at least one reading and one candidate; got {len(readings)} and "
                         f"{len(unique)}.")  # fmt: skip
    ctc_scores = np.mean([log_likelihoods(r, unique) for r in readings], axis=0)  # (K,)
    ranked = []
    for labels, score in zip(unique, ctc_scores, strict=True):
        extra = beta * len(labels) + (alpha * lm_log_prob(lm, labels) if lm is not None else 0.0)
        ranked.append((list(labels), float(score) + extra))
    return sorted(ranked, key=lambda b: b[1], reverse=True)


def ngram_hook(lm: WittenBellLM) -> LMHook:
    """A :data:`LMHook` from a :class:`~lstmkit.tasks.text.ngram.WittenBellLM` fitted on CTC labels.

    Fit the n-gram on the training texts' labels, each text preceded by a 0 (which stands for "start / end of
    text" in the n-gram, the blank's slot): ``WittenBellLM(order, alphabet.num_classes).fit(ids)`` with ``ids`` =
    ``[0, *encode(text1), 0, *encode(text2), ..., 0]``. The hook scores every next label in one vectorised call by
    laying out ``C`` windows ``[history, k]`` of the model's order end to end; a prefix shorter than the history is
    padded with 0s on the left, which the model has not seen (``0 0`` never occurs), so it backs off to the
    longest history it has, as it would at the start of a text.
    """
    C, n = lm.vocab_size, lm.order

    def hook(prefix: tuple[int, ...]) -> np.ndarray:
        history = [0, *prefix][-(n - 1) :] if n > 1 else []
        history = [0] * (n - 1 - len(history)) + history
        windows = np.array([[*history, k] for k in range(C)], dtype=np.int64)  # (C, n)
        return lm.log_probs(windows.reshape(-1)).reshape(C, n)[:, -1]  # (C,)

    return hook


def char_lm_hook(model: LanguageModel, alphabet: Alphabet, *, context: str = "", end: str | None = None) -> LMHook:
    """A :data:`LMHook` from a character-level :class:`~lstmkit.tasks.text.language.LanguageModel`.

    The model reads ``context`` and then the prefix's characters, one step each, its state cached per prefix, so a
    beam of prefixes costs one LSTM step per new character. A character of the alphabet the model never saw gets
    log probability -20. ``end`` (e.g. ``" "`` or ``"\\n"``) is the character whose probability stands for the end
    of the text; without it the end is not scored.
    """
    net, tok = model._check()
    if tok.level != "character":
        raise ValueError(f"char_lm_hook needs a character-level language model; this one is {tok.level}-level.")
    stoi: dict[str, int] = tok.stoi  # type: ignore[attr-defined]
    to_lm = np.array([stoi.get(c, -1) for c in alphabet.chars], dtype=np.int64)  # (C-1,) LM id of each label
    end_id = stoi.get(end, -1) if end else -1
    cache: dict[tuple[int, ...], tuple[np.ndarray, Any]] = {}

    @torch.no_grad()
    def run(ids: list[int], state: Any) -> tuple[np.ndarray, Any]:
        logits, state = net(torch.tensor([ids], dtype=torch.long), state)  # (1, t, V)
        return torch.log_softmax(logits[0, -1].double(), dim=-1).numpy(), state  # (V,)

    def entry(prefix: tuple[int, ...]) -> tuple[np.ndarray, Any]:
        if prefix not in cache:
            if not prefix:
                net.eval()
                cache[prefix] = run(tok.encode(context) if context else [tok.encode("\n")[0]], None)
            else:
                _, parent_state = entry(prefix[:-1])
                cache[prefix] = run([max(int(to_lm[prefix[-1] - 1]), 0)], parent_state)
        return cache[prefix]

    def hook(prefix: tuple[int, ...]) -> np.ndarray:
        logp = entry(prefix)[0]
        out = np.full(alphabet.num_classes, -20.0)
        known = to_lm >= 0
        out[1:][known] = logp[to_lm[known]]
        out[BLANK] = logp[end_id] if end_id >= 0 else 0.0
        return out

    return hook


def mix_hooks(hooks: Sequence[LMHook], shares: Sequence[float]) -> LMHook:
    """A :data:`LMHook` whose probabilities are ``shares``-weighted sums of the ``hooks``' (linear interpolation of
    language models, e.g. a character LSTM and an n-gram: ``log(sum_k share_k * exp(hook_k(prefix)))``). ``shares``
    are positive and sum to 1; every hook must give the end of the text a probability (entry 0)."""
    if len(hooks) != len(shares) or not hooks:
        raise ValueError(f"mix_hooks needs one share per hook, got {len(hooks)} hooks and {len(shares)} shares.")
    if any(not w > 0 for w in shares) or abs(sum(shares) - 1.0) > 1e-9:
        raise ValueError(f"The shares of a mix are positive and sum to 1, got {list(shares)}.")
    log_shares = np.log(np.asarray(shares, dtype=np.float64))[:, None]  # (K, 1)

    def hook(prefix: tuple[int, ...]) -> np.ndarray:
        return np.logaddexp.reduce(log_shares + np.stack([h(prefix) for h in hooks]), axis=0)  # (C,)

    return hook


def edit_distance(reference: Sequence[Any], hypothesis: Sequence[Any]) -> int:
    """Levenshtein distance: fewest insertions, deletions and substitutions turning one sequence into the other.

    Works on strings (characters) and on lists (e.g. words). ``edit_distance("kitten", "sitting") == 3``.
    """
    previous = list(range(len(hypothesis) + 1))  # distances from reference[:0]
    for i, r in enumerate(reference, start=1):
        current = [i]
        for j, h in enumerate(hypothesis, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1]


def _error_rate(references: Sequence[Sequence[Any]], hypotheses: Sequence[Sequence[Any]]) -> float:
    if len(references) != len(hypotheses):
        raise ValueError(f"Got {len(references)} references but {len(hypotheses)} hypotheses; pair them one to one.")
    errors = sum(edit_distance(r, h) for r, h in zip(references, hypotheses, strict=True))
    return errors / max(1, sum(len(r) for r in references))


def cer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Character error rate: edit distances summed over all pairs / reference characters summed (at least 1).

    Can exceed 1 when hypotheses insert many characters. ``cer(["abcd"], ["abd"]) == 0.25``.
    """
    return _error_rate(list(references), list(hypotheses))


def wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Word error rate: as :func:`cer` over whitespace-separated words."""
    return _error_rate([r.split() for r in references], [h.split() for h in hypotheses])
