"""A word-by-word dictionary translator learned from parallel sentences (IBM Model 1): the floor a
sequence-to-sequence model should clear, computed on the same training pairs in the same run."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

__all__ = ["WordByWordTranslator", "words"]

_WORD = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]", re.UNICODE)


def words(text: str) -> list[str]:
    """Words and punctuation marks, lower-cased: the units the dictionary translator works on."""
    return _WORD.findall(text.lower())


class WordByWordTranslator:
    """A word-by-word dictionary learned from parallel sentences with IBM Model 1 (Brown et al. 1993): EM over
    t(target word | source word), with a NULL source word; each source word is then replaced by its most probable
    target word. No reordering, no fertility: the floor a sequence-to-sequence model should clear.

    Vectorised: one row per (sentence, source position, target position) triple, so one EM iteration is a few
    array passes. Memory grows with the sum over pairs of len(source) x len(target).
    """

    def __init__(self, iterations: int = 5) -> None:
        self.iterations = iterations
        self.dictionary: dict[str, str] = {}

    def fit(self, sources: list[str], targets: list[str]) -> WordByWordTranslator:
        src = [["<null>", *words(s)] for s in sources]
        tgt = [words(t) for t in targets]
        src_vocab = {w: i for i, w in enumerate(sorted({w for s in src for w in s}))}
        tgt_vocab = {w: i for i, w in enumerate(sorted({w for t in tgt for w in t}))}
        e_ids, f_ids, groups = [], [], []  # groups: one id per (sentence, target position)
        g = 0
        for s, t in zip(src, tgt, strict=True):
            if not t:
                continue
            es = np.array([src_vocab[w] for w in s], dtype=np.int64)
            fs = np.array([tgt_vocab[w] for w in t], dtype=np.int64)
            e_ids.append(np.tile(es, len(fs)))  # (len(t) * len(s),): target position major
            f_ids.append(np.repeat(fs, len(es)))
            groups.append(np.repeat(np.arange(g, g + len(fs)), len(es)))
            g += len(fs)
        if not e_ids:
            raise ValueError("No non-empty sentence pairs to learn a dictionary from.")
        e, f, grp = np.concatenate(e_ids), np.concatenate(f_ids), np.concatenate(groups)
        pair = e * len(tgt_vocab) + f
        types, inverse = np.unique(pair, return_inverse=True)  # each distinct (source word, target word)
        t_prob = np.ones(len(types))  # uniform start
        type_e = types // len(tgt_vocab)
        for _ in range(self.iterations):
            p = t_prob[inverse]
            posterior = p / np.bincount(grp, weights=p, minlength=g)[grp]  # over the source words of one target word
            counts = np.bincount(inverse, weights=posterior, minlength=len(types))
            totals = np.bincount(type_e, weights=counts, minlength=len(src_vocab))
            t_prob = counts / totals[type_e]
        # the best target word per source word
        order = np.lexsort((-t_prob, type_e))
        first = np.ones(len(order), dtype=bool)
        first[1:] = type_e[order][1:] != type_e[order][:-1]
        best = order[first]
        src_words, tgt_words = list(src_vocab), list(tgt_vocab)
        self.dictionary = {src_words[type_e[k]]: tgt_words[types[k] % len(tgt_vocab)] for k in best}
        self.dictionary.pop("<null>", None)
        self.source_counts = Counter(w for s in src for w in s[1:])
        return self

    def translate(self, sentences: list[str]) -> list[str]:
        """Each word replaced by its dictionary entry (unknown words copied), capitalised where the source word is,
        joined with spaces and with no space before punctuation."""
        if not self.dictionary:
            raise RuntimeError("WordByWordTranslator.translate before fit: call fit(sources, targets) first.")
        out = []
        for sentence in sentences:
            pieces = []
            for raw in _WORD.findall(sentence):
                word = self.dictionary.get(raw.lower(), raw.lower())
                if raw[:1].isupper():
                    word = word[:1].upper() + word[1:]
                pieces.append(word)
            text = " ".join(pieces)
            out.append(re.sub(r" ([,.;:!?)])", r"\1", text))
        return out
