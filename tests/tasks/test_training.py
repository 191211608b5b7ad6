"""tasks/training.py: the Trainer every task builds and the device its network trains on."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from lstmkit.config import StrictConfig, TrainConfig
from lstmkit.tasks.training import RESUME_MAY_CHANGE, on_training_device, task_run_config, task_trainer
from lstmkit.train import GateStatistics, StepOutput


@dataclasses.dataclass(frozen=True)
class _Config(StrictConfig):
    horizon: int = 3
    class_weight: str | None = None
    train: TrainConfig = dataclasses.field(default_factory=lambda: TrainConfig(epochs=2, progress=False))


def _loss(model, batch, state):
    (x,) = batch
    return StepOutput(loss=model(x).pow(2).mean(), n_items=x.shape[0])


def test_the_run_config_is_the_whole_config_less_what_a_resume_may_change():
    cfg = _Config()
    run_config = task_run_config(cfg)
    whole = cfg.to_dict()
    assert RESUME_MAY_CHANGE == ("progress", "max_minutes")
    free = set(RESUME_MAY_CHANGE)
    assert free <= set(whole["train"]) and not free & set(run_config["train"])
    assert run_config == {**whole, "train": {k: v for k, v in whole["train"].items() if k not in free}}
    assert list(run_config["train"]) == [k for k in whole["train"] if k not in free]  # the order kept too
    assert cfg.to_dict() == whole  # the config itself is left alone


def test_a_task_may_let_a_resume_change_more_and_record_more():
    cfg = _Config()
    run_config = task_run_config(cfg, resume_may_change=("device",), extra={"class_weight": "None", "lm_texts": 1})
    assert "device" not in run_config["train"] and "progress" not in run_config["train"]
    assert run_config["class_weight"] == "None" and run_config["lm_texts"] == 1
    assert list(run_config) == [*cfg.to_dict(), "lm_texts"]  # a replaced entry keeps its place, a new one ends


def test_task_trainer_adds_gate_statistics_after_the_tasks_callbacks_and_its_run_config():
    cfg, own = _Config(), object()
    model = torch.nn.Linear(2, 1)
    trainer = task_trainer(model, _loss, cfg, kind="probe", callbacks=[own])
    assert trainer.config is cfg.train and trainer.kind == "probe" and trainer.eval_fn is None
    assert trainer.callbacks[0] is own and isinstance(trainer.callbacks[1], GateStatistics)
    assert len(trainer.callbacks) == 2
    assert trainer.run_config == task_run_config(cfg)
    computed = cfg.train.replace(epochs=1)
    assert task_trainer(model, _loss, cfg, kind="probe", train=computed).config is computed


class _Recorder(torch.nn.Linear):
    """A model that records where it is sent (no GPU needed to see the round trip)."""

    def __init__(self) -> None:
        super().__init__(2, 1)
        self.moves: list[str] = []

    def to(self, *args, **kwargs):
        self.moves.append(str(args[0]))
        return super().to("cpu")

    def cpu(self):
        self.moves.append("cpu")
        return super().cpu()


def test_on_training_device_brings_the_model_back_to_the_cpu_even_when_training_fails():
    model = _Recorder()
    with on_training_device(model, torch.device("cuda", 0)) as on:
        assert on is model and model.moves == ["cuda:0"]
    assert model.moves == ["cuda:0", "cpu"]
    model.moves.clear()
    with pytest.raises(RuntimeError, match="boom"), on_training_device(model, torch.device("cuda", 0)):
        raise RuntimeError("boom")
    assert model.moves == ["cuda:0", "cpu"]
