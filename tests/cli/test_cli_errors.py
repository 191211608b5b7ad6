"""The CLI's one error handler (issue 18): a user's mistake that a command did not catch itself is one capped sentence
and exit code 2; a bug keeps its traceback."""

from __future__ import annotations

import pytest

import lstmkit.report
from lstmkit.cli import main
from lstmkit.cli._console import MAX_MESSAGE, user_error_message
from lstmkit.train import ResumeError


def test_an_uncaught_user_error_is_one_sentence(tmp_path, capsys, monkeypatch):
    def broken(run_dir):
        raise IsADirectoryError(21, "Is a directory", str(run_dir))  # `report` catches only two kinds itself

    monkeypatch.setattr(lstmkit.report, "write_report", broken)
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("error:") and str(tmp_path) in err and err.count("\n") <= 2


def test_a_long_message_is_capped_and_markup_is_not_read(tmp_path, capsys, monkeypatch):
    cell = "[bold]x" * 8_000_000  # a 56 MB cell quoted by an error message

    def broken(run_dir):
        raise ValueError(f"Row 3 holds {cell!r}, not a number.")

    monkeypatch.setattr(lstmkit.report, "write_report", broken)
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err) < MAX_MESSAGE + 200 and "[bold]x" in err and "more characters" in err


def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch):
    def broken(run_dir):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(lstmkit.report, "write_report", broken)
    with pytest.raises(ZeroDivisionError):
        main(["report", str(tmp_path)])


def test_interrupt_says_what_is_kept(tmp_path, capsys, monkeypatch):
    def interrupted(run_dir):
        raise KeyboardInterrupt

    monkeypatch.setattr(lstmkit.report, "write_report", interrupted)
    assert main(["report", str(tmp_path)]) == 130
    assert "--resume" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (ValueError("Bad column."), "Bad column."),
        (KeyError("No such series."), "No such series."),
        (ResumeError("Nothing to resume."), "Nothing to resume."),
        (MemoryError(), "--hidden-size"),
        (RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"), "smaller"),
        (PermissionError(13, "Permission denied", "/root/x"), "/root/x"),
        (ModuleNotFoundError("No module named 'onnxruntime'", name="onnxruntime"), "onnxruntime"),  # an extra
    ],
)
def test_user_errors_map_to_sentences(exc, words):
    message = user_error_message(exc)
    assert message is not None and words in message


@pytest.mark.parametrize(
    "exc",
    [RuntimeError("shape mismatch in a kernel"), TypeError("bad call"), AssertionError(),
     ImportError("cannot import name 'x' from 'lstmkit.tasks' (unknown location)"),
     ModuleNotFoundError("No module named 'lstmkit.export.onnx_graph'", name="lstmkit.export.onnx_graph")],
)  # fmt: skip
def test_bugs_map_to_none(exc):
    assert user_error_message(exc) is None


def test_lstmkit_traceback_shows_where_a_sentence_came_from(tmp_path, monkeypatch):
    def broken(run_dir):
        raise IsADirectoryError(21, "Is a directory", str(run_dir))

    monkeypatch.setattr(lstmkit.report, "write_report", broken)
    monkeypatch.setenv("LSTMKIT_TRACEBACK", "1")
    with pytest.raises(IsADirectoryError):
        main(["report", str(tmp_path)])
