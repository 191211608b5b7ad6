"""lstmkit: Long Short-Term Memory networks, from the readable reference cell to trained, measured tasks."""

__version__ = "0.1.0"
