"""Truncated BPTT end to end with lstmkit's own LSTM: state carried and detached across chunks, loss falls."""

import torch

from lstmkit.config import TrainConfig
from lstmkit.nn import LSTM
from lstmkit.train import StepOutput, Trainer


class _Predictor(torch.nn.Module):
    def __init__(self, backend: str) -> None:
        super().__init__()
        self.lstm = LSTM(1, 16, backend=backend, layer_norm=backend == "lstmkit")
        self.head = torch.nn.Linear(16, 1)

    def forward(self, x, state):
        out, state = self.lstm(x, state)
        return self.head(out), state


def test_tbptt_trains_an_lstmkit_lstm_on_a_long_series():
    t = torch.arange(0, 2001, dtype=torch.float32) * 0.1
    series = torch.sin(t) + 0.5 * torch.sin(0.31 * t)  # (2001,)
    x, y = series[:-1].reshape(4, -1, 1), series[1:].reshape(4, -1, 1)  # 4 streams of ~500 steps
    seen_states = []
    for backend in ("auto", "lstmkit"):
        torch.manual_seed(0)
        model = _Predictor(backend)

        def loss_fn(model, batch, state):
            seen_states.append(state)
            pred, new_state = model(batch[0], state)
            return StepOutput(loss=torch.nn.functional.mse_loss(pred, batch[1]), state=new_state)

        config = TrainConfig(epochs=8, lr=1e-2, tbptt_steps=50, progress=False)
        history = Trainer(model, loss_fn, config).fit([(x, y)])
        assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"], (backend, history)
    carried = [s for s in seen_states if s is not None]
    assert carried and all(not s[0].requires_grad and not s[1].requires_grad for s in carried)  # detached
    assert sum(s is None for s in seen_states) == 2 * 8  # reset at the start of every batch (one batch per epoch)
