"""``--nproc N``: relaunch the same command under torchrun with N processes on this machine."""

from __future__ import annotations

import os
import subprocess
import sys

_ARGV: list[str] = []


def set_argv(argv: list[str]) -> None:
    """Remember the command line the CLI was called with (``main(argv)`` or ``sys.argv[1:]``)."""
    _ARGV[:] = list(argv)


def argv() -> list[str]:
    """The command line the CLI is running (without the program name)."""
    return list(_ARGV)


def under_torchrun() -> bool:
    """True inside a process that torchrun started."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def without_nproc(argv: list[str]) -> list[str]:
    """``argv`` with ``--nproc N`` / ``--nproc=N`` removed."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def relaunch(nproc: int) -> int:
    """Run this command again as ``torchrun --standalone --nproc-per-node N -m lstmkit ...``; return its exit code."""
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
        "-m", "lstmkit", *without_nproc(_ARGV),
    ]  # fmt: skip
    return subprocess.call(cmd)
