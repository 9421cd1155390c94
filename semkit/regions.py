"""Robust regions: the search driver and its methods.

A region method is an object (:class:`RegionMethod`, in the spirit of
foolbox's attacks): it declares its name, display name and colour, the
points it queries per step and whether it needs gradients, and runs a
search over all starts that proposes, each step, the points it wants f
at. :func:`find_regions` drives any number of methods together: every step
batches the proposals of all starts and all methods into one call of f
(and one of ``f.gradient`` where a method needs gradients and f has its
own), then hands each search its values. A new method plugs in without
touching the driver, the plots or the studies (:func:`register`).

The paper's three methods (Hamdi & Ghanem, as stated in
reference/ALGORITHMS.md) are :class:`Naive` (grow where f is high, pay for
size), :class:`OIRB` (outer-inner ratio, values of f only) and :class:`OIRW`
(outer-inner ratio, values and gradients): boxes grown by gradient flow on
their bounds, for any dimension n. How far each step goes is a step rule:
:class:`FaithfulSteps` takes the paper's plain gradient steps;
:class:`AdaptiveSteps` follows the same flow to the same horizon in fewer,
longer steps (exact in log-width while a box is small, limited by a trust
region and a secant estimate of the flow's stiffness once it is not),
reaching the same boxes with a fraction of the queries (docs/benchmarks.md).
Their state is typed (:class:`FlowState`, :class:`AdaptiveState`) and saved
whole, so an interrupted search resumes exactly as if uninterrupted.

A periodic parameter (azimuth) lets a box cross its period: bounds are kept
unwrapped (a < 0 or b > 360 allowed, width at most the period) and f is
evaluated at the wrapped angle. Bounded parameters are clipped to the Space.

The results are labeled: an ``xarray.Dataset`` over ``start``,
``algorithm`` and ``param``; :func:`srvr` turns them into the paper's
robustness number and :func:`check_regions` holds them against a dense map.
"""

from __future__ import annotations

import inspect
import io
import json
import os
import sys
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable, ClassVar, NamedTuple, Sequence

import numpy as np
import xarray as xr

from ._store import check_format, fingerprint, locked, matching, refuse, versioned, write_bytes, write_dataset
from .criterion import Criterion
from .semantic import (Evaluation, PlainFunction, ScoreFunction, as_function, difference_points, difference_quotients,
                       store_identity)
from .space import Space, recorded_space

#: The paper's methods, by name.
ALGORITHMS = ("naive", "oir_b", "oir_w")
STEP_RULES = ("faithful", "adaptive")


@dataclass(frozen=True)
class Hyper:
    """Hyper-parameters (defaults: the paper's)."""

    learning_rate: float = 0.1  #: gradient step (faithful rule)
    alpha: float = 0.05  #: outer box margin, as a fraction of the width (OIR)
    beta: float = 0.0009  #: first-order expansion weight (OIR_W)
    lam: float = 0.1  #: size penalty (naive): L = -integral of f + lam/2 |r|^2
    start_width: float = 1e-5  #: the box starts as [u0 - start_width, u0 + start_width]
    epsilon: float = 1e-5  #: smallest width kept by the repair
    fd_step: float = 0.5  #: central-difference step for gradients of plain callables (OIR_W)
    score_floor: float = 1e-6  #: OIR_W: scores are floored here in grad(-log f) = -grad f / f
    max_move: float = 0.1  #: adaptive rule: largest move of a bound per step, as a fraction of the width ...
    min_move: float = 1e-3  #: ... or of the parameter's range, whichever is larger
    max_leap: float = 64.0  #: adaptive rule: most faithful iterations covered by one step
    max_log_growth: float = 0.1  #: adaptive rule: largest change of log-width per step

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{f.name} must be positive, got {value!r}")


def corner_masks(n: int) -> np.ndarray:
    """M [n, 2^n]: column k holds the bits of k (bit i belongs to dimension i)."""
    return ((np.arange(2**n)[None, :] >> np.arange(n)[:, None]) & 1).astype(float)


