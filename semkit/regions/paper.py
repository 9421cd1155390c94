"""The paper's three region algorithms (Hamdi & Ghanem; docs/algorithms.md states them as computed here).

[`Naive`][semkit.regions.paper.Naive] (grow where f is high, pay for size), [`OIRB`][semkit.regions.paper.OIRB]
(outer-inner ratio, values of f only) and [`OIRW`][semkit.regions.paper.OIRW] (outer-inner ratio,
values and gradients): boxes grown by gradient flow on their bounds, for
any dimension n, each step as far as a step rule says.

A periodic parameter (azimuth) lets a box cross its period: bounds are kept
unwrapped (a < 0 or b > 360 allowed, width at most the period) and f is
evaluated at the wrapped angle. Bounded parameters are clipped to the Space.
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np

from ..function import Evaluation
from ..registry import positive
from ..space import Space
from .base import Proposal, RegionAlgorithm, Search
from .rules import DEFAULT_STEP_RULE, STEP_RULES, StepRule

#: The paper's algorithms, by name.
PAPER_ALGORITHMS = ("naive", "oir_b", "oir_w")



def corner_masks(n: int) -> np.ndarray:
    """M [n, 2^n]: column k holds the bits of k (bit i belongs to dimension i)."""
    return ((np.arange(2**n)[None, :] >> np.arange(n)[:, None]) & 1).astype(float)


def corners(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Corners [K, 2^n, n] of boxes [K, n]."""
    M = corner_masks(a.shape[-1])
    return a[:, None, :] + M.T[None] * (b - a)[:, None, :]



