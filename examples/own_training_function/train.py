"""A whole training loop of your own: a small torch MLP on scikit-learn's digits, scored by
macro-F1, pruned by ASHA through ``trial.report``.

sweeplab calls ``train(hp, trial)`` once per trial: ``hp`` holds the trial's configuration (the
``[space]`` entries, yours and the catalog's alike), ``trial`` its seed, device and ``report``.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split
from torch import nn


def load() -> tuple[torch.Tensor, ...]:
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target)
    # A fixed split: every trial validates on the same examples.
    idx = np.arange(len(y))
    train, rest = train_test_split(idx, test_size=0.4, random_state=0, stratify=digits.target)
    val, test = train_test_split(rest, test_size=0.5, random_state=0, stratify=digits.target[rest])
    return x[train], y[train], x[val], y[val], x[test], y[test]


def macro_f1(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        predicted = model(x).argmax(dim=1)
    model.train()
    return float(f1_score(y.numpy(), predicted.numpy(), average="macro"))


def train(hp: dict, trial) -> dict[str, float]:
    x_train, y_train, x_val, y_val, x_test, y_test = load()
    layers: list[nn.Module] = []
    width, features = int(hp["width"]), x_train.shape[1]
    for _ in range(int(hp["depth"])):
        layers += [nn.Linear(features, width), nn.ReLU(), nn.Dropout(hp.get("dropout", 0.0))]
        features = width
    model = nn.Sequential(*layers, nn.Linear(features, 10)).to(trial.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=hp["lr"])
    generator = torch.Generator().manual_seed(trial.seed)
    for epoch in range(1, trial.max_epochs + 1):
        order = torch.randperm(len(y_train), generator=generator)
        total = 0.0
        for start in range(0, len(order), 64):
            batch = order[start : start + 64]
            loss = nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss) * len(batch)
        # Raises sweeplab.TrialPruned when ASHA stops the trial: let it propagate.
        trial.report(epoch, val_f1=macro_f1(model, x_val, y_val), train_loss=total / len(order))
    return {"test_f1": macro_f1(model, x_test, y_test)}
