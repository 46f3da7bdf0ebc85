"""Ranger: the optimiser the official SSERD training uses (``--optim_name ranger``, its default).

RAdam (Adam with the variance rectification of Liu et al. 2020: plain momentum SGD while the
second-moment estimate is unreliable, i.e. while the approximated SMA length ρ_t ≤ 5) +
Lookahead (every ``k`` = 6 steps the weights move to ``slow + α·(fast − slow)``, α = 0.5) +
gradient centralisation (the mean over all but the first axis is removed from the gradient of
every parameter with more than one axis). Defaults are the official ones (``training/ranger.py``,
from pSp / StyleGANEX): betas (0.95, 0.999), eps 1e-5, no weight decay.

The state (step, both moments, the slow weights) lives in ``optimizer.state``, so it is saved
and restored with the optimizer's ``state_dict`` (``accelerator.save_state``).
"""

from __future__ import annotations

import math

import torch


class Ranger(torch.optim.Optimizer):
    """RAdam + Lookahead + gradient centralisation (see the module doc)."""

    def __init__(self, params, lr: float = 1e-3, alpha: float = 0.5, k: int = 6, sma_threshold: float = 5.0,
                 betas=(0.95, 0.999), eps: float = 1e-5, weight_decay: float = 0.0, centralize: bool = True):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"Lookahead alpha must be in [0, 1], got {alpha}")
        if k < 1:
            raise ValueError(f"Lookahead k must be >= 1, got {k}")
        if lr <= 0 or eps <= 0:
            raise ValueError(f"lr and eps must be positive, got {lr}, {eps}")
        defaults = dict(lr=lr, alpha=alpha, k=int(k), sma_threshold=sma_threshold, betas=tuple(betas), eps=eps,
                        weight_decay=weight_decay, centralize=centralize)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr = group["lr"]
            rho_inf = 2.0 / (1.0 - beta2) - 1.0
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("Ranger does not support sparse gradients")
                grad = p.grad.float()
                if group["centralize"] and grad.dim() > 1:
                    grad = grad - grad.mean(dim=tuple(range(1, grad.dim())), keepdim=True)
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, dtype=torch.float32)
                    state["exp_avg_sq"] = torch.zeros_like(p, dtype=torch.float32)
                    state["slow"] = p.detach().clone()
                state["step"] += 1
                t = state["step"]
                m, v = state["exp_avg"], state["exp_avg_sq"]
                v.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
                m.mul_(beta1).add_(grad, alpha=1.0 - beta1)
                beta2_t = beta2 ** t
                rho_t = rho_inf - 2.0 * t * beta2_t / (1.0 - beta2_t)
                w = p.detach().float().clone()
                if group["weight_decay"]:
                    w.mul_(1.0 - group["weight_decay"] * lr)
                if rho_t > group["sma_threshold"]:  # variance is tractable: rectified Adam step
                    rect = math.sqrt((1.0 - beta2_t) * (rho_t - 4.0) / (rho_inf - 4.0) * (rho_t - 2.0) / rho_t
                                     * rho_inf / (rho_inf - 2.0))
                    w.addcdiv_(m, v.sqrt().add_(group["eps"]), value=-lr * rect / (1.0 - beta1 ** t))
                else:  # early steps: bias-corrected momentum only
                    w.add_(m, alpha=-lr / (1.0 - beta1 ** t))
                p.copy_(w)
                if t % group["k"] == 0:  # Lookahead: pull the slow weights towards the fast ones, restart from there
                    slow = state["slow"]
                    slow.add_(p - slow, alpha=group["alpha"])
                    p.copy_(slow)
        return loss