def corners(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Corners [K, 2^n, n] of boxes [K, n]."""
    M = corner_masks(a.shape[-1])
    return a[:, None, :] + M.T[None] * (b - a)[:, None, :]


# ------------------------------------------------------- the method interface
class Proposal(NamedTuple):
    """The points a search wants this step: f at ``values`` [P, n], the gradient of f at ``gradients`` [G, n]."""

    values: np.ndarray
    gradients: np.ndarray


class Search(ABC):
    """One method's search over all starts: owns its per-start state, proposes points, takes their values."""

    @property
    @abstractmethod
    def active(self) -> np.ndarray:
        """[K] which starts still search."""

    @abstractmethod
    def propose(self) -> Proposal:
        """The points this step needs (points may lie outside the Space: the driver wraps and clips them)."""

    @abstractmethod
    def update(self, values: np.ndarray, gradients: np.ndarray, gradient_cost: float,
               evaluation: Evaluation | None = None) -> None:
        """Take f at the proposed points (and its gradients, each having cost ``gradient_cost`` queries); for a
        method that ``needs_classes``, also f's evaluation there (its top classes; None: f gives scores only)."""

    @abstractmethod
    def state(self) -> dict[str, np.ndarray]:
        """The whole state as arrays (for a checkpoint)."""

    @abstractmethod
    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Continue from :meth:`state`'s arrays."""

    @abstractmethod
    def result(self) -> dict[str, np.ndarray]:
        """Final boxes and traces: ``lower``/``upper`` [K, n], ``lower_trace``/``upper_trace`` [T, K, n],
        ``loss`` [T, K], ``queries``, ``converged``, ``iterations`` [K]; optionally ``start_passes`` [K] and
        ``extra``, more per-start variables by name ([K] each; NaN for the methods without them)."""


class RegionMethod(ABC):
    """A way to grow a region around each start (see the module docstring).

    Class attributes say what plots and studies need: ``name`` (as in the
    results' ``algorithm`` coordinate), ``label`` (for legends), ``color``,
    ``needs_gradient``, ``needs_classes`` (it judges its points by a
    criterion on classes: it gets f's evaluation there, and
    :meth:`for_function` binds it to f's true class and needs ``criterion.k``
    top classes). :meth:`queries_per_step` declares the points one
    box costs per step; :meth:`describe` the settings that determine its
    results (stores are matched on them).
    """

    name: ClassVar[str]
    label: ClassVar[str]
    color: ClassVar[str] = "tab:gray"
    needs_gradient: ClassVar[bool] = False
    needs_classes: ClassVar[bool] = False

    @abstractmethod
    def queries_per_step(self, n: int) -> int:
        """Points of f (gradient points included, each as one) that one box costs per step in n dimensions."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Name and settings, as plain values."""

    @abstractmethod
    def search(self, space: Space, starts: np.ndarray, iterations: int) -> Search:
        """A fresh search from ``starts`` [K, n] of at most ``iterations`` steps."""

    def for_function(self, fn: ScoreFunction) -> "RegionMethod":
        """This method as it runs on ``fn`` (a method with a criterion takes f's true class); itself by default."""
        return self

    @property
    def top_classes(self) -> int:
        """How many top classes its evaluations need (methods with a criterion: the criterion's k)."""
        criterion = getattr(self, "criterion", None)
        return criterion.k if criterion is not None else 1


# --------------------------------------------------------------- step rules
@dataclass
class FlowState:
    """The boxes of one gradient-flow search, one row per start (saved and restored whole)."""

    a: np.ndarray  #: [K, n] lower bounds (periodic ones unwrapped)
    b: np.ndarray  #: [K, n] upper bounds
    t: np.ndarray  #: () steps taken by the search
    lower_trace: np.ndarray  #: [T, K, n]
    upper_trace: np.ndarray
    loss_trace: np.ndarray  #: [T, K]
    queries: np.ndarray  #: [K]
    active: np.ndarray  #: [K]
    converged: np.ndarray  #: [K]
    steps_taken: np.ndarray  #: [K]
    still: np.ndarray  #: [K] consecutive steps that moved less than tol

    @classmethod
    def initial(cls, a: np.ndarray, b: np.ndarray, iterations: int) -> "FlowState":
        K, n = a.shape
        return cls(a=a, b=b, t=np.array(0), lower_trace=np.full((iterations, K, n), np.nan),
                   upper_trace=np.full((iterations, K, n), np.nan), loss_trace=np.full((iterations, K), np.nan),
                   queries=np.zeros(K, np.int64), active=np.ones(K, bool), converged=np.zeros(K, bool),
                   steps_taken=np.zeros(K, np.int64), still=np.zeros(K, np.int64),
                   **cls._extra(K, n))

    @classmethod
    def _extra(cls, K: int, n: int) -> dict[str, np.ndarray]:
        return {}

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "FlowState":
        return cls(**{f.name: np.array(arrays[f.name]) for f in fields(cls)})


@dataclass
class AdaptiveState(FlowState):
    """:class:`FlowState` plus what the adaptive rule remembers between steps."""

    elapsed: np.ndarray  #: [K] faithful iterations covered so far
    position: np.ndarray  #: [K, 2n] the bounds at the last step
    velocity: np.ndarray  #: [K, 2n] and their velocities

    @classmethod
    def _extra(cls, K: int, n: int) -> dict[str, np.ndarray]:
        return {"elapsed": np.zeros(K), "position": np.full((K, 2 * n), np.nan), "velocity": np.zeros((K, 2 * n))}


class StepRule(ABC):
    """How far a gradient-flow search moves its bounds per step, and when a box stops."""

    name: ClassVar[str]
    state_type: ClassVar[type[FlowState]] = FlowState

    def __init__(self, tol: float | None = None) -> None:
        self.tol = tol

    @abstractmethod
    def advance(self, st: FlowState, ga, gb, space: Space, hyper: Hyper, iterations: int):
        """New bounds (before repair) of every box from its loss gradients, and which boxes settled (or None);
        may update the rule's own part of the state."""

    @abstractmethod
    def stop(self, st: FlowState, moved: np.ndarray, iterations: int, settled: np.ndarray | None) -> None:
        """Mark converged and active boxes after a step (``moved``: largest bound move per box)."""


class FaithfulSteps(StepRule):
    """The paper's plain gradient steps (learning rate ``learning_rate``); with ``tol``, a box stops once
    its bounds moved less than ``tol`` for two steps."""

    name = "faithful"

    def advance(self, st, ga, gb, space, hyper, iterations):
        return st.a - hyper.learning_rate * ga, st.b - hyper.learning_rate * gb, None

    def stop(self, st, moved, iterations, settled) -> None:
        if self.tol is not None:
            st.still = np.where(moved < self.tol, st.still + 1, 0)
            st.converged |= st.active & (st.still >= 2)


class AdaptiveSteps(StepRule):
    """The faithful flow to the same horizon in fewer, longer steps; a box stops once its remaining motion
    would be under ``tol`` (default: 1e-3 of the Space's smallest range)."""

    name = "adaptive"
    state_type = AdaptiveState

    def advance(self, st: AdaptiveState, ga, gb, space, hyper, iterations):
        """Advance the faithful flow by k iterations at once, k as large as the limits allow.

        Integrates da = -lr dL/da, db = -lr dL/db in the box's centre and
        log-width, where the early, geometric growth of a box is linear (a
        large step there is exact). k is limited so that no bound moves more
        than ``max_move`` of the box's width or ``min_move`` of the
        parameter's range (whichever is larger), no width changes by more than
        a factor exp(``max_log_growth``), and no bound overshoots the point
        where its velocity vanishes (a secant estimate of the flow's
        stiffness from the last two steps). A box is settled when, at its
        current rates, all its remaining iterations would move it less than
        ``tol``.
        """
        h, a, b = hyper, st.a, st.b
        tol = self.tol if self.tol is not None else 1e-3 * float(space.widths.min())
        remaining = iterations - st.elapsed
        velocity = -h.learning_rate * np.concatenate([ga, gb], axis=-1)  # per faithful iteration
        # a bound held at the edge of a bounded parameter does not move, whatever its gradient says
        n = a.shape[-1]
        periodic = space.periodic
        held = np.concatenate(
            [~periodic & (a <= space.lower) & (velocity[..., :n] < 0), ~periodic & (b >= space.upper) & (velocity[..., n:] > 0)],
            axis=-1,
        )
        velocity = np.where(held, 0.0, velocity)
        va, vb = velocity[..., :n], velocity[..., n:]
        r = b - a
        half = r / 2
        centre_rate = (va + vb) / 2
        log_rate = (vb - va) / r
        allowed = np.maximum(h.max_move * r, h.min_move * space.widths)  # [K, n]
        grow_limit = np.minimum(np.log1p(allowed / half), h.max_log_growth) / np.maximum(np.abs(log_rate), 1e-300)
        shift_limit = allowed / np.maximum(np.abs(centre_rate), 1e-300)
        # stiffness: v ~ -kappa (x - x*) along each bound; a leap of 1/kappa lands on x*
        position = np.concatenate([a, b], axis=-1)
        dx, dv = position - st.position, velocity - st.velocity
        with np.errstate(divide="ignore", invalid="ignore"):
            kappa = np.where(np.abs(dx) > 1e-9, -dv / dx, 0.0)
        stiff_limit = np.where(kappa > 0, 1.0 / np.where(kappa > 0, kappa, 1.0), np.inf).min(-1)
        leap = np.minimum(np.minimum(grow_limit, shift_limit).min(-1), np.minimum(stiff_limit, h.max_leap))
        leap = np.clip(np.minimum(leap, remaining), 0.0, None)
        leap = np.where(remaining >= 1, np.maximum(leap, 1.0), leap)
        rest = np.maximum(remaining, 0.0)[..., None]
        future = np.abs(centre_rate) * rest + half * np.abs(np.expm1(np.clip(rest * log_rate, None, 50.0)))
        settled = (future < tol).all(-1)
        leap = np.where(settled, rest[..., 0], leap)  # a settled box makes its remaining (tiny) motion at once
        k = leap[..., None]
        small = (r < h.min_move * space.widths) | settled[..., None]  # geometric: exact in log-width
        centre = (a + b) / 2 + k * centre_rate
        new_half = np.where(small, half * np.exp(np.clip(k * log_rate, None, 50.0)), half + k * half * log_rate)
        st.position, st.velocity = position, velocity
        st.elapsed = st.elapsed + np.where(st.active, leap, 0.0)
        return centre - new_half, centre + new_half, settled

    def stop(self, st: AdaptiveState, moved, iterations, settled) -> None:
        st.converged |= st.active & settled
        st.active = st.active & (st.elapsed < iterations - 1e-9)


def step_rule(rule: "str | StepRule", tol: float | None = None) -> StepRule:
    """A step rule by name ("faithful", "adaptive") or as given."""
    if isinstance(rule, StepRule):
        return rule
    rules = {r.name: r for r in (FaithfulSteps, AdaptiveSteps)}
    if rule not in rules:
        raise ValueError(f"unknown step_rule {rule!r}; choose from {STEP_RULES}")
    return rules[rule](tol)


# ------------------------------------------------------- gradient-flow boxes
class BoxFlow(RegionMethod):
    """A box per start grown by a step rule on the gradients of a loss of its bounds (the paper's methods)."""

    def __init__(self, hyper: Hyper = Hyper(), rule: "str | StepRule" = "faithful", tol: float | None = None) -> None:
        self.hyper, self.rule = hyper, step_rule(rule, tol)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "step_rule": self.rule.name, "tol": self.rule.tol, "hyper": asdict(self.hyper)}

    def search(self, space: Space, starts: np.ndarray, iterations: int) -> "FlowSearch":
        return FlowSearch(self, space, starts, iterations)

    @abstractmethod
    def plan(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Value points [K, P, n] and gradient points [K, G, n] of boxes [K, n]."""

    @abstractmethod
    def gradients(self, a, b, values: np.ndarray, grads: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """dL/da, dL/db [K, n] and the loss [K] from f at the planned points ([K, P]) and gradients ([K, G, n])."""


class FlowSearch(Search):
    """A :class:`BoxFlow` method's boxes under its step rule."""

    def __init__(self, method: BoxFlow, space: Space, starts: np.ndarray, iterations: int) -> None:
        self.method, self.space, self.iterations = method, space, iterations
        w = method.hyper.start_width
        self.st = method.rule.state_type.initial(*self._repair(starts - w, starts + w), iterations)
        self._idx = np.empty(0, int)

    @property
    def active(self) -> np.ndarray:
        return self.st.active

    def propose(self) -> Proposal:
        st = self.st
        t = int(st.t)
        st.lower_trace[t] = np.where(st.active[:, None], st.a, np.nan)
        st.upper_trace[t] = np.where(st.active[:, None], st.b, np.nan)
        self._idx = np.flatnonzero(st.active)
        values, grads = self.method.plan(st.a[self._idx], st.b[self._idx])
        n = self.space.n
        return Proposal(values.reshape(-1, n), grads.reshape(-1, n))

    def update(self, values: np.ndarray, gradients: np.ndarray, gradient_cost: float,
               evaluation: Evaluation | None = None) -> None:
        st, h, idx = self.st, self.method.hyper, self._idx
        K, n = st.a.shape
        ga, gb = np.zeros((K, n)), np.zeros((K, n))
        if len(idx):
            P, G = len(values) // len(idx), len(gradients) // len(idx)
            grads = gradients.reshape(len(idx), G, n) if G else None
            ga[idx], gb[idx], loss = self.method.gradients(st.a[idx], st.b[idx], values.reshape(len(idx), P), grads)
            st.loss_trace[int(st.t), idx] = loss
            st.queries[idx] += P + int(round(G * gradient_cost))
        new_a, new_b, settled = self.method.rule.advance(st, ga, gb, self.space, h, self.iterations)
        active = st.active[:, None]
        new_a, new_b = self._repair(np.where(active, new_a, st.a), np.where(active, new_b, st.b))
        moved = np.maximum(np.abs(new_a - st.a).max(-1), np.abs(new_b - st.b).max(-1))
        st.a, st.b = new_a, new_b
        st.steps_taken = st.steps_taken + st.active
        self.method.rule.stop(st, moved, self.iterations, settled)
        st.active = st.active & ~st.converged
        st.t = np.array(int(st.t) + 1)

    def state(self) -> dict[str, np.ndarray]:
        return self.st.arrays()

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.st = type(self.st).from_arrays(arrays)

    def result(self) -> dict[str, np.ndarray]:
        st = self.st
        return {"lower": st.a, "upper": st.b, "lower_trace": st.lower_trace, "upper_trace": st.upper_trace,
                "loss": st.loss_trace, "queries": st.queries, "converged": st.converged, "iterations": st.steps_taken}

    def _repair(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Clip bounded parameters and keep b >= a + epsilon; periodic ones stay unwrapped, width <= period."""
        eps = self.method.hyper.epsilon
        lo, hi, per = self.space.lower, self.space.upper, self.space.periodic
        period = np.where(per, self.space.widths, np.inf)
        a = np.where(per, a, np.clip(a, lo, hi))
        b = np.where(per, b, np.clip(b, lo, hi))
        b = np.maximum(b, a + eps)
        a = np.where(~per & (b > hi), hi - eps, a)
        b = np.where(~per, np.minimum(b, hi), b)
        # periodic: at most one period wide, and the lower bound in [low, high) (the same box, re-labelled)
        wide = per & (b - a > period)
        centre = (a + b) / 2
        a = np.where(wide, centre - period / 2, a)
        b = np.where(wide, centre + period / 2, b)
        shift = np.where(per, np.floor((a - lo) / np.where(per, period, 1.0)) * np.where(per, period, 0.0), 0.0)
        return a - shift, b - shift


def _no_points(K: int, n: int) -> np.ndarray:
    return np.empty((K, 0, n))


class Naive(BoxFlow):
    """The naive method: maximise the integral of f over the box, penalised by its size (lam/2 |r|^2)."""

    name, label, color = "naive", "naive", "tab:green"

    def queries_per_step(self, n: int) -> int:
        return 2**n

    def plan(self, a, b):
        return corners(a, b), _no_points(*a.shape)

    def gradients(self, a, b, values, grads):
        K, n = a.shape
        M = corner_masks(n)
        r = b - a
        c = (np.prod(r, axis=1) / 2**n)[:, None]  # |D| / 2^n
        lam = self.hyper.lam
        ga = 2 * c * (values @ (1.0 - M).T) / r - lam * r
        gb = -2 * c * (values @ M.T) / r + lam * r
        return ga, gb, -c[:, 0] * values.sum(1) + lam / 2 * (r**2).sum(1)


class OIRB(BoxFlow):
    """Outer-inner ratio, black-box: f at the corners of the box and of a box ``alpha`` wider."""

    name, label, color = "oir_b", "OIR_B", "tab:orange"

    def queries_per_step(self, n: int) -> int:
        return 2 * 2**n

    def plan(self, a, b):
        margin = self.hyper.alpha / 2 * (b - a)
        return np.concatenate([corners(a, b), corners(a - margin, b + margin)], axis=1), _no_points(*a.shape)

    def gradients(self, a, b, values, grads):
        K, n = a.shape
        C = 2**n
        f_inner, f_outer = values[:, :C], values[:, C:]
        M = corner_masks(n)
        Mbar = 1.0 - M
        r = b - a
        c = (np.prod(r, axis=1) / C)[:, None]
        alpha = self.hyper.alpha
        q = (1 + alpha) ** (n - 1)
        Q = q * ((1 + alpha / 2) * M + (alpha / 2) * Mbar)
        Qbar = q * ((1 + alpha / 2) * Mbar + (alpha / 2) * M)
        ga = 2 * c / r * (2 * f_inner @ Mbar.T - f_outer @ Qbar.T)
        gb = 2 * c / r * (-2 * f_inner @ M.T + f_outer @ Q.T)
        return ga, gb, c[:, 0] * ((1 + alpha) ** n * f_outer.sum(1) - 2 * f_inner.sum(1))


class OIRW(BoxFlow):
    """Outer-inner ratio, white-box: f and its gradient at the corners (a first-order expansion, weight ``beta``)."""

    name, label, color = "oir_w", "OIR_W", "tab:purple"
    needs_gradient = True

    def queries_per_step(self, n: int) -> int:
        return 2 * 2**n

    def plan(self, a, b):
        inner = corners(a, b)
        return inner, inner

    def gradients(self, a, b, values, grads):
        G = -grads / np.maximum(values, self.hyper.score_floor)[..., None]  # gradient of -log f
        return self.neg_log_gradients(a, b, values, G)

    def neg_log_gradients(self, a, b, f_inner, G):
        """The step from f [K, 2^n] and the gradient of -log f [K, 2^n, n] at the corners."""
        K, n = a.shape
        M = corner_masks(n)
        Mbar = 1.0 - M
        r = b - a
        c = (np.prod(r, axis=1) / 2**n)[:, None]
        alpha, beta = self.hyper.alpha, self.hyper.beta
        M_D = (2 - (2 * n - 1) * beta) * M - beta * Mbar
        Mbar_D = (2 - (2 * n - 1) * beta) * Mbar - beta * M
        g_lo = np.einsum("jc,kcj->kj", Mbar, G)
        g_hi = np.einsum("jc,kcj->kj", M, G)
        off = 1.0 - np.eye(n)  # i != j
        t_lo = np.einsum("ic,jc,kci->kji", Mbar - M, Mbar, G)
        t_hi = np.einsum("ic,jc,kci->kji", M - Mbar, M, G)
        s_lo = np.einsum("kji,ji,ki->kj", t_lo, off, r) / r
        s_hi = np.einsum("kji,ji,ki->kj", t_hi, off, r) / r
        ga = c * (f_inner @ Mbar_D.T / r + beta * g_lo + beta * s_lo)
        gb = c * (-f_inner @ M_D.T / r + beta * g_hi + beta * s_hi)
        # The outer-inner ratio, with f at the outer corners from the same first-order
        # expansion (grad f = -f grad(-log f)); no extra queries.
        offset = (alpha / 2) * r[:, None, :] * (2 * M.T[None] - 1)  # outer corner - inner corner
        f_outer_est = f_inner * (1 - np.einsum("kcj,kcj->kc", G, offset))
        loss = (1 + alpha) ** n * f_outer_est.sum(1) / np.maximum(f_inner.sum(1), 1e-12) - 1
        return ga, gb, loss


#: Region methods by name: find_regions, plots and studies accept these names.
METHODS: dict[str, type[RegionMethod]] = {}


def register(cls: type[RegionMethod]) -> type[RegionMethod]:
    """Make a method known by its ``name`` (usable as a decorator)."""
    METHODS[cls.name] = cls
    return cls


for _cls in (Naive, OIRB, OIRW):
    register(_cls)


def method(spec: "str | RegionMethod", **options: Any) -> RegionMethod:
    """A region method by name (with those of ``options`` its constructor takes), or the object itself."""
    if isinstance(spec, RegionMethod):
        return spec
    if spec not in METHODS:
        raise ValueError(f"unknown algorithm {spec!r}; choose from {tuple(METHODS)}")
    cls = METHODS[spec]
    return cls(**{k: v for k, v in options.items() if k in _options(cls)})


def _options(cls: type[RegionMethod]) -> set[str]:
    """The keyword options a method's constructor takes."""
    return set(inspect.signature(cls).parameters)


def style(name: str, index: int = 0) -> tuple[str, str]:
    """Display name and colour of a method by its name (a method semkit does not know: the name and colour C<index>)."""
    cls = METHODS.get(name)
    return (cls.label, cls.color) if cls is not None else (name, f"C{index}")


def loss_gradients(
    algorithm: str,
    a: np.ndarray,
    b: np.ndarray,
    f_inner: np.ndarray,
    f_outer: np.ndarray | None = None,
    grad_neg_log: np.ndarray | None = None,
    hyper: Hyper = Hyper(),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dL/da, dL/db [K, n] and the loss [K] of K boxes of one of the paper's methods, as in ALGORITHMS.md.

    f_inner [K, 2^n]: f at the corners of D = [a, b]; f_outer [K, 2^n]: f at
    the corners of the outer box E (oir_b); grad_neg_log [K, 2^n, n]: the
    gradient of -log f at the corners of D (oir_w).
    """
    m = method(algorithm, hyper=hyper)
    if isinstance(m, OIRW):
        return m.neg_log_gradients(a, b, f_inner, grad_neg_log)
    values = f_inner if f_outer is None else np.concatenate([f_inner, f_outer], axis=1)
    return m.gradients(a, b, values, None)


# --------------------------------------------------------------- the driver
def find_regions(
    f: Callable[[np.ndarray], Any],
    starts: Any,
    algorithms: Sequence["str | RegionMethod"] = ALGORITHMS,
    space: Space | None = None,
    iterations: int = 600,
    tol: float | None = None,
    *,
    step_rule: str = "faithful",
    criterion: Criterion | str | None = None,
    store: str | os.PathLike | None = None,
    key: str | None = None,
    progress: bool = True,
    **hyper: Any,
) -> xr.Dataset:
    """Grow a region around each start with each method.

    ``f`` maps points [B, n] to scores [B]; gradients (OIR_W) come from
    ``f.gradient`` when f has one (autograd through a differentiable
    renderer, else what f itself does) and central differences of f
    otherwise. ``starts`` are points of ``space`` (default ``f.space``).
    ``algorithms``: names ("naive", "oir_b", "oir_w") or
    :class:`RegionMethod` objects. Names are built with ``step_rule``,
    ``tol`` and the hyper-parameters (:class:`Hyper`): ``iterations`` steps
    are taken (faithfully, with the paper's defaults); with ``tol``, a box
    stops when its bounds move less than ``tol`` for two steps.
    ``step_rule="adaptive"`` follows the same gradient flow to the same
    horizon in fewer, larger steps, and stops a box once its remaining
    motion would be under ``tol`` (default 1e-3 of the smallest range).
    ``"verified"`` grows boxes with a guarantee (:class:`semkit.trust.Verified`)
    under ``criterion`` (a :class:`~semkit.Criterion` or its name; default
    top-1 correct, ``threshold=t`` for score >= t); its options
    (``certificate``, ``growth``, ``resolution``, ``confidence``,
    ``max_failure``, ``attempts``, ``max_queries``, ``audit_samples``,
    ``seed``) are passed here as keywords too. The paper's methods have no
    criterion (they follow the score).

    With ``store`` (a ``.nc`` or ``.zarr`` path) the search is kept: its
    state is saved every few seconds and when it is interrupted (Ctrl-C,
    an error), the same call resumes from the last saved step, a finished
    search is read back, and a store made by another function or with
    other settings is refused (a plain callable is recognised by its values
    at 256 fixed probe points, or by ``key``).

    Returns an ``xarray.Dataset`` over ``start``, ``algorithm``, ``param``
    (and ``iteration`` for the traces): ``lower``, ``upper``, ``lower_trace``,
    ``upper_trace``, ``loss``, ``queries``, ``converged``, ``iterations``.
    """
    fn = as_function(f, space, fd_step=hyper.get("fd_step", Hyper.fd_step))
    space = space or fn.space
    if step_rule not in STEP_RULES:
        raise ValueError(f"unknown step_rule {step_rule!r}; choose from {STEP_RULES}")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    specs = [algorithms] if isinstance(algorithms, (str, RegionMethod)) else list(algorithms)
    if not specs:
        raise ValueError(f"no algorithms given; choose from {tuple(METHODS)}")
    paper = {f.name for f in fields(Hyper)}
    if criterion is not None:
        if not any(METHODS[m].needs_classes if isinstance(m, str) and m in METHODS else getattr(m, "needs_classes", False)
                   for m in ([algorithms] if isinstance(algorithms, (str, RegionMethod)) else algorithms)):
            raise ValueError("criterion= judges verified boxes (algorithms=('verified',)); the paper's methods follow "
                             "the score and take no criterion")
        hyper["criterion"] = criterion
    options = {k: v for k, v in hyper.items() if k not in paper}
    taken = set().union(*(_options(METHODS[m]) for m in specs if isinstance(m, str) and m in METHODS))
    if set(options) - taken:
        raise TypeError(f"unknown hyper-parameters or method options {sorted(set(options) - taken)}: the paper's "
                        f"hyper-parameters are {sorted(paper)}")
    h = Hyper(**{k: v for k, v in hyper.items() if k in paper})
    methods = [method(m, hyper=h, rule=step_rule, tol=tol, **options) for m in specs]
    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise ValueError(f"each method may run once per search, got {names}")
    if np.size(starts) == 0:
        raise ValueError(f"no starts given: pass at least one point of the Space {list(space.names)} to grow a region "
                         "from, e.g. [[130, 30]]")
    u0 = space.points(starts)
    driver = _Driver(fn, space, methods, u0, iterations)
    attrs = {"step_rule": step_rule, "tol": tol if tol is not None else "none", **asdict(h)}
    if store is None:
        return driver.run(progress, attrs)
    settings = versioned({"function": store_identity(fn, key), "space": space.to_dict(), "starts": u0.tolist(),
                          "methods": [m.describe() for m in methods], "iterations": iterations,
                          "gradient": driver.gradient_source})
    path = Path(store)
    check_format(path, what="region search's store")
    done = matching(path, settings)
    if done is not None:
        return done
    checkpoint = _Checkpoint(path.with_name(path.name + ".partial.npz"), settings)
    result = driver.run(progress, {**attrs, "fingerprint": checkpoint.fingerprint, "settings": json.dumps(settings)}, checkpoint)
    with locked(path):
        theirs = matching(path, settings)  # another process may have finished it meanwhile
        if theirs is None:
            write_dataset(result, path)
        checkpoint.path.unlink(missing_ok=True)
    return result if theirs is None else theirs


#: Seconds between two saves of a stored region search (it is saved when interrupted too).
CHECKPOINT_SECONDS = 10.0


class _Checkpoint:
    """The saved state of a region search (an .npz written whole, under a unique temporary name, then renamed)."""

    def __init__(self, path: Path, settings: dict[str, Any]) -> None:
        self.path, self.settings, self.fingerprint = path, settings, fingerprint(settings)

    def load(self) -> dict[str, np.ndarray] | None:
        try:
            with np.load(self.path) as data:
                arrays = {k: data[k] for k in data.files}
        except FileNotFoundError:
            return None
        except Exception:  # truncated or damaged: the search starts again
            print(f"{self.path} is damaged; the search starts again", file=sys.stderr)
            return None
        if str(arrays.pop("fingerprint", "")) != self.fingerprint:
            refuse(self.path, None, self.settings)
        return arrays

    def save(self, arrays: dict[str, np.ndarray]) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, fingerprint=np.array(self.fingerprint), **arrays)
        write_bytes(self.path, buffer.getvalue())


class _Driver:
    """Runs the searches of all methods together: one batched call of f (and of f.gradient) per step."""

    def __init__(self, fn: ScoreFunction, space: Space, methods: list[RegionMethod], u0: np.ndarray, iterations: int) -> None:
        methods = [m.for_function(fn) for m in methods]
        self.fn, self.space, self.methods, self.u0, self.iterations = fn, space, methods, u0, iterations
        self.searches = [m.search(space, u0, iterations) for m in methods]
        # a plain callable's differences go into the same batched call as the values
        self.differences = fn.difference_steps if isinstance(fn, PlainFunction) else None
        self.gradient_source = fn.gradient_method if any(m.needs_gradient for m in methods) else "not used"
        self.classes = max((m.top_classes for m in methods if m.needs_classes), default=0)  # top classes to ask for
        self.t = 0

    def _inside(self, points: np.ndarray) -> np.ndarray:
        """Points wrapped (periodic) and clipped (bounded) into the Space."""
        s = self.space
        return s.wrap(np.where(s.periodic, points, np.clip(points, s.lower, s.upper)))

    def step(self) -> None:
        n = self.space.n
        proposals = [s.propose() for s in self.searches]
        values = [p.values for p in proposals]
        wanted = np.concatenate([p.gradients for p in proposals]) if proposals else np.empty((0, n))
        stepped = None
        if len(wanted) and self.differences is not None:
            stepped = difference_points(wanted, self.space, self.differences)
            values.append(stepped.reshape(-1, n))
        points = np.concatenate(values) if values else np.empty((0, n))
        ev = None
        if not len(points):
            f = np.empty(0)
        elif self.classes:  # a method judges classes: one call gives scores and top classes
            ev = self.fn.evaluate(self._inside(points), k=self.classes)
            f = np.asarray(ev.score, dtype=float).reshape(-1)
        else:
            f = np.asarray(self.fn(self._inside(points)), dtype=float).reshape(-1)
        if f.shape != (len(points),):
            raise ValueError(f"f returned {f.size} scores for {len(points)} points")
        bad = ~np.isfinite(f)
        if bad.any():
            raise ValueError(f"f returned NaN or infinite scores at {int(bad.sum())} point(s), first at {points[np.argmax(bad)]}")
        cost = 0.0
        if stepped is not None:
            grads = difference_quotients(f[len(points) - stepped.size // n:], stepped)
            cost = 2.0 * n
        elif len(wanted):
            before = self.fn.queries
            grads = np.asarray(self.fn.gradient(self._inside(wanted)), dtype=float).reshape(len(wanted), n)
            cost = (self.fn.queries - before) / len(wanted)
        else:
            grads = np.empty((0, n))
        offset, g_offset = 0, 0
        for search, method, p in zip(self.searches, self.methods, proposals):
            sl = slice(offset, offset + len(p.values))
            part = None
            if method.needs_classes:
                part = Evaluation(f[sl], None, None, None) if ev is None or ev.top1 is None else \
                    Evaluation(f[sl], ev.top1[sl], ev.topk[sl], ev.topk_prob[sl])
            search.update(f[sl], grads[g_offset:g_offset + len(p.gradients)], cost, part)
            offset += len(p.values)
            g_offset += len(p.gradients)
        self.t += 1

    def run(self, progress: bool, attrs: dict[str, Any], checkpoint: _Checkpoint | None = None) -> xr.Dataset:
        from tqdm.auto import tqdm

        saved = checkpoint.load() if checkpoint is not None else None
        if saved is not None:
            self.t = int(saved["t"])
            for j, search in enumerate(self.searches):
                search.restore({k.split(":", 1)[1]: v for k, v in saved.items() if k.startswith(f"{j}:")})
        bar = tqdm(total=self.iterations, initial=self.t, desc="robust regions", unit="step", disable=not progress, leave=False)
        last_save = time.monotonic()
        try:
            while self.t < self.iterations and any(s.active.any() for s in self.searches):
                self.step()
                bar.update()
                if checkpoint is not None and time.monotonic() - last_save > CHECKPOINT_SECONDS:
                    checkpoint.save(self.state())
                    last_save = time.monotonic()
        except BaseException:
            if checkpoint is not None:  # every finished step is kept; the same call resumes from it
                checkpoint.save(self.state())
                print(f"\nstopped at step {self.t} of {self.iterations}; saved in {checkpoint.path}: rerun to resume",
                      file=sys.stderr)
            raise
        finally:
            bar.close()
        return self.dataset(attrs)

    def state(self) -> dict[str, np.ndarray]:
        arrays = {"t": np.array(self.t)}
        for j, search in enumerate(self.searches):
            arrays.update({f"{j}:{k}": v for k, v in search.state().items()})
        return arrays

    def dataset(self, attrs: dict[str, Any]) -> xr.Dataset:
        from . import __version__

        results = [s.result() for s in self.searches]
        used = int(max(r["iterations"].max() for r in results))

        def along(name: str, trace: bool = False) -> np.ndarray:
            arrays = [r[name][:used] if trace else r[name] for r in results]
            return np.stack(arrays, axis=2 if trace else 1)  # method after start

        names = list(self.space.names)
        coords = {
            "start": np.arange(len(self.u0)),
            "algorithm": [m.name for m in self.methods],
            "param": names,
            "iteration": np.arange(used),
            "start_point": (("start", "param"), self.u0),
            "units": ("param", [self.space.units[n] for n in names]),
        }
        dims = ("start", "algorithm", "param")
        tdims = ("iteration",) + dims
        return xr.Dataset(
            {
                "lower": (dims, along("lower"), {"long_name": "lower bound of the box"}),
                "upper": (dims, along("upper"), {"long_name": "upper bound of the box (periodic bounds are unwrapped)"}),
                "lower_trace": (tdims, along("lower_trace", True)),
                "upper_trace": (tdims, along("upper_trace", True)),
                "loss": (tdims[:-1], along("loss", True)),
                "queries": (dims[:-1], along("queries"), {"long_name": "points evaluated (gradients included)"}),
                "converged": (dims[:-1], along("converged"), {"long_name": "stopped before the last iteration: its bounds no longer moved (tol)"}),
                "iterations": (dims[:-1], along("iterations"), {"long_name": "steps taken"}),
                "start_passes": (dims[:-1], np.stack([r.get("start_passes", np.full(len(self.u0), np.nan)) for r in results],
                                                     axis=1).astype(float),
                                 {"long_name": "the start passes the method's criterion (1 or 0; NaN: it has none)"}),
                **{name: (dims[:-1], np.stack([r.get("extra", {}).get(name, np.full(len(self.u0), np.nan)) for r in results],
                                              axis=1).astype(float), {"long_name": EXTRA_NAMES.get(name, name)})
                   for name in dict.fromkeys(k for r in results for k in r.get("extra", {}))},
            },
            coords=coords,
            attrs={
                "title": "Robust regions",
                **attrs,
                "gradient_source": self.gradient_source,
                "methods": json.dumps([m.describe() for m in self.methods]),
                "space": json.dumps(self.space.to_dict()),
                "semkit_version": __version__,
                **_function_attrs(self.fn.describe()),
            },
        )


#: What the per-start variables that methods may add mean (NaN for methods without them).
EXTRA_NAMES = {
    "certified": "the box met its certificate (1; NaN: the method has none)",
    "check_samples": "fresh uniform samples of the final box that certified it",
    "check_failures": "of those, views failing the criterion",
    "failure_bound": "Clopper-Pearson upper bound of the box's failure share (at the split confidence)",
    "audit_samples": "fresh uniform continuous views that audited the lattice box",
    "audit_failures": "of those, views failing the criterion",
    "audit_bound": "Clopper-Pearson upper bound of the box's failure share at the stated confidence",
}


def _function_attrs(info: dict[str, Any]) -> dict[str, Any]:
    attrs = {k: info[k] for k in ("label", "label_name", "network", "shape") if k in info}
    if "callable" in info:
        attrs["function"] = info["callable"]
    return attrs


# ------------------------------------------------------------------ metrics

def volume_ratio(regions: xr.Dataset, space: Space | None = None) -> xr.DataArray:
    """|D| / |Omega| of every final box (dims of ``regions`` less ``param``)."""
    if not {"lower", "upper"} <= set(getattr(regions, "data_vars", ())):
        raise ValueError("volume_ratio and srvr take region searches (find_regions' results, with lower and upper "
                         f"bounds), got {type(regions).__name__} with {sorted(getattr(regions, 'data_vars', []))}: grow "
                         "regions on a map with find_regions(semkit.interpolate(the_map), starts)")
    space = recorded_space(regions, space)
    widths = xr.DataArray(space.widths, dims="param", coords={"param": list(space.names)})
    return ((regions.upper - regions.lower) / widths).prod("param")


def box_iou(first: xr.Dataset, second: xr.Dataset) -> xr.DataArray:
    """Intersection over union of the boxes of two region results, box by box (dims of both less ``param``)."""
    lo, hi = np.maximum(first.lower, second.lower), np.minimum(first.upper, second.upper)
    inter = (hi - lo).clip(min=0).prod("param")
    union = (first.upper - first.lower).prod("param") + (second.upper - second.lower).prod("param") - inter
    return (inter / union).rename("iou")


def srvr(regions: xr.Dataset, space: Space | None = None) -> xr.DataArray:
    """Semantic Robustness Volume Ratio: the mean over starts of |D| / |Omega|.

    One value per algorithm (and per network and shape where ``regions``
    has those dims: average them for the paper's per-network numbers).
    """
    out = volume_ratio(regions, space).mean("start")
    out.attrs = {"long_name": "SRVR (mean box volume / volume of the Space)", "units": "1"}
    return out.rename("srvr")


def check_regions(regions: xr.Dataset, semantic_map: xr.Dataset, threshold: float | None = None, *,
                  criterion: Criterion | str | None = None) -> xr.Dataset:
    """Each box against a dense map of the same function, judged by one criterion.

    For every start and algorithm: ``points`` (grid points inside the box),
    ``fraction_correct`` (of those, the share that passes the criterion),
    ``mean_score`` (the mean score inside) and ``iou``, the intersection over
    union, in grid points, of the box with the connected region of passing
    points that holds the start (neighbours across a periodic parameter's
    period are connected). The criterion is ``criterion=`` (or
    ``threshold=t``), else the one the regions were grown under (verified
    boxes record theirs), else top-1 correct (the map's ``correct``); a map
    of a plain function has no classes, so it needs a score criterion.
    """
    space = recorded_space(regions)
    names = list(space.names)
    if criterion is None and threshold is None:
        criterion = _regions_criterion(regions)
    criterion = Criterion.resolve(criterion, threshold)
    missing = [name for name in names if name not in semantic_map.dims]
    if missing:
        raise ValueError(f"the map has no {missing} dims, but the regions' Space is {names}: check regions against a "
                         "map of the same Space")
    score = semantic_map["score"].transpose(*names)
    good = criterion.on_map(semantic_map).transpose(*names).values.astype(bool)
    grids = [np.asarray(score[name].values, dtype=float) for name in names]
    points = np.stack(np.meshgrid(*grids, indexing="ij"), axis=-1)  # [..., n]

    labels = _components(good, grids, space)

    S, A = regions.sizes["start"], regions.sizes["algorithm"]
    out = {k: np.zeros((S, A)) for k in ("points", "fraction_correct", "mean_score", "iou")}
    for s in range(S):
        u0 = regions.start_point.isel(start=s).transpose("param").values
        cell = tuple(int(np.argmin(_distance(g, u0[i], space.parameters[i]))) for i, g in enumerate(grids))
        component = labels == labels[cell] if labels[cell] > 0 else np.zeros_like(good)
        for j in range(A):
            box = regions.isel(start=s, algorithm=j)
            inside = _inside(points, box.lower.transpose("param").values, box.upper.transpose("param").values, space)
            k = int(inside.sum())
            out["points"][s, j] = k
            out["fraction_correct"][s, j] = good[inside].mean() if k else np.nan
            out["mean_score"][s, j] = score.values[inside].mean() if k else np.nan
            union = (inside | component).sum()
            out["iou"][s, j] = (inside & component).sum() / union if union else np.nan
    dims = ("start", "algorithm")
    return xr.Dataset(
        {
            "points": (dims, out["points"].astype(int), {"long_name": "map points inside the box"}),
            "fraction_correct": (dims, out["fraction_correct"], {"long_name": f"share of the box's map points that pass ({criterion.name})"}),
            "mean_score": (dims, out["mean_score"], {"long_name": "mean score inside the box"}),
            "iou": (dims, out["iou"], {"long_name": "IoU with the passing region around the start"}),
        },
        coords={"start": regions.start.values, "algorithm": regions.algorithm.values},
        attrs={**criterion.attrs(), "guarantee": "about the map's grid points only"},
    )


def _regions_criterion(regions: xr.Dataset) -> Criterion | None:
    """The criterion the regions were grown under (None when no method records one); several different: an error."""
    found = {Criterion.from_attrs(m) for m in json.loads(regions.attrs.get("methods", "[]")) if "criterion" in m}
    found = {replace(c, label=None) for c in found if c is not None}
    if len(found) > 1:
        raise ValueError(f"these regions were grown under several criteria {sorted(c.name for c in found)}: pass "
                         "criterion= to check them by one")
    return found.pop() if found else None


def _components(good: np.ndarray, grids: list[np.ndarray], space: Space) -> np.ndarray:
    """Connected components of ``good`` (0 = not good), joined across periodic parameters' periods."""
    from scipy import ndimage
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    labels, count = ndimage.label(good)
    pairs = []
    for i, p in enumerate(space.parameters):
        g = grids[i]
        if p.periodic and len(g) > 1 and np.isclose(g[-1] + (g[1] - g[0]), g[0] + p.width):  # the grid closes the circle
            first, last = labels.take(0, axis=i), labels.take(-1, axis=i)
            touch = (first > 0) & (last > 0)
            pairs.append(np.stack([first[touch], last[touch]]))
    if not pairs:
        return labels
    edges = np.concatenate(pairs, axis=1)
    graph = coo_matrix((np.ones(edges.shape[1]), (edges[0], edges[1])), shape=(count + 1, count + 1))
    _, merged = connected_components(graph, directed=False)
    return np.where(labels > 0, merged[labels] + 1, 0)


def _distance(grid: np.ndarray, value: float, p) -> np.ndarray:
    d = np.abs(grid - value)
    return np.minimum(d, p.width - d) if p.periodic else d


def _inside(points: np.ndarray, a: np.ndarray, b: np.ndarray, space: Space) -> np.ndarray:
    """Which grid points [..., n] lie in the box [a, b] (periodic parameters: modulo the period)."""
    rel = points - a
    rel = np.where(space.periodic, np.mod(rel, space.widths), rel)
    return ((rel >= -1e-9) & (rel <= (b - a) + 1e-9)).all(-1)
