"""Reproduce the speed benchmark: run :func:`lstmkit.bench.run` and write docs/results/bench.json.

    python benchmarks/run_bench.py                    # all suites, writes docs/results/bench.json
    python benchmarks/run_bench.py --suite streaming --quick --out /tmp/bench.json
    python benchmarks/run_bench.py --suite precision --out /tmp/bench_prec.json   # bf16 autocast vs float32
    python benchmarks/run_bench.py --markdown docs/results/bench.md   # also the Markdown table

Run on a quiet machine (no other jobs on the cores): the ratios are measured in one process, 2 threads, float32
(the precision suite: bfloat16 autocast against float32).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from lstmkit import bench

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", action="append", choices=bench.SUITES, help="a suite to run (repeatable)")
    parser.add_argument("--quick", action="store_true", help="tiny shapes: a smoke test, not a measurement")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "bench.json", help="JSON output")
    parser.add_argument("--threads", type=int, default=bench.THREADS, help="threads (the issue's measurement: 2)")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the Markdown table here")
    args = parser.parse_args(argv)
    command = "python benchmarks/run_bench.py" + (" " + shlex.join(argv if argv is not None else sys.argv[1:]))

    def progress(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    result = bench.run(args.suite, quick=args.quick, threads=args.threads, progress=progress, command=command.strip())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    text = bench.markdown(result)
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text("# Speed benchmark\n\n" + text, encoding="utf-8")
    print(text)
    print(f"JSON written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
