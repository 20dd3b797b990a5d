"""Training throughput: sweeplab's trainer vs the plain PyTorch-tutorial loop, in one run.

Both train the same networks on MNIST with the same optimizer, batch size and epochs:

- ``mlp``: the 784-120-80-10 sigmoid MLP, SGD (lr 0.1), batch 64, 2 epochs;
- ``mlp_aug``: the same with random crop (padding 2) + horizontal flip;
- ``mlp_compile`` (not run by default): the MLP through ``torch.compile``; its first epoch pays
  the compilation, and the ratio after it is printed apart;
- ``cnn``: a small conv net (two conv3x3-ReLU-maxpool blocks, 32 and 64 channels), same optimizer;
- ``cnn_nchw`` (not run by default): the same CNN in the contiguous (NCHW) memory format, what
  the trainer used on CPUs before it took channels-last there too;
- ``cnn_compile`` (not run by default): the same CNN through ``torch.compile`` (the spec's
  ``model.compile``); its first epoch pays the compilation, which is printed apart.

The reference is the loop every tutorial teaches: ``torchvision.datasets.MNIST`` with
``transforms.ToTensor()`` and ``Normalize`` (plus ``RandomCrop``/``RandomHorizontalFlip`` for
``mlp_aug``) and a
``DataLoader(batch_size=64, shuffle=True)``. sweeplab keeps the dataset as tensors on the device,
slices batches by index, and augments whole batches at once.

Throughput is training examples per second of the training loop (sweeplab's figure also pays for
its per-epoch validation pass, so the ratio is conservative). Test accuracy is measured on the
10,000 official test images for both.

Usage::

    python benchmarks/trainer_throughput.py [--root ../shared/data] [--epochs 2] [--rounds 3]
        [--cases mlp,mlp_aug,mlp_compile,cnn,cnn_nchw,cnn_compile]

With ``--rounds R`` each case runs R times, the reference and sweeplab back to back in each
round, and the ratio is the median of the rounds' ratios with their range (on a loaded machine
the range shows how far to trust it). The last line is machine-readable ``key=value`` pairs, the
(median) ratios first.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from sweeplab import trainer

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"
LR, BATCH = 0.1, 64
# case: (network, crop+flip, sweeplab variant: "" as is, "nchw" contiguous layout, "compile")
CASES = {
    "mlp": ("mlp", False, ""),
    "mlp_aug": ("mlp", True, ""),
    "mlp_compile": ("mlp", False, "compile"),
    "cnn": ("cnn", False, ""),
    "cnn_nchw": ("cnn", False, "nchw"),
    "cnn_compile": ("cnn", False, "compile"),
}


# ---- the reference: the PyTorch tutorial loop ----------------------------------------------------
def reference_net(kind: str) -> nn.Module:
    if kind == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 10),
        )  # fmt: skip
    return nn.Sequential(
        nn.Flatten(), nn.Linear(784, 120), nn.Sigmoid(), nn.Linear(120, 80), nn.Sigmoid(),
        nn.Linear(80, 10),
    )  # fmt: skip


def run_reference(root: Path, kind: str, augment: bool, epochs: int, seed: int) -> dict:
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    torch.manual_seed(seed)
    # pytorch/examples' MNIST pipeline: ToTensor, then Normalize with the training set's statistics.
    to_input = [transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]
    augmenting = [transforms.RandomCrop(28, padding=2), transforms.RandomHorizontalFlip()]
    train_steps = transforms.Compose([*(augmenting if augment else []), *to_input])
    train = datasets.MNIST(root, train=True, download=False, transform=train_steps)
    test = datasets.MNIST(root, train=False, download=False, transform=transforms.Compose(to_input))
    loader = DataLoader(train, batch_size=BATCH, shuffle=True)
    net = reference_net(kind)
    optimizer = torch.optim.SGD(net.parameters(), lr=LR)
    started = time.perf_counter()
    seen = 0
    for _ in range(epochs):
        net.train()
        for x, y in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            optimizer.step()
            seen += len(y)
    seconds = time.perf_counter() - started
    net.eval()
    correct = 0
    with torch.no_grad():
        for x, y in DataLoader(test, batch_size=1000):
            correct += (net(x).argmax(1) == y).sum().item()
    return {"samples_per_s": seen / seconds, "seconds": seconds, "test_acc": correct / len(test)}


# ---- sweeplab's trainer --------------------------------------------------------------------------
def run_sweeplab(
    root: Path, kind: str, augment: bool, epochs: int, seed: int, variant: str = ""
) -> dict:
    # A thin validation split: the reference trains on all 60,000 images.
    data = trainer.DataSettings(dataset="mnist", root=str(root), val_fraction=0.01)
    trainer.load_dataset(data, "cpu")  # loaded once per process, as in a Ray worker
    model = trainer.ModelSettings(
        kind="cnn" if kind == "cnn" else "mlp",
        hidden=(120, 80),
        channels=(32, 64),
        activation="relu" if kind == "cnn" else "sigmoid",
    )
    if variant == "nchw":
        # The trainer's own CNN, built by a factory: the trainer leaves a factory's network in
        # the memory format it has (contiguous), where its own CNNs go channels-last.
        own = model

        def contiguous(shape: tuple, n_classes: int, hp: dict) -> torch.nn.Module:
            return trainer.build_model(own, hp, shape, n_classes)

        model = trainer.ModelSettings(factory=contiguous)
    params = {"optimizer": "sgd", "lr": LR, "momentum": 0.0, "batch_size": BATCH}
    if augment:
        params.update(augment=["crop", "flip"], crop_padding=2)
    settings = trainer.FitSettings(
        max_epochs=epochs, seed=seed, device="cpu", compile=variant == "compile"
    )
    epoch_seconds: list[float] = []
    result = trainer.fit(
        data, model, params, settings, lambda r: epoch_seconds.append(r.epoch_seconds)
    )
    n_train = len(trainer.load_dataset(data, "cpu").train_y)
    return {
        "samples_per_s": n_train * epochs / sum(epoch_seconds),
        "seconds": sum(epoch_seconds),
        "first_epoch_s": epoch_seconds[0],
        # After the first epoch, which pays torch.compile's compilation.
        "steady_samples_per_s": (
            n_train * (epochs - 1) / sum(epoch_seconds[1:]) if epochs > 1 else float("nan")
        ),
        "test_acc": result.test_acc,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="torchvision MNIST root")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", default="mlp,mlp_aug,cnn", help=f"of {','.join(CASES)}")
    parser.add_argument("--rounds", type=int, default=1, help="repeat each case; median ratio")
    args = parser.parse_args()
    cases = args.cases.split(",")
    for case in cases:
        if case not in CASES:
            parser.error(f"--cases: {case!r} is not one of {', '.join(CASES)}")
    if args.rounds < 1:
        parser.error(f"--rounds must be an int >= 1; got {args.rounds}")
    if not (args.root / "MNIST" / "raw").is_dir():
        print(f"skipped: no MNIST under {args.root} (pass --root)", file=sys.stderr)
        return 0
    torch.set_num_threads(torch.get_num_threads())
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU, MNIST, "
        f"{args.epochs} epochs"
    )
    figures: dict[str, float] = {}
    accuracies: dict[str, tuple[float, float]] = {}
    for case in cases:
        kind, augment, variant = CASES[case]
        ratios = []
        for round_ in range(args.rounds):
            seed = args.seed + round_
            ref = run_reference(args.root, kind, augment, args.epochs, seed)
            ours = run_sweeplab(args.root, kind, augment, args.epochs, seed, variant)
            ratios.append(ours["samples_per_s"] / ref["samples_per_s"])
            accuracies.setdefault(case, (ours["test_acc"], ref["test_acc"]))
            first = ""
            if variant == "compile":
                steady = ours["steady_samples_per_s"] / ref["samples_per_s"]
                first = f", first epoch {ours['first_epoch_s']:.1f} s, after it {steady:.2f}x"
            print(
                f"{case:11s} sweeplab {ours['samples_per_s']:9.0f} samples/s "
                f"({ours['seconds']:.1f} s{first}), tutorial loop {ref['samples_per_s']:8.0f} "
                f"samples/s ({ref['seconds']:.1f} s): {ratios[-1]:.2f}x; test accuracy "
                f"{ours['test_acc']:.4f} vs {ref['test_acc']:.4f} (seed {seed})",
                flush=True,
            )
        figures[f"speedup_{case}"] = statistics.median(ratios)
        if args.rounds > 1:
            print(
                f"{case:11s} median {statistics.median(ratios):.2f}x over {args.rounds} rounds "
                f"(range {min(ratios):.2f}-{max(ratios):.2f}x)"
            )
    first = next(iter(accuracies))
    pairs = [f"{k}={v:.2f}" for k, v in figures.items()]
    pairs += [
        f"acc_sweeplab={accuracies[first][0]:.4f}",
        f"acc_reference={accuracies[first][1]:.4f}",
    ]
    for case, (ours_acc, ref_acc) in accuracies.items():
        pairs.append(f"acc_delta_{case}={ours_acc - ref_acc:+.4f}")
    print(" ".join(pairs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
