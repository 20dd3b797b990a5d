"""K MLPs as one: stacked weights, one forward pass, and per-member SGD/Adam on the stacks.

Horizontal fusion (Wang et al., 2021, "Horizontally Fused Training Array", MLSys): members that
share an architecture and a batch are trained as one wider model whose layers are batched
matrix products, so the per-step cost of Python, autograd and kernel launches is paid once for K
trials instead of K times.

Layout, with K members, batch B and layer widths ``d_0 -> d_1 -> ... -> d_L``:

- every layer's weights are one ``(K, d_in, d_out)`` stack applied with ``torch.baddbmm``; the
  first layer reads the shared batch through a stride-0 ``expand`` (no copies);
- biases are ``(K, 1, d_out)``.

Measured when choosing it (shared 2-core CPU, 1 thread, K = 8, 784 inputs, forward and
backward): batched products beat both eight separate ``nn.Sequential`` models (about 2.5x for
a (64, 32) MLP at batch 32; on par once one model is compute-bound, e.g. (256, 128) at batch
256) and a single wide ``(B, d_0) @ (d_0, K * d_1)`` first-layer GEMM (about 10% slower here:
its ``d_0 x K d_1`` operand falls out of cache); ``torch.func.vmap`` over ``functional_call``
of stacked modules was the slowest in every case.

Each member keeps its own PyTorch optimizer, stepping views of its rows of the stacks
(:class:`MemberOptimizers`), so every optimizer hyperparameter can differ per member and the
update rule is PyTorch's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from sweeplab.trainer._optim import build_optimizer


@dataclass
class StackedTensor:
    """One stacked parameter: its tensor, the axis that indexes members, and whether it decays."""

    value: torch.Tensor
    member_dim: int
    decays: bool  # weights decay; biases do not (as in :func:`~trainer._optim.parameter_groups`)

    def per_member(self, vector: torch.Tensor) -> torch.Tensor:
        """``vector`` (K,) shaped to broadcast along this tensor's member axis."""
        shape = [1] * self.value.ndim
        shape[self.member_dim] = -1
        return vector.view(shape)

    def select(self, keep: torch.Tensor) -> None:
        """Keep only the members at indices ``keep`` (the group shrinks)."""
        self.value = self.value.detach().index_select(self.member_dim, keep).requires_grad_()


def stack_mlps(nets: Sequence[nn.Module]) -> list[StackedTensor]:
    """Stack the Linear layers of K identically shaped MLPs (built by :func:`build_model`).

    Returns the tensors in layer order: weight, bias, weight, bias, ... (fresh leaves).
    """
    layers = [[m for m in net.modules() if isinstance(m, nn.Linear)] for net in nets]
    stacked: list[StackedTensor] = []
    for group in zip(*layers, strict=True):
        weights = torch.stack([layer.weight.detach().t() for layer in group])  # (K, in, out)
        stacked.append(StackedTensor(weights.contiguous().requires_grad_(), 0, True))
        biases = torch.stack([layer.bias.detach()[None, :] for layer in group])  # (K, 1, out)
        stacked.append(StackedTensor(biases.contiguous().requires_grad_(), 0, False))
    return stacked


def packed_forward(
    params: Sequence[StackedTensor],
    x: torch.Tensor,
    activation: nn.Module,
    *,
    input_keep: torch.Tensor | None = None,
    hidden_keep: torch.Tensor | None = None,
) -> torch.Tensor:
    """Logits ``(K, B, classes)`` of every member on the shared batch ``x`` ``(B, ...)``.

    Args:
        params: from :func:`stack_mlps`.
        x: the batch, flattened here.
        activation: the shared hidden non-linearity (elementwise, parameter-free).
        input_keep, hidden_keep: per-member keep probabilities ``1 - p`` of (inverted) dropout
            on the input and after each hidden activation; ``None`` in eval mode or when every
            member's rate is 0. Masks are drawn from the global generator, per member and unit.
    """
    x = x.flatten(1)
    n_layers = len(params) // 2
    w0 = params[0].value
    # Every member reads the same batch: a stride-0 view, not K copies (unless dropped out).
    xk = x.expand(w0.shape[0], *x.shape)
    if input_keep is not None:
        xk = _drop(xk, input_keep)
    h = torch.baddbmm(params[1].value, xk, w0)
    for i in range(1, n_layers):
        h = activation(h)
        if hidden_keep is not None:
            h = _drop(h, hidden_keep)
        h = torch.baddbmm(params[2 * i + 1].value, h, params[2 * i].value)
    return h


