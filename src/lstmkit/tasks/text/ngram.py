"""n-gram language models, the baselines the LSTM language model must beat: interpolated Witten-Bell and
interpolated modified Kneser-Ney smoothing.

Witten & Bell (1991), interpolated as in Chen & Goodman (1998, §2.5)::

    P_k(w | h) = (c(h w) + T(h) * P_{k-1}(w | h')) / (c(h) + T(h))     if c(h) > 0, else P_{k-1}(w | h')
    P_0(w)     = 1 / V

with ``h`` the ``k - 1`` tokens before ``w``, ``h'`` its last ``k - 2``, ``c`` training counts and ``T(h)`` the
number of distinct tokens seen after ``h``. The first tokens of a text use the longest history they have.

Modified Kneser-Ney (Chen & Goodman 1998, §4.1.6; the smoothing SRILM's ``-kndiscount -interpolate`` and KenLM
use)::

    P_k(w | h) = (max(a(h w) - D_k(a(h w)), 0) + g(h) * P_{k-1}(w | h')) / sum_w a(h w)    if that sum > 0
    g(h)       = D_k1 N_1(h .) + D_k2 N_2(h .) + D_k3+ N_3+(h .)

with ``a`` the raw count at the highest order and the continuation count (distinct tokens seen before the k-gram)
below it, ``N_r(h .)`` the number of tokens seen after ``h`` with ``a`` equal to r (3: at least 3), and the three
discounts of each order from its counts of counts n_r: ``Y = n1 / (n1 + 2 n2)``, ``D_r = r - (r + 1) Y n_{r+1} / n_r``.

Counting is vectorised: an n-gram of ids below ``V`` is packed into one int64 (``w + V * h``), counted with
``np.unique`` and looked up with ``np.searchsorted``, so 5-grams over 5 M characters count in seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["KneserNeyLM", "OrderCounts", "WittenBellLM", "ngram_baselines"]


@dataclass
class OrderCounts:
    """The counts of one order ``k`` of a :class:`WittenBellLM` (``WittenBellLM.orders[k - 1]``): what a saved model
    stores to be rebuilt without its training text."""

    ngrams: np.ndarray  # sorted packed keys of the k-grams seen
    ngram_counts: np.ndarray
    contexts: np.ndarray  # sorted packed keys of their (k-1)-token histories
    context_counts: np.ndarray  # c(h)
    context_types: np.ndarray  # T(h)


def _lookup(keys: np.ndarray, table: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` at each key's place in the sorted ``table``; 0 where the key is absent."""
    if len(table) == 0:
        return np.zeros(len(keys), dtype=np.int64)
    pos = np.minimum(np.searchsorted(table, keys), len(table) - 1)
    return np.where(table[pos] == keys, values[pos], 0)


