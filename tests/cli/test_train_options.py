"""lstmkit.cli._options: the shared options of every ``train`` command (train_options) and how CoreOptions.build
layers them: the config's defaults < ``--config FILE`` < the command's own options < the shared options < ``--set``.

A toy command on its own typer app, so nothing here trains."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any

import pytest
import typer
from typer.testing import CliRunner

from lstmkit import runs
from lstmkit.cli._options import CORE_PATHS, CoreOptions, read_config_file, train_options
from lstmkit.config import ConfigError, StrictConfig, TrainConfig


@dataclasses.dataclass(frozen=True)
class ToyNet(StrictConfig):
    hidden_size: int = 48
    num_layers: int = 3

    def validate(self) -> None:
        if self.num_layers < 1:
            raise ConfigError(f"ToyNet.num_layers must be at least 1, got {self.num_layers}.")


@dataclasses.dataclass(frozen=True)
class ToyTrain(TrainConfig):
    epochs: int = 77
    lr: float = 0.004
    max_minutes: float | None = 9.5


@dataclasses.dataclass(frozen=True)
class ToyConfig(StrictConfig):
    net: ToyNet = dataclasses.field(default_factory=ToyNet)
    train: ToyTrain = dataclasses.field(default_factory=ToyTrain)
    window: int = 24
    column: str = "value"


toy = typer.Typer()


@toy.command("train")
@train_options(ToyConfig)
def train(
    window: Annotated[int | None, typer.Option("--window")] = None,
    column: Annotated[str | None, typer.Option("--column")] = None,
    *,
    core: CoreOptions,
) -> None:
    """Build the config as a train command does and print it."""
    given = {k: v for k, v in {"window": window, "column": column}.items() if v is not None}
    try:
        cfg = core.build(ToyConfig, given)
    except ConfigError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(cfg.to_dict()))


@toy.command("other")
def other() -> None:  # a second command, so that typer keeps `train` as a subcommand
    """Nothing."""


def run(*args: str) -> tuple[int, dict[str, Any] | None, str]:
    result = CliRunner().invoke(toy, ["train", *args])
    doc = json.loads(result.stdout) if result.exit_code == 0 else None
    return result.exit_code, doc, result.stderr if result.exit_code else ""


def test_the_help_lists_the_shared_options_with_the_config_defaults() -> None:
    result = CliRunner().invoke(toy, ["train", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for flag in ("--hidden-size", "--layers", "--lr", "--epochs", "--batch-size", "--max-minutes", "--seed",
                 "--device", "--set", "--config", "--window"):  # fmt: skip
        assert flag in text, flag
    for shown in ("(default 48)", "(default 3)", "(default 0.004)", "(default 77)", "(default 32)", "(default 9.5)",
                  "(default 0)", "(default cpu)"):  # fmt: skip
        assert shown in text, shown  # read from ToyConfig's dataclasses: declared once, not copied into the CLI


def test_nothing_given_is_the_config_defaults() -> None:
    code, doc, _ = run()
    assert code == 0 and doc == ToyConfig().to_dict()
    assert CoreOptions().overrides() == {}  # None means not given: nothing is overridden


def test_each_shared_option_sets_its_field() -> None:
    code, doc, _ = run("--hidden-size", "8", "--layers", "2", "--lr", "0.1", "--epochs", "5", "--batch-size", "4",
                       "--max-minutes", "1.5", "--seed", "9", "--device", "auto")  # fmt: skip
    assert code == 0
    assert doc["net"] == {"hidden_size": 8, "num_layers": 2}
    t = doc["train"]
    assert (t["lr"], t["epochs"], t["batch_size"], t["max_minutes"], t["seed"], t["device"]) == (
        0.1, 5, 4, 1.5, 9, "auto")  # fmt: skip
    assert set(CORE_PATHS.values()) <= set(ToyConfig.paths())  # every shared option names a real field


def test_precedence_defaults_config_file_command_options_core_options_set(tmp_path: Path) -> None:
    file = tmp_path / "cfg.json"
    file.write_text(json.dumps({"net": {"hidden_size": 10, "num_layers": 2}, "train": {"lr": 0.5, "epochs": 6},
                                "window": 4, "column": "from-file"}))  # fmt: skip
    code, doc, _ = run("--config", str(file))
    assert code == 0 and (doc["net"]["hidden_size"], doc["train"]["lr"], doc["window"]) == (10, 0.5, 4)
    assert doc["train"]["max_minutes"] == 9.5  # what the file leaves out keeps the default
    code, doc, _ = run("--config", str(file), "--window", "5")  # the command's own option beats the file
    assert (doc["window"], doc["column"], doc["net"]["num_layers"]) == (5, "from-file", 2)
    code, doc, _ = run("--config", str(file), "--hidden-size", "12", "--epochs", "7")  # a shared option beats it
    assert (doc["net"]["hidden_size"], doc["net"]["num_layers"], doc["train"]["epochs"]) == (12, 2, 7)
    code, doc, _ = run("--config", str(file), "--hidden-size", "12", "--set", "net.hidden_size=13",
                       "--set", "window=6", "--window", "5", "--set", "column=2020")  # fmt: skip
    assert (doc["net"]["hidden_size"], doc["window"], doc["column"]) == (13, 6, "2020")  # --set beats all
    built = CoreOptions(hidden_size=12, sets=("train.lr=0.25",)).build(ToyConfig, {"hidden_size": 11, "lr": 0.2})
    assert (built.net.hidden_size, built.train.lr) == (12, 0.25)  # the command's flat names join their sections


def test_set_an_unknown_key_names_the_close_ones() -> None:
    code, _, err = run("--set", "train.lrr=0.1")
    assert code == 2 and "ToyConfig has no field 'train.lrr'. Did you mean train.lr" in err
    code, _, err = run("--set", "net.hiden_size=4")
    assert "Did you mean net.hidden_size" in err
    code, _, err = run("--set", "lr")
    assert code == 2 and "--set takes key=value (for example --set train.lr=3e-3), got 'lr'." in err
    with pytest.raises(ConfigError, match="--set takes key=value"):
        CoreOptions(sets=("=3",)).overrides()


def test_a_bad_value_names_the_option_that_set_it() -> None:
    code, _, err = run("--layers", "0")
    assert code == 2 and "--layers: ToyNet.num_layers must be at least 1, got 0." in err
    code, _, err = run("--lr", "-1")
    assert code == 2 and "--lr: TrainConfig.lr must be a positive finite float, got -1.0" in err
    code, _, err = run("--device", "tpu")
    assert code == 2 and "--device:" in err and "'cpu', 'cuda', 'auto', got 'tpu'" in err
    code, _, err = run("--set", "net.hidden_size=big")
    assert code == 2 and "ToyNet.hidden_size: expected int, got str 'big'" in err


def test_a_bad_set_value_does_not_blame_an_option_not_given() -> None:
    code, _, err = run("--set", "net.hidden_size=big")
    assert code == 2 and "--hidden-size" not in err


def test_an_unknown_set_key_is_not_blamed_on_a_shared_option_that_was_given() -> None:
    code, _, err = run("--epochs", "2", "--set", "train.patience=3")  # the list of fields names "epochs" too
    assert code == 2 and "has no field 'train.patience'" in err and "--epochs" not in err


def test_a_plain_config_file_stays_strict(tmp_path: Path) -> None:
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"net": {"hidden_size": 8}, "windwo": 3}))  # a typo is not dropped
    code, _, err = run("--config", str(plain))
    assert code == 2 and "'windwo'" in err


def test_a_run_config_json_is_accepted_by_config(tmp_path: Path) -> None:
    started = ToyConfig().with_overrides({"net.hidden_size": 20, "window": 3, "train.lr": 0.02})
    runs.start_run(tmp_path / "run", "toy", started)  # the config.json a training writes as it starts
    assert read_config_file(tmp_path / "run" / "config.json") == started.to_dict()
    code, doc, _ = run("--config", str(tmp_path / "run" / "config.json"), "--epochs", "2")
    assert code == 0 and ToyConfig.from_dict(doc) == started.with_overrides({"train.epochs": 2})
    flat = tmp_path / "flat.json"  # the flat layout older runs saved reads into the sections too
    flat.write_text(json.dumps({"hidden_size": 16, "epochs": 3, "max_seconds": 120}))
    code, doc, _ = run("--config", str(flat))
    assert (doc["net"]["hidden_size"], doc["train"]["epochs"], doc["train"]["max_minutes"]) == (16, 3, 2.0)


def test_a_finished_runs_config_json_gives_the_task_config_beside_what_the_run_learned(tmp_path: Path) -> None:
    saved = ToyConfig().with_overrides({"net.hidden_size": 20, "window": 5})
    runs.save_run(tmp_path / "run", "toy", {"toy": saved.to_dict(), "tokens": ["a", "b"]}, torch_linear())
    code, doc, err = run("--config", str(tmp_path / "run" / "config.json"))
    assert code == 0, err
    assert ToyConfig.from_dict(doc) == saved


def torch_linear() -> Any:
    import torch

    return torch.nn.Linear(1, 1)


def test_config_file_errors_are_one_sentence(tmp_path: Path) -> None:
    code, _, err = run("--config", str(tmp_path / "missing.json"))
    assert code == 2 and "missing.json: no such file. Give a JSON file of config fields." in err
    (tmp_path / "bad.json").write_text("{not json")
    assert "not a readable JSON file" in run("--config", str(tmp_path / "bad.json"))[2]
    (tmp_path / "list.json").write_text("[1, 2]")
    assert "expected a JSON object of config fields, got list" in run("--config", str(tmp_path / "list.json"))[2]
    (tmp_path / "typo.json").write_text(json.dumps({"windw": 3}))
    assert "'windw' -> 'window'?" in run("--config", str(tmp_path / "typo.json"))[2]


def test_a_command_declaring_a_shared_option_itself_is_refused() -> None:
    def clash(hidden_size: int = 4, *, core: CoreOptions) -> None: ...

    with pytest.raises(TypeError, match=r"clash declares \['hidden_size'\] itself; train_options adds them"):
        train_options(ToyConfig)(clash)
