"""``lstmkit serve``: a trained run over HTTP (FastAPI), with each stream's recurrent state in a store.

``app.py`` builds the API over a :class:`lstmkit.Predictor`; ``store.py`` keeps stream state (SQLite or Redis);
``settings.py`` holds the start-up options and the request limits. Needs the ``serve`` extra
(``pip install 'lstmkit[serve]'``); importing this package alone does not import FastAPI.
"""

from __future__ import annotations

from typing import Any

from .settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":  # FastAPI is imported only when the app is built
        from .app import create_app

        return create_app
    raise AttributeError(f"module 'lstmkit.serve' has no attribute {name!r}")
