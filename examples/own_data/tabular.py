"""Your own data and your own network: scikit-learn's bundled breast-cancer table (569
patients, 30 features, 2 classes) and an MLP of yours, trained by sweeplab's loop.

``load()`` is called once per worker process; its tensors stay on the trial's device, as the
built-in datasets' do. ``build`` gets each trial's hyperparameters, the catalog's (optimizer,
lr, weight decay, dropout...) and your own (``width``, ``depth``) alike.
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from torch import nn

from sweeplab.trainer import Data


def load() -> Data:
    table = load_breast_cancer()
    x = torch.tensor(table.data, dtype=torch.float32)
    y = torch.tensor(table.target)
    idx = torch.arange(len(y)).numpy()
    train, rest = train_test_split(idx, test_size=0.4, random_state=0, stratify=table.target)
    val, test = train_test_split(rest, test_size=0.5, random_state=0, stratify=table.target[rest])
    # Standardise with the training split's statistics only: nothing of val/test leaks in.
    mean, std = x[train].mean(0), x[train].std(0).clamp_min(1e-8)
    x = (x - mean) / std
    return Data(
        train=(x[train], y[train]),
        val=(x[val], y[val]),
        test=(x[test], y[test]),
        num_classes=2,
    )


def build(input_shape: tuple[int, ...], n_classes: int, hp: dict) -> nn.Module:
    layers: list[nn.Module] = []
    features = input_shape[0]
    for _ in range(int(hp["depth"])):
        layers += [nn.Linear(features, int(hp["width"])), nn.ReLU(), nn.Dropout(hp["dropout"])]
        features = int(hp["width"])
    return nn.Sequential(*layers, nn.Linear(features, n_classes))
