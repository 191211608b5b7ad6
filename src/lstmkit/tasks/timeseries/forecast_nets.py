"""The forecasting networks and their loss: the direct multi-horizon net (MQ-RNN's shape, Wen et al. 2017), the
recurrent one-step net (DeepAR's, fed its own median over the horizon), and the pinball (quantile) loss."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from ...nn import LSTM

if TYPE_CHECKING:
    from .forecast_config import ForecastConfig

__all__ = ["DirectForecastNet", "ForecastEnsemble", "RecurrentForecastNet", "build_net", "pinball_loss"]


class DirectForecastNet(nn.Module):
    """LSTM encoder over the window, then a head from (last state, future covariates) to (horizon, quantiles).

    Args:
        n_inputs: channels per step of the window; n_future: covariate channels per step of the horizon.
        horizon: steps forecast at once; n_quantiles: outputs per step.
        season: with ``season > 0`` a seasonal pattern read from the window is added to the output, repeated over
            the horizon (the net forecasts the residual to it); 0: the values themselves.
        seasonal_mean: which pattern: False, the window's last season (the residual to seasonal-naive); True, the
            window's seasonal profile, its full seasons each taken relative to their own mean and averaged (the
            residual to a smooth season: less noisy than the last season, and free of its level, which the net
            forecasts).
    """

    def __init__(
        self, n_inputs: int, n_future: int, *, horizon: int, n_quantiles: int, hidden_size: int, num_layers: int = 1,
        dropout: float = 0.0, season: int = 0, seasonal_mean: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        self.horizon, self.n_q, self.season, self.seasonal_mean = horizon, n_quantiles, season, seasonal_mean
        self.encoder = LSTM(n_inputs, hidden_size, num_layers=num_layers, dropout=dropout)
        head_in = hidden_size + horizon * n_future
        self.head = nn.Sequential(
            nn.Linear(head_in, hidden_size), nn.ReLU(), nn.Linear(hidden_size, horizon * n_quantiles)
        )

    def forward(self, x: Tensor, future: Tensor, target: Tensor | None = None) -> Tensor:
        _, (h_n, _) = self.encoder(x)  # x (B, W, n_inputs) -> h_n (L, B, hidden)
        z = torch.cat([h_n[-1], future.flatten(1)], dim=1)  # (B, hidden + H * F)
        out = self.head(z).view(-1, self.horizon, self.n_q)  # (B, H, Q)
        if self.season and x.shape[1] >= self.season:  # plus a season read from the window, repeated over the horizon
            reps = -(-self.horizon // self.season)
            out = out + self.seasonal_pattern(x[:, :, 0]).repeat(1, reps)[:, : self.horizon].unsqueeze(-1)
        return out

    def seasonal_pattern(self, y: Tensor) -> Tensor:
        """(B, W) relative scaled target (0, the level, where missing) -> (B, m): the last season, or with
        ``seasonal_mean`` the mean over the window's last k = W // m full seasons of each one minus its own mean.
        Either way entry j belongs to the phase of horizon step j (the seasons end where the horizon starts)."""
        m = self.season
        if not self.seasonal_mean:
            return y[:, -m:]
        k = y.shape[1] // m
        cycles = y[:, -k * m :].reshape(-1, k, m)  # (B, k, m)
        return (cycles - cycles.mean(dim=2, keepdim=True)).mean(dim=1)


class RecurrentForecastNet(nn.Module):
    """One step at a time: the input at step t is (y_{t-1}, observed_{t-1}, future covariates_t); the output is the
    quantiles of y_t. Over the horizon the median is fed back (teacher forcing with the true values in training)."""

    def __init__(
        self, n_inputs: int, *, horizon: int, n_quantiles: int, median: int, hidden_size: int, num_layers: int = 1,
        dropout: float = 0.0,
    ) -> None:  # fmt: skip
        super().__init__()
        self.horizon, self.n_q, self.median = horizon, n_quantiles, median  # median: the quantile fed back
        self.encoder = LSTM(n_inputs, hidden_size, num_layers=num_layers, dropout=dropout)
        self.head = nn.Linear(hidden_size, n_quantiles)

    @staticmethod
    def _shift(rows: Tensor) -> Tensor:
        """(B, T, 2 + F) rows of (y, observed, covariates) -> (B, T - 1, 2 + F) inputs (y_{t-1}, obs_{t-1}, cov_t)."""
        return torch.cat([rows[:, :-1, :2], rows[:, 1:, 2:]], dim=-1)

    def forward(self, x: Tensor, future: Tensor, target: Tensor | None = None) -> Tensor:
        W = x.shape[1]
        if target is not None:  # teacher forcing: the true horizon values as the fed-back inputs
            observed = ~torch.isnan(target)
            rows = torch.cat([torch.nan_to_num(target).unsqueeze(-1), observed.unsqueeze(-1).to(x.dtype), future], -1)
            out, _ = self.encoder(self._shift(torch.cat([x, rows], dim=1)))  # (B, W + H - 1, hidden)
            return self.head(out[:, W - 1 :])  # (B, H, Q): the outputs that predict the horizon
        out, state = self.encoder(self._shift(x))  # the history; out (B, W - 1, hidden)
        prev = x[:, -1, :2]  # (B, 2): the last observed value and its flag
        preds = []
        for h in range(self.horizon):
            step = torch.cat([prev, future[:, h]], dim=-1).unsqueeze(1)  # (B, 1, 2 + F)
            out, state = self.encoder(step, state)
            q = self.head(out[:, 0])  # (B, Q)
            preds.append(q)
            prev = torch.stack([q[:, self.median], torch.ones_like(q[:, 0])], dim=-1)
        return torch.stack(preds, dim=1)  # (B, H, Q)


class ForecastEnsemble(nn.Module):
    """A seed ensemble: ``K`` networks of one shape from their own initialisations, trained side by side on the same
    batches (each by its own loss); the forecast is the mean of their quantiles. Averaging members cuts the spread
    between seeds that a single small network shows on short series."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    @property
    def encoder(self) -> nn.Module:
        """The first member's encoder (its sizes are every member's)."""
        return self.members[0].encoder  # type: ignore[return-value]

    def member_outputs(self, x: Tensor, future: Tensor, target: Tensor | None = None) -> Tensor:
        """(K, B, H, Q): each member's quantiles."""
        return torch.stack([m(x, future, target) for m in self.members])

    def forward(self, x: Tensor, future: Tensor, target: Tensor | None = None) -> Tensor:
        return self.member_outputs(x, future, target).mean(dim=0)  # (B, H, Q)


