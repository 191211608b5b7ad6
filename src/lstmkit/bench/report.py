"""A result for people: readable times, the verdict, and the Markdown document (machine, command, table)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def format_seconds(seconds: float) -> str:
    """A time with a readable unit: 12.3 µs, 4.56 ms, 1.23 s."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.3f} s"


def format_timing(row: Mapping[str, Any], side: str, compact: bool = False) -> str:
    """``median (min–max)`` of ``side`` ("lstmkit" or "peer") of a row dict; compact: ``median ±x%``, x the
    largest distance of min or max from the median."""
    median, low, high = row[f"{side}_s"], row[f"{side}_min_s"], row[f"{side}_max_s"]
    if compact:
        spread = max(high - median, median - low) / median * 100 if median > 0 else 0.0
        return f"{format_seconds(median)} ±{spread:.0f}%"
    return f"{format_seconds(median)} ({format_seconds(low)}–{format_seconds(high)})"


def format_verdict(row: Mapping[str, Any]) -> str:
    """pass / FAIL against the target ("–" without one), "(noisy)" appended for a noisy row."""
    verdict = "–" if row["passed"] is None else ("pass" if row["passed"] else "FAIL")
    return verdict + (" (noisy)" if row.get("noisy") else "")


def markdown(result: Mapping[str, Any]) -> str:
    """The result as Markdown: the machine, the command, the table, skipped suites and notes."""
    m = result["machine"]
    lines = [
        "## Machine",
        "",
        f"- CPU: {m['cpu']} ({m['usable_cores']} usable of {m['cores']} cores; flags: {', '.join(m['cpu_flags'])}), "
        f"{m['memory_gib']} GiB",
        f"- {m['platform']}, Python {m['python']}, torch {m['torch']} ({m['torch_threads']} threads, "
        f"oneDNN {'on' if m['mkldnn'] else 'off'}), JAX {m['jax']}, Keras {m['keras']}",
        f"- OMP_NUM_THREADS={m['OMP_NUM_THREADS']}, XLA_FLAGS={m['XLA_FLAGS']!r}, "
        f"load average before {m.get('loadavg_before')} / after {m.get('loadavg')}",
        f"- started {result['started']}, {result['duration_s']:.0f} s",
        "",
    ]
    if result.get("command"):
        lines += ["Command:", "", "```", str(result["command"]), "```", ""]
    s = result["settings"]
    lines += [
        f"Median of {s['samples']} samples (each >= {s['min_sample_s']} s), min–max in brackets; "
        "ratio = peer time / lstmkit time (above 1: lstmkit faster); callables alternate within each round.",
        "",
        "| suite | config | case | lstmkit | peer | peer time | ratio | target | |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        target = f"≥ {row['target']:.2f}×" if row["target"] is not None else ""
        lines.append(
            f"| {row['suite']} | {row['config']} | {row['case']} | {format_timing(row, 'lstmkit')} | {row['peer']} | "
            f"{format_timing(row, 'peer')} | {row['ratio']:.2f}× | {target} | {format_verdict(row)} |"
        )
    summary = result["summary"]
    lines += ["", f"{summary['passed']} of {summary['with_target']} targets met."]
    for name, why in result["skipped"].items():
        lines.append(f"- skipped {name}: {why}")
    for note in result["notes"]:
        lines.append(f"- {note}")
    return "\n".join(lines) + "\n"