def _drop(h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    keep = keep.view(-1, 1, 1)
    mask = torch.rand(h.shape, device=h.device) < keep
    return h * mask / keep


def packed_cross_entropy(
    logits: torch.Tensor, y: torch.Tensor, smoothing: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-member mean cross entropy ``(K,)`` with per-member label smoothing.

    PyTorch's definition: ``(1 - eps) * nll + eps * mean over classes of -log p``;
    ``smoothing=None`` when no member smooths.
    """
    logp = torch.log_softmax(logits.float(), dim=-1)
    nll = -logp.gather(-1, y.expand(logits.shape[0], -1).unsqueeze(-1)).squeeze(-1).mean(1)
    if smoothing is None:
        return nll
    uniform = -logp.mean(-1).mean(1)
    return (1.0 - smoothing) * nll + smoothing * uniform


class _MemberView(nn.Module):
    """One member's parameters as views into the stacks, shaped as its own network's.

    Weights are ``(d_in, d_out)`` (2-D, so they decay) and biases ``(d_out,)`` (1-D, so they do
    not), which is what :func:`~trainer._optim.build_optimizer` groups by.
    """

    def __init__(self, params: Sequence[StackedTensor], row: int) -> None:
        super().__init__()
        self.tensors = nn.ParameterList(
            nn.Parameter(_member_slice(p, p.value.detach(), row)) for p in params
        )

    def point_at(self, params: Sequence[StackedTensor], row: int) -> None:
        """Alias row ``row`` of the (new, shrunk) stacks; the optimizer's state stays with us."""
        for view, p in zip(self.tensors, params, strict=True):
            view.data = _member_slice(p, p.value.detach(), row)


def _member_slice(p: StackedTensor, tensor: torch.Tensor, row: int) -> torch.Tensor:
    member = tensor.select(p.member_dim, row)
    return member.view(-1) if not p.decays else member  # a bias (1, d_out) -> (d_out,)


class MemberOptimizers:
    """Every member's own PyTorch optimizer, each stepping its views into the stacks.

    Each member gets exactly the optimizer :func:`~trainer.fit` would build for it
    (:func:`~trainer._optim.build_optimizer`: its class, learning rate, betas, momentum,
    Nesterov, coupled or decoupled weight decay on weights only, the fused kernel) over
    parameters that alias its rows of the stacked tensors, so an update writes straight into the
    stack with no copy. After the pack's one backward pass, each member's gradients are views of
    the stacked gradients. One fused step per member reads and writes each tensor once: on a CPU
    core the elementwise rewrite of Adam over the whole stack (:class:`StackedOptimizer`, about
    ten passes over memory) took about three times as long (2.0 ms against 0.7 ms a step for
    eight 784-64-10 members, of which 0.3 ms is the fused kernels and the rest Python).

    Args:
        params: the stacked parameters.
        hps: each member's resolved hyperparameters, in row order.
    """

    def __init__(self, params: list[StackedTensor], hps: Sequence[Mapping[str, Any]]) -> None:
        self.params = params
        self.views = [_MemberView(params, row) for row in range(len(hps))]
        self.optimizers = [build_optimizer(v, hp) for v, hp in zip(self.views, hps, strict=True)]

    def select(self, keep: Sequence[int]) -> None:
        """Keep the members at rows ``keep`` of the already-shrunk stacks."""
        self.views = [self.views[row] for row in keep]
        self.optimizers = [self.optimizers[row] for row in keep]
        for row, view in enumerate(self.views):
            view.point_at(self.params, row)

    def step(self) -> None:
        """One update of every member from the stacked gradients."""
        for row, (view, optimizer) in enumerate(zip(self.views, self.optimizers, strict=True)):
            for member, p in zip(view.tensors, self.params, strict=True):
                grad = p.value.grad
                member.grad = None if grad is None else _member_slice(p, grad, row)
            optimizer.step()

    def zero_grad(self) -> None:
        for p in self.params:
            p.value.grad = None


class StackedOptimizer:
    """SGD (momentum, Nesterov) or Adam written once over the stacks, every coefficient per member.

    For CUDA: a step is about ten elementwise kernels for the whole pack, where
    :class:`MemberOptimizers` launches each member's own (and pays Python's overhead per
    member), which for 32 small members would cost more than their forward and backward passes.
    It follows PyTorch's ``SGD``, ``Adam`` and ``AdamW`` update rules term for term (tested
    against them on the CPU).

    Args:
        params: the stacked parameters it updates.
        kind: ``"sgd"`` or ``"adam"`` (``adamw`` is Adam with decoupled decay).
        lrs: each member's initial learning rate.
        hyper: per-member vectors ``(K,)``: ``momentum``, ``nesterov`` (0/1), ``beta1``,
            ``beta2``, ``eps``, ``coupled_wd`` (an L2 gradient term, PyTorch's
            ``weight_decay``), ``decoupled_wd`` (``w -= lr * wd * w`` before the update, as
            AdamW and :func:`~trainer._penalties.decoupled_decay_`).

    ``optimizers`` holds one stand-in per member whose ``param_groups[0]["lr"]`` its
    :class:`~trainer._optim.LrSchedule` sets, as with :class:`MemberOptimizers`.
    """

    def __init__(
        self,
        params: list[StackedTensor],
        kind: str,
        hyper: dict[str, torch.Tensor],
        lrs: Sequence[float],
    ) -> None:
        if kind not in ("sgd", "adam"):
            raise ValueError(f"packed optimizer must be 'sgd' or 'adam'; got {kind!r}")
        self.params, self.kind, self.hyper = params, kind, hyper
        self.optimizers = [_OneGroup(float(lr)) for lr in lrs]
        self._lrs: list[float] = []  # the rates self._lr holds
        self._lr = torch.empty(0)
        self.state: list[dict[str, torch.Tensor]] = [{} for _ in params]
        self.steps = 0
        self._read_flags()

    def _read_flags(self) -> None:
        # Terms that are 0 for every member cost nothing: each is a full pass over memory. Read
        # once here, not per step, where it would make the host wait for the GPU.
        h = self.hyper
        self.decoupled = bool((h["decoupled_wd"] > 0).any())
        self.coupled = bool((h["coupled_wd"] > 0).any())
        self.nesterov = bool((h["nesterov"] > 0).any())

    def select(self, rows: Sequence[int]) -> None:
        """Keep the members at ``rows``: the hyperparameters and every state tensor shrink."""
        self.optimizers = [self.optimizers[row] for row in rows]
        keep = torch.tensor(list(rows), device=self.hyper["beta1"].device)
        self.hyper = {k: v.index_select(0, keep) for k, v in self.hyper.items()}
        for p, state in zip(self.params, self.state, strict=True):
            for name, value in state.items():
                state[name] = value.index_select(p.member_dim, keep)
        self._read_flags()

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter, at each member's current learning rate."""
        self.steps += 1
        h = self.hyper
        lrs = [o.param_groups[0]["lr"] for o in self.optimizers]
        if lrs != self._lrs:  # a new tensor (a host-to-device copy) only when a rate changed
            self._lrs, self._lr = lrs, member_vector(lrs, h["beta1"].device)
        lr = self._lr
        decoupled, coupled, nesterov = self.decoupled, self.coupled, self.nesterov
        if self.kind == "adam":  # bias corrections, once per step for all tensors
            t = self.steps
            step_size = lr / (1.0 - h["beta1"] ** t)
            correction2_sqrt = (1.0 - h["beta2"] ** t).sqrt()
        for p, state in zip(self.params, self.state, strict=True):
            w, g = p.value, p.value.grad
            if g is None:
                continue
            if p.decays and decoupled:
                w.mul_(1.0 - p.per_member(lr * h["decoupled_wd"]))
            if p.decays and coupled:
                g.addcmul_(w, p.per_member(h["coupled_wd"]))  # the gradient is ours to change
            if self.kind == "sgd":
                momentum = p.per_member(h["momentum"])
                if "buf" not in state:
                    state["buf"] = g.clone()  # PyTorch's first step: the buffer is the gradient
                else:
                    state["buf"].mul_(momentum).add_(g)
                buf = state["buf"]
                if nesterov:
                    g = torch.where(p.per_member(h["nesterov"]) > 0, g.addcmul_(momentum, buf), buf)
                else:
                    g = buf
                w.sub_(g * p.per_member(lr))
            else:
                if "m" not in state:
                    state["m"], state["v"] = torch.zeros_like(w), torch.zeros_like(w)
                m, v = state["m"], state["v"]
                m.lerp_(g, p.per_member(1.0 - h["beta1"]))
                v.lerp_(g.square_(), p.per_member(1.0 - h["beta2"]))
                denom = v.sqrt().div_(p.per_member(correction2_sqrt)).add_(p.per_member(h["eps"]))
                w.sub_(m.div(denom).mul_(p.per_member(step_size)))

    def zero_grad(self) -> None:
        for p in self.params:
            p.value.grad = None


class _OneGroup:
    """What :class:`~trainer._optim.LrSchedule` drives: one group holding one member's rate."""

    def __init__(self, lr: float) -> None:
        self.param_groups = [{"lr": lr}]


def keep_probabilities(rates: Sequence[float], device: torch.device) -> torch.Tensor | None:
    """``1 - rate`` per member, or ``None`` when no member drops anything."""
    if not any(r > 0 for r in rates):
        return None
    return torch.tensor([1.0 - r for r in rates], device=device)


def member_vector(values: Sequence[float], device: torch.device) -> torch.Tensor:
    """A float32 vector of per-member values on ``device``."""
    return torch.tensor([float(v) for v in values], dtype=torch.float32, device=device)
