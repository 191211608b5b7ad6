"""A mixin for the loop's writers: ``with Writer(...) as w:`` closes ``w`` on exit, errors included."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class ClosesOnExit:
    """Gives a class with ``close()`` the context-manager protocol."""

    def close(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