# ------------------------------------------------------- gradient-flow boxes
class BoxFlow(RegionAlgorithm):
    """A box per start grown by a step rule on the gradients of a loss of its bounds (the paper's algorithms).

    The options common to the three; their defaults are the paper's.

    Parameters
    ----------
    step_rule : str or StepRule
        How far each step goes and when a box stops: a name in `STEP_RULES` or a
        [`StepRule`][semkit.regions.StepRule] object.
    learning_rate : float
        The gradient step of the faithful flow.
    start_width : float
        The box starts as [u0 - start_width, u0 + start_width] around its start u0.
    epsilon : float
        The smallest width the repair of a box keeps.

    Raises
    ------
    ValueError
        If an option is not positive, or ``step_rule`` names no step rule.
    """

    def __init__(self, *, step_rule: "str | StepRule" = DEFAULT_STEP_RULE, learning_rate: float = 0.1,
                 start_width: float = 1e-5, epsilon: float = 1e-5) -> None:
        self.step_rule = STEP_RULES.create(step_rule)
        self.learning_rate = positive("learning_rate", learning_rate)
        self.start_width, self.epsilon = positive("start_width", start_width), positive("epsilon", epsilon)

    def search(self, space: Space, starts: np.ndarray, iterations: int) -> "FlowSearch":
        return FlowSearch(self, space, starts, iterations)

    @abstractmethod
    def plan(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The points each box needs f at this step.

        Parameters
        ----------
        a, b : ndarray
            The boxes' lower and upper bounds, ``[K, n]``.

        Returns
        -------
        tuple of ndarray
            Value points ``[K, P, n]`` and gradient points ``[K, G, n]``.
        """

    @abstractmethod
    def gradients(self, a, b, values: np.ndarray, grads: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The loss's gradients with respect to the bounds, and the loss, from f at the planned points.

        Parameters
        ----------
        a, b : ndarray
            The boxes' lower and upper bounds, ``[K, n]``.
        values : ndarray
            f at the planned value points, ``[K, P]``.
        grads : ndarray or None
            The gradient of f at the planned gradient points, ``[K, G, n]``; None when the algorithm plans none.

        Returns
        -------
        tuple of ndarray
            dL/da and dL/db ``[K, n]``, and the loss ``[K]``.
        """


class FlowSearch(Search):
    """A [`BoxFlow`][semkit.regions.paper.BoxFlow] algorithm's boxes under its step rule."""

    def __init__(self, algorithm: BoxFlow, space: Space, starts: np.ndarray, iterations: int) -> None:
        self.algorithm, self.space, self.iterations = algorithm, space, iterations
        w = algorithm.start_width
        self.st = algorithm.step_rule.state_type.initial(*self._repair(starts - w, starts + w), iterations)
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
        values, grads = self.algorithm.plan(st.a[self._idx], st.b[self._idx])
        n = self.space.n
        return Proposal(values.reshape(-1, n), grads.reshape(-1, n))

    def update(self, values: np.ndarray, gradients: np.ndarray, gradient_cost: float,
               evaluation: Evaluation | None = None) -> None:
        st, idx = self.st, self._idx
        K, n = st.a.shape
        ga, gb = np.zeros((K, n)), np.zeros((K, n))
        if len(idx):
            P, G = len(values) // len(idx), len(gradients) // len(idx)
            grads = gradients.reshape(len(idx), G, n) if G else None
            ga[idx], gb[idx], loss = self.algorithm.gradients(st.a[idx], st.b[idx], values.reshape(len(idx), P), grads)
            st.loss_trace[int(st.t), idx] = loss
            st.queries[idx] += P + int(round(G * gradient_cost))
        new_a, new_b, settled = self.algorithm.step_rule.advance(st, ga, gb, self.space, self.algorithm.learning_rate,
                                                              self.iterations)
        active = st.active[:, None]
        new_a, new_b = self._repair(np.where(active, new_a, st.a), np.where(active, new_b, st.b))
        moved = np.maximum(np.abs(new_a - st.a).max(-1), np.abs(new_b - st.b).max(-1))
        st.a, st.b = new_a, new_b
        st.steps_taken = st.steps_taken + st.active
        self.algorithm.step_rule.stop(st, moved, self.iterations, settled)
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
        eps = self.algorithm.epsilon
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


def no_points(K: int, n: int) -> np.ndarray:
    return np.empty((K, 0, n))


class Naive(BoxFlow):
    """The naive algorithm: maximise the integral of f over the box, penalised by its size.

    Parameters
    ----------
    lam : float
        The weight of the size penalty, ``lam``/2 |r|^2 for a box of widths r.
    step_rule : str or StepRule
        How far each step goes and when a box stops: a name in `STEP_RULES` or a
        [`StepRule`][semkit.regions.StepRule] object.
    learning_rate : float
        The gradient step of the faithful flow.
    start_width : float
        The box starts as [u0 - start_width, u0 + start_width] around its start u0.
    epsilon : float
        The smallest width the repair of a box keeps.

    Raises
    ------
    ValueError
        If an option is not positive, or ``step_rule`` names no step rule.
    """

    name, title, color = "naive", "naive", "tab:green"

    def __init__(self, *, lam: float = 0.1, step_rule: "str | StepRule" = DEFAULT_STEP_RULE, learning_rate: float = 0.1,
                 start_width: float = 1e-5, epsilon: float = 1e-5) -> None:
        super().__init__(step_rule=step_rule, learning_rate=learning_rate, start_width=start_width, epsilon=epsilon)
        self.lam = positive("lam", lam)

    def queries_per_step(self, n: int) -> int:
        return 2**n

    def plan(self, a, b):
        return corners(a, b), no_points(*a.shape)

    def gradients(self, a, b, values, grads):
        K, n = a.shape
        M = corner_masks(n)
        r = b - a
        c = (np.prod(r, axis=1) / 2**n)[:, None]  # |D| / 2^n
        lam = self.lam
        ga = 2 * c * (values @ (1.0 - M).T) / r - lam * r
        gb = -2 * c * (values @ M.T) / r + lam * r
        return ga, gb, -c[:, 0] * values.sum(1) + lam / 2 * (r**2).sum(1)


class OIRB(BoxFlow):
    """Outer-inner ratio, black-box: f at the corners of the box and of a box ``alpha`` wider.

    Parameters
    ----------
    alpha : float
        How much wider the outer box is, as a fraction of the box's width (paper notation).
    step_rule : str or StepRule
        How far each step goes and when a box stops: a name in `STEP_RULES` or a
        [`StepRule`][semkit.regions.StepRule] object.
    learning_rate : float
        The gradient step of the faithful flow.
    start_width : float
        The box starts as [u0 - start_width, u0 + start_width] around its start u0.
    epsilon : float
        The smallest width the repair of a box keeps.

    Raises
    ------
    ValueError
        If an option is not positive, or ``step_rule`` names no step rule.
    """

    name, title, color = "oir_b", "OIR_B", "tab:orange"

    def __init__(self, *, alpha: float = 0.05, step_rule: "str | StepRule" = DEFAULT_STEP_RULE,
                 learning_rate: float = 0.1, start_width: float = 1e-5, epsilon: float = 1e-5) -> None:
        super().__init__(step_rule=step_rule, learning_rate=learning_rate, start_width=start_width, epsilon=epsilon)
        self.alpha = positive("alpha", alpha)

    def queries_per_step(self, n: int) -> int:
        return 2 * 2**n

    def plan(self, a, b):
        margin = self.alpha / 2 * (b - a)
        return np.concatenate([corners(a, b), corners(a - margin, b + margin)], axis=1), no_points(*a.shape)

    def gradients(self, a, b, values, grads):
        K, n = a.shape
        C = 2**n
        f_inner, f_outer = values[:, :C], values[:, C:]
        M = corner_masks(n)
        Mbar = 1.0 - M
        r = b - a
        c = (np.prod(r, axis=1) / C)[:, None]
        alpha = self.alpha
        q = (1 + alpha) ** (n - 1)
        Q = q * ((1 + alpha / 2) * M + (alpha / 2) * Mbar)
        Qbar = q * ((1 + alpha / 2) * Mbar + (alpha / 2) * M)
        ga = 2 * c / r * (2 * f_inner @ Mbar.T - f_outer @ Qbar.T)
        gb = 2 * c / r * (-2 * f_inner @ M.T + f_outer @ Q.T)
        return ga, gb, c[:, 0] * ((1 + alpha) ** n * f_outer.sum(1) - 2 * f_inner.sum(1))


class OIRW(BoxFlow):
    """Outer-inner ratio, white-box: f and its gradient at the corners of the box.

    f at the outer corners comes from a first-order expansion at the inner ones, so the outer box costs no
    queries.

    Parameters
    ----------
    alpha : float
        How much wider the outer box is, as a fraction of the box's width (paper notation).
    beta : float
        The weight of the first-order terms (paper notation).
    score_floor : float
        Scores are floored at this in grad(-log f) = -grad f / f.
    fd_step : float
        The central-difference step of the gradient of a plain callable without one, in the parameters' units.
    step_rule : str or StepRule
        How far each step goes and when a box stops: a name in `STEP_RULES` or a
        [`StepRule`][semkit.regions.StepRule] object.
    learning_rate : float
        The gradient step of the faithful flow.
    start_width : float
        The box starts as [u0 - start_width, u0 + start_width] around its start u0.
    epsilon : float
        The smallest width the repair of a box keeps.

    Raises
    ------
    ValueError
        If an option is not positive, or ``step_rule`` names no step rule.
    """

    name, title, color = "oir_w", "OIR_W", "tab:purple"
    needs_gradient = True

    def __init__(self, *, alpha: float = 0.05, beta: float = 0.0009, score_floor: float = 1e-6, fd_step: float = 0.5,
                 step_rule: "str | StepRule" = DEFAULT_STEP_RULE, learning_rate: float = 0.1,
                 start_width: float = 1e-5, epsilon: float = 1e-5) -> None:
        super().__init__(step_rule=step_rule, learning_rate=learning_rate, start_width=start_width, epsilon=epsilon)
        self.alpha, self.beta = positive("alpha", alpha), positive("beta", beta)
        self.score_floor, self.fd_step = positive("score_floor", score_floor), positive("fd_step", fd_step)

    def queries_per_step(self, n: int) -> int:
        return 2 * 2**n

    def plan(self, a, b):
        inner = corners(a, b)
        return inner, inner

    def gradients(self, a, b, values, grads):
        G = -grads / np.maximum(values, self.score_floor)[..., None]  # gradient of -log f
        return self.neg_log_gradients(a, b, values, G)

    def neg_log_gradients(self, a, b, f_inner, G):
        """The step from f and the gradient of -log f at the corners.

        Parameters
        ----------
        a, b : ndarray
            The boxes' lower and upper bounds, ``[K, n]``.
        f_inner : ndarray
            f at the box's corners, ``[K, 2^n]``.
        G : ndarray
            The gradient of -log f at the corners, ``[K, 2^n, n]``.

        Returns
        -------
        tuple of ndarray
            dL/da and dL/db ``[K, n]``, and the loss ``[K]``.
        """
        K, n = a.shape
        M = corner_masks(n)
        Mbar = 1.0 - M
        r = b - a
        c = (np.prod(r, axis=1) / 2**n)[:, None]
        alpha, beta = self.alpha, self.beta
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
