"""Config sections in lstmkit.config: a task config holding ``net:`` and ``train:``, the flat layout saved runs have,
renamed fields, dotted overrides with values typed on the command line (``--set``), and ``parse_value``."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import pytest

from lstmkit.config import ConfigError, StrictConfig, TrainConfig, parse_value


@dataclasses.dataclass(frozen=True)
class ToyNet(StrictConfig):
    RENAMED: ClassVar[Mapping[str, tuple[str, Any]]] = {"model": ("cell", None)}

    hidden_size: int = 32
    num_layers: int = 1
    cell: Literal["lstm", "gru"] = "lstm"
    sizes: tuple[int, ...] = (4, 8)
    shared: float = 0.0  # a name the train section has too: a flat `shared` is ambiguous

    def validate(self) -> None:
        if self.hidden_size < 1:
            raise ConfigError(f"ToyNet.hidden_size must be at least 1, got {self.hidden_size}.")


@dataclasses.dataclass(frozen=True)
class ToyTrain(TrainConfig):
    epochs: int = 300
    lr: float = 3e-3
    shared: float = 0.0


@dataclasses.dataclass(frozen=True)
class ToyConfig(StrictConfig):
    RENAMED: ClassVar[Mapping[str, tuple[str, Any]]] = {"columns": ("target", lambda cols: cols[0])}

    net: ToyNet = dataclasses.field(default_factory=ToyNet)
    train: ToyTrain = dataclasses.field(default_factory=ToyTrain)
    target: str = "value"
    horizon: int = 12


def test_the_flat_layout_is_read_into_the_sections() -> None:
    cfg = ToyConfig.from_dict({"hidden_size": 8, "epochs": 2, "lr": 0.01, "horizon": 3})
    assert cfg.net == ToyNet(hidden_size=8)
    assert (cfg.train.epochs, cfg.train.lr) == (2, 0.01) and isinstance(cfg.train, ToyTrain)
    assert cfg.horizon == 3 and cfg.target == "value"  # task fields stay at the top level
    assert cfg.train.batch_size == 32 and cfg.train.optimizer == "adam"  # TrainConfig's defaults where not redeclared
    nested = cfg.to_dict()
    assert nested["net"]["hidden_size"] == 8 and nested["train"]["epochs"] == 2 and "hidden_size" not in nested
    assert ToyConfig.from_dict(json.loads(json.dumps(nested))) == cfg  # the nested layout round-trips through JSON
    mixed = ToyConfig.from_dict({"net": {"num_layers": 2}, "hidden_size": 8})  # flat keys join a given section
    assert (mixed.net.num_layers, mixed.net.hidden_size) == (2, 8)


def test_a_section_redeclares_only_the_defaults_it_changes() -> None:
    assert (ToyTrain().epochs, ToyTrain().lr) == (300, 3e-3) and (TrainConfig().epochs, TrainConfig().lr) == (10, 1e-3)
    assert ToyConfig().train.schedule == TrainConfig().schedule
    with pytest.raises(ConfigError, match="TrainConfig.epochs must be >= 1"):  # the base's validation still runs
        ToyConfig.from_dict({"epochs": 0})


def test_renamed_fields_load_with_their_converters() -> None:
    assert TrainConfig.from_dict({"max_seconds": 90}).max_minutes == 1.5
    assert TrainConfig.from_dict({"max_seconds": None}).max_minutes is None
    cfg = ToyConfig.from_dict({"model": "gru", "max_seconds": 120, "columns": ["sales", "price"]})
    assert cfg.net.cell == "gru" and cfg.train.max_minutes == 2.0 and cfg.target == "sales"  # flat, then renamed
    assert ToyConfig.from_dict({"net": {"model": "gru"}}).net.cell == "gru"  # inside its section too
    with pytest.raises(ConfigError, match="unknown key.*'max_seconds'"):  # both names: which one was meant?
        TrainConfig.from_dict({"max_seconds": 60, "max_minutes": 2.0})


def test_a_key_given_flat_and_in_its_section_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"'hidden_size' is given both at the top level and in 'net'.*net\.hidden_"):
        ToyConfig.from_dict({"hidden_size": 8, "net": {"hidden_size": 16}})
    with pytest.raises(ConfigError, match="'epochs' is given both at the top level and in 'train'"):
        ToyConfig.from_dict({"epochs": 8, "train": ToyTrain(epochs=4)})


def test_unknown_and_ambiguous_flat_keys_are_errors_naming_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="unknown key.*'shared'.*Valid keys are: net, train, target, horizon"):
        ToyConfig.from_dict({"shared": 1.0})  # in both sections: never guessed
    with pytest.raises(ConfigError, match="'horizn' -> 'horizon'"):
        ToyConfig.from_dict({"horizn": 3})
    with pytest.raises(ConfigError, match="ToyNet got unknown key.*'depth'"):
        ToyConfig.from_dict({"net": {"depth": 3}})


def test_with_overrides_sets_dotted_paths_from_text_and_values() -> None:
    cfg = ToyConfig()
    new = cfg.with_overrides(
        {"train.lr": "3e-2", "train.max_minutes": "none", "net.sizes": "8,16", "net.cell": "gru", "target": "2020",
         "train.carry_state_across_batches": "true", "horizon": 6, "net.hidden_size": "64"}
    )  # fmt: skip
    assert new.train.lr == 0.03 and new.train.max_minutes is None and new.net.sizes == (8, 16)
    assert new.net.cell == "gru" and new.target == "2020" and new.train.carry_state_across_batches is True
    assert (new.horizon, new.net.hidden_size) == (6, 64) and isinstance(new.train.lr, float)
    assert cfg == ToyConfig() and new.train.epochs == 300  # a copy; the untouched fields keep their values
    assert cfg.with_overrides({"net.sizes": "[1, 2, 3]"}).net.sizes == (1, 2, 3)
    assert cfg.with_overrides({}) == cfg


def test_with_overrides_errors_are_one_sentence_with_the_close_paths() -> None:
    cfg = ToyConfig()
    with pytest.raises(ConfigError, match=r"ToyConfig has no field 'train\.lrr'\. Did you mean train\.lr"):
        cfg.with_overrides({"train.lrr": "1"})
    with pytest.raises(ConfigError, match="Settable fields: net.hidden_size, net.num_layers"):
        cfg.with_overrides({"nothing_like_it": "1"})
    with pytest.raises(ConfigError, match="ToyNet.hidden_size: expected int, got str 'many'"):
        cfg.with_overrides({"net.hidden_size": "many"})
    with pytest.raises(ConfigError, match="ToyNet.hidden_size must be at least 1, got 0"):  # validate() runs
        cfg.with_overrides({"net.hidden_size": "0"})
    with pytest.raises(ConfigError, match="expected one of 'lstm', 'gru', got 'rnn'"):
        cfg.with_overrides({"net.cell": "rnn"})


def test_paths_walk_the_sections() -> None:
    paths = ToyConfig.paths()
    assert paths["net.hidden_size"] is int and paths["train.lr"] is float and paths["horizon"] is int
    assert "net" not in paths and "train" not in paths and "train.device" in paths
    assert ToyConfig.sections() == {"net": ToyNet, "train": ToyTrain} and TrainConfig.sections() == {}


@pytest.mark.parametrize(
    ("text", "tp", "expected"),
    [
        ("3e-3", float, 0.003),
        ("7", int, 7),
        ("none", int | None, None),
        ("null", float | None, None),
        ("true", bool, True),
        ("[1, 2]", tuple[int, ...], [1, 2]),
        ("1, 2,3", tuple[int, ...], [1, 2, 3]),  # comma lists for tuples and lists
        ("a,b", list[str], ["a", "b"]),
        ("2020", str, "2020"),  # a field that takes text keeps the text as typed: the column "2020"
        ("1", Literal["1", "2"], "1"),
        ("cosine", Literal["constant", "cosine"], "cosine"),
        ("0.5", float | str, 0.5),  # a number where a number fits
        ("abc", int, "abc"),  # not read as anything: the type check says what was expected
    ],
)
def test_parse_value_reads_text_as_the_field_wants(text: str, tp: Any, expected: Any) -> None:
    value = parse_value(text, tp)
    assert value == expected and type(value) is type(expected)


def test_parse_value_keeps_a_choice_named_none():
    assert parse_value("none", Literal["none", "log"]) == "none"
    assert parse_value("none", Literal["none", "balanced"] | None) == "none"
    assert parse_value("none", int | None) is None and parse_value("null", float | None) is None