def build_net(
    n_inputs: int, n_future: int, cfg: ForecastConfig
) -> DirectForecastNet | RecurrentForecastNet | ForecastEnsemble:
    """The network ``cfg`` asks for (its strategy and ``net`` sizes), for ``n_inputs`` / ``n_future`` channels; with
    ``net.members`` above 1, a :class:`ForecastEnsemble` of that many."""
    if (cfg.net.members or 1) > 1:
        one = cfg.replace(net=cfg.net.replace(members=1))
        return ForecastEnsemble([build_net(n_inputs, n_future, one) for _ in range(cfg.net.members or 1)])
    sizes = {"hidden_size": cfg.net.hidden_size, "num_layers": cfg.net.num_layers, "dropout": cfg.net.dropout}
    if cfg.strategy == "recurrent":
        median = list(cfg.quantiles).index(0.5)
        return RecurrentForecastNet(n_inputs, horizon=cfg.horizon, n_quantiles=len(cfg.quantiles), median=median,
                                    **sizes)  # fmt: skip
    season = (cfg.residual_period or cfg.season) if cfg.residual_to != "none" else 0
    return DirectForecastNet(n_inputs, n_future, horizon=cfg.horizon, n_quantiles=len(cfg.quantiles), season=season,
                             seasonal_mean=cfg.residual_to == "seasonal_mean", **sizes)  # fmt: skip


def pinball_loss(pred: Tensor, target: Tensor, quantiles: Tensor) -> Tensor:
    """Mean pinball loss over observed targets: pred (B, H, Q), target (B, H) with NaN where missing."""
    observed = ~torch.isnan(target)
    diff = torch.nan_to_num(target).unsqueeze(-1) - pred  # (B, H, Q)
    loss = torch.maximum(quantiles * diff, (quantiles - 1) * diff)  # (B, H, Q)
    weight = observed.unsqueeze(-1).to(loss.dtype)
    return (loss * weight).sum() / (weight.sum() * len(quantiles)).clamp_min(1)
