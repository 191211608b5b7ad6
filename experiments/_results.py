"""Shared by the experiment scripts: rewrite a results page's table, keeping the hand-written notes below it."""

from __future__ import annotations

import os
from pathlib import Path


def write_keeping_notes(doc: Path, lines: list[str]) -> None:
    """Write ``lines`` to ``doc``, then the page's existing ``## Notes`` section (or an empty one)."""
    old = doc.read_text() if doc.exists() else ""
    notes = old[old.index("## Notes") :] if "## Notes" in old else "## Notes\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    tmp = doc.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n\n" + notes)
    os.replace(tmp, doc)  # the page is the old one or the new one, never half written