class WittenBellLM:
    """Interpolated Witten-Bell n-gram model over integer tokens ``0 .. vocab_size - 1``.

    Example:
        >>> lm = WittenBellLM(order=3, vocab_size=3).fit(np.array([0, 1, 2, 0, 1, 2, 0, 1]))
        >>> round(lm.nats_per_token(np.array([0, 1, 2])), 3)
        0.423
    """

    def __init__(self, order: int = 5, vocab_size: int = 256) -> None:
        if order < 1:
            raise ValueError(f"order must be at least 1, got {order}.")
        if vocab_size < 2 or vocab_size**order >= 2**62:
            raise ValueError(f"vocab_size {vocab_size} ** order {order} must fit in an int64 key; lower the order.")
        self.order, self.vocab_size = order, vocab_size
        self.orders: list[OrderCounts] = []

    def _keys(self, ids: np.ndarray, k: int) -> np.ndarray:
        """Packed k-gram ending at each position i >= k - 1: w_i + V w_{i-1} + ... (the token predicted lowest)."""
        n = len(ids) - k + 1
        key = np.zeros(max(n, 0), dtype=np.int64)
        for j in range(k):  # j tokens back from the predicted one
            key += ids[k - 1 - j : k - 1 - j + n].astype(np.int64) * (self.vocab_size**j)
        return key

    def fit(self, ids: np.ndarray) -> WittenBellLM:
        """Count every 1..order-gram of the training token ids."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.min(initial=0) < 0 or ids.max(initial=0) >= self.vocab_size:
            raise ValueError(f"Token ids must lie in [0, {self.vocab_size}).")
        V, self.orders = self.vocab_size, []
        for k in range(1, self.order + 1):
            ngrams, counts = np.unique(self._keys(ids, k), return_counts=True)
            contexts, first = np.unique(ngrams // V, return_index=True)
            # c(h): the counts of the k-grams that share h, summed; T(h): how many of them there are
            context_counts = np.add.reduceat(counts, first) if len(first) else counts
            context_types = np.diff(np.append(first, len(ngrams)))
            self.orders.append(OrderCounts(ngrams, counts, contexts, context_counts, context_types))
        return self

    def log_probs(self, ids: np.ndarray) -> np.ndarray:
        """Natural-log probability of each token of ``ids`` given the tokens before it (within ``ids``)."""
        if not self.orders:
            raise RuntimeError("This WittenBellLM is not fitted: call fit(train_ids) first.")
        ids = np.asarray(ids, dtype=np.int64)
        V = self.vocab_size
        p = np.full(len(ids), 1.0 / V)
        for k, o in enumerate(self.orders, start=1):
            keys = self._keys(ids, k)  # for positions k-1 .. end
            c_hw = _lookup(keys, o.ngrams, o.ngram_counts)
            c_h = _lookup(keys // V, o.contexts, o.context_counts)
            t_h = _lookup(keys // V, o.contexts, o.context_types)
            lower = p[k - 1 :]
            seen = c_h > 0
            p[k - 1 :] = np.where(seen, (c_hw + t_h * lower) / np.maximum(c_h + t_h, 1), lower)
        return np.log(p)

    def nats_per_token(self, ids: np.ndarray) -> float:
        """Mean negative log-likelihood (nats per token) of ``ids``."""
        lp = self.log_probs(ids)
        return float(-lp.mean()) if len(lp) else math.nan


MIN_DISCOUNT = 0.05


class KneserNeyLM(WittenBellLM):
    """Interpolated modified Kneser-Ney n-gram model over integer tokens ``0 .. vocab_size - 1`` (Chen & Goodman
    1998): absolute discounting with three discounts per order, lower orders on continuation counts.

    Example:
        >>> lm = KneserNeyLM(order=3, vocab_size=3).fit(np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1]))
        >>> bool(lm.nats_per_token(np.array([0, 1, 2])) < np.log(3))
        True
    """

    def __init__(self, order: int = 5, vocab_size: int = 256) -> None:
        super().__init__(order, vocab_size)
        self.discounts: list[np.ndarray] = []  # per order: (D1, D2, D3+)
        self.gammas: list[np.ndarray] = []  # per order, per context: D1 N1(h.) + D2 N2(h.) + D3 N3+(h.)

    def fit(self, ids: np.ndarray) -> KneserNeyLM:
        """Count every 1..order-gram of the training token ids, then the continuation counts and the discounts."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.min(initial=0) < 0 or ids.max(initial=0) >= self.vocab_size:
            raise ValueError(f"Token ids must lie in [0, {self.vocab_size}).")
        V = self.vocab_size
        raw = [np.unique(self._keys(ids, k), return_counts=True) for k in range(1, self.order + 1)]
        self.orders, self.discounts, self.gammas = [], [], []
        for k in range(1, self.order + 1):
            if k == self.order:
                ngrams, counts = raw[k - 1]
            else:  # continuation count of a k-gram: the distinct tokens seen before it (its (k+1)-grams' last k)
                ngrams, counts = np.unique(raw[k][0] % V**k, return_counts=True)
            n = [int((counts == r).sum()) for r in (1, 2, 3, 4)]
            y = n[0] / (n[0] + 2 * n[1]) if n[0] + n[1] > 0 else 0.5
            # a discount the counts of counts put at or below 0 (tiny or repetitive texts) would leave a context no
            # mass for the tokens never seen after it (probability 0): held at MIN_DISCOUNT, as SRILM falls back
            d = np.array([r - (r + 1) * y * n[r] / n[r - 1] if n[r - 1] else 0.5 for r in (1, 2, 3)])
            d = np.where(d > 0, d, MIN_DISCOUNT)
            contexts, first = np.unique(ngrams // V, return_index=True)
            context_counts = np.add.reduceat(counts, first) if len(first) else counts
            context_types = np.diff(np.append(first, len(ngrams)))
            per_type = d[np.minimum(counts, 3) - 1]  # each k-gram's discount
            gamma = np.add.reduceat(per_type, first) if len(first) else per_type
            self.orders.append(OrderCounts(ngrams, counts, contexts, context_counts, context_types))
            self.discounts.append(d)
            self.gammas.append(gamma)
        return self

    def log_probs(self, ids: np.ndarray) -> np.ndarray:
        """Natural-log probability of each token of ``ids`` given the tokens before it (within ``ids``)."""
        if not self.orders:
            raise RuntimeError("This KneserNeyLM is not fitted: call fit(train_ids) first.")
        ids = np.asarray(ids, dtype=np.int64)
        V = self.vocab_size
        p = np.full(len(ids), 1.0 / V)
        for k, (o, d, gamma) in enumerate(zip(self.orders, self.discounts, self.gammas, strict=True), start=1):
            keys = self._keys(ids, k)  # for positions k-1 .. end
            a_hw = _lookup(keys, o.ngrams, o.ngram_counts)
            total = _lookup(keys // V, o.contexts, o.context_counts)
            g = _lookup_float(keys // V, o.contexts, gamma)
            discount = np.where(a_hw > 0, d[np.clip(a_hw, 1, 3) - 1], 0.0)
            lower = p[k - 1 :]
            p[k - 1 :] = np.where(total > 0, (np.maximum(a_hw - discount, 0) + g * lower) / np.maximum(total, 1), lower)
        return np.log(p)


def _lookup_float(keys: np.ndarray, table: np.ndarray, values: np.ndarray) -> np.ndarray:
    """As :func:`_lookup`, for float values (0.0 where the key is absent)."""
    if len(table) == 0:
        return np.zeros(len(keys))
    pos = np.minimum(np.searchsorted(table, keys), len(table) - 1)
    return np.where(table[pos] == keys, values[pos], 0.0)


def ngram_baselines(train_ids: np.ndarray, test_ids: np.ndarray, vocab_size: int, order: int) -> dict[str, dict]:
    """Interpolated Kneser-Ney and Witten-Bell models of ``order`` fitted on ``train_ids``, scored on ``test_ids``:
    ``{"kneser_ney": {"order", "smoothing", "nats_per_token"}, "witten_bell": {...}}``."""
    out = {}
    for name, cls, smoothing in (("kneser_ney", KneserNeyLM, "interpolated modified Kneser-Ney"),
                                 ("witten_bell", WittenBellLM, "interpolated Witten-Bell")):  # fmt: skip
        nats = cls(order, vocab_size).fit(train_ids).nats_per_token(test_ids)
        out[name] = {"order": order, "smoothing": smoothing, "nats_per_token": nats}
    return out
