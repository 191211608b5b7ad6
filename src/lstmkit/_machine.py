"""The CPU a measurement ran on, for the pages that report speed or fit seconds (the speed benchmark, the scorecard,
the serving load test): one reader of ``/proc/cpuinfo``."""

from __future__ import annotations

import platform

__all__ = ["cpu_model"]


def cpu_model() -> str:
    """The CPU's model name (``AMD EPYC ...``, ``Intel(R) Xeon(R) ...``), or what ``platform`` says off Linux."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
