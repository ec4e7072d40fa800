"""The network: a non-causal temporal convolutional network (TCN) at 1 kHz with three heads.

* trunk: a 5-tap stem and six residual blocks of dilated 3-tap convolutions (dilations 1…32, receptive field
  about 130 ms) at full resolution, so the contact head keeps millisecond detail;
* contact head: one logit per millisecond of the window; the softmax is the distribution of the contact time
  (its mean is the estimate, its spread the uncertainty);
* window head: two strided convolutions (to 16 ms steps, seeing the whole 512 ms), mean and max pooling, and a
  small perceptron giving the crash logit and four struck-side logits.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from trustlane.accident.core.learned import CENTRE, CHANNELS, DIRECTIONS, WINDOW

WIDTH = 32
DILATIONS = (1, 2, 4, 8, 16, 32)


class _Residual(nn.Module):
    def __init__(self, width: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation)
        self.norm = nn.BatchNorm1d(width)

    def forward(self, x: Tensor) -> Tensor:
        return x + torch.relu(self.norm(self.conv(x)))


class TemporalNet(nn.Module):
    """Raw outputs: (crash logit (B,), direction logits (B, 4), contact logits (B, WINDOW))."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv1d(len(CHANNELS), WIDTH, 5, padding=2), nn.BatchNorm1d(WIDTH), nn.ReLU())
        self.blocks = nn.Sequential(*(_Residual(WIDTH, d) for d in DILATIONS))
        self.contact = nn.Sequential(nn.Conv1d(WIDTH, 16, 3, padding=1), nn.ReLU(), nn.Conv1d(16, 1, 1))
        self.reduce = nn.Sequential(
            nn.Conv1d(WIDTH, 48, 5, stride=4, padding=2),
            nn.BatchNorm1d(48),
            nn.ReLU(),
            nn.Conv1d(48, 64, 5, stride=4, padding=2),
            nn.BatchNorm1d(64),
            nn.ReLU(),
        )
        self.classify = nn.Sequential(nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 1 + len(DIRECTIONS)))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        h = self.blocks(self.stem(x))
        contact = self.contact(h)[:, 0, :]
        r = self.reduce(h)
        pooled = torch.cat([r.mean(dim=2), r.amax(dim=2)], dim=1)
        logits = self.classify(pooled)
        return logits[:, 0], logits[:, 1:], contact


class Exported(nn.Module):
    """What ships: probabilities, the contact offset (ms from the proposal) and its calibrated sigma (ms)."""

    def __init__(self, net: TemporalNet, sigma_scale: float) -> None:
        super().__init__()
        self.net = net
        self.sigma_scale = float(sigma_scale)

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        crash, direction, contact = self.net(features)
        positions = torch.arange(WINDOW, dtype=torch.float32) - CENTRE
        mean, variance = contact_moments(contact, positions)
        sigma = torch.sqrt(variance + 1.0 / 12.0) * self.sigma_scale  # 1/12 ms²: the spread within one bin
        return torch.sigmoid(crash), torch.softmax(direction, dim=1), mean, sigma


def contact_moments(logits: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and variance (ms, ms²) of the contact distribution given by per-millisecond logits."""
    p = torch.softmax(logits, dim=1)
    mean = (p * positions).sum(dim=1)
    variance = (p * (positions - mean[:, None]) ** 2).sum(dim=1)
    return mean, variance


def soft_target(offset_ms: Tensor) -> Tensor:
    """The true contact spread over its two neighbouring millisecond bins (linear split): (B, WINDOW)."""
    where = (offset_ms + CENTRE).clamp(0, WINDOW - 1.001)
    low = where.floor()
    upper_weight = where - low
    target = torch.zeros(len(offset_ms), WINDOW)
    rows = torch.arange(len(offset_ms))
    target[rows, low.long()] = 1 - upper_weight
    target[rows, low.long() + 1] = upper_weight
    return target
