"""Step rules: how far each step of a box's gradient flow goes, and when a box stops.

[`FaithfulSteps`][semkit.regions.rules.FaithfulSteps] takes the paper's plain gradient steps;
[`AdaptiveSteps`][semkit.regions.rules.AdaptiveSteps] follows the same flow to the same horizon in fewer,
longer steps (exact in log-width while a box is small, limited by a trust
region and a secant estimate of the flow's stiffness once it is not),
reaching the same boxes with a fraction of the queries (docs/benchmarks.md).
A rule is an object with its options (``AdaptiveSteps(min_motion=0.01)``),
or its name in `STEP_RULES`. Their state is typed (`FlowState`, `AdaptiveState`) and saved
whole, so an interrupted search resumes exactly as if uninterrupted.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np

from ..registry import Configurable, Registry, positive
from ..space import Space

#: The step rule of every region search unless asked otherwise: the paper's own steps.
DEFAULT_STEP_RULE = "faithful"


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
    still: np.ndarray  #: [K] consecutive steps that moved less than min_motion

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
    """`FlowState` plus what the adaptive rule remembers between steps."""

    elapsed: np.ndarray  #: [K] faithful iterations covered so far
    position: np.ndarray  #: [K, 2n] the bounds at the last step
    velocity: np.ndarray  #: [K, 2n] and their velocities

    @classmethod
    def _extra(cls, K: int, n: int) -> dict[str, np.ndarray]:
        return {"elapsed": np.zeros(K), "position": np.full((K, 2 * n), np.nan), "velocity": np.zeros((K, 2 * n))}


class StepRule(Configurable, ABC):
    """How far a gradient-flow search moves its bounds per step, and when a box stops.

    Parameters
    ----------
    min_motion : float, optional
        A box stops once its bounds move less than this, in the parameters' units (each rule says how it
        judges); None: the rule's own default.

    Raises
    ------
    ValueError
        If ``min_motion`` is not positive.
    """

    name: ClassVar[str]
    state_type: ClassVar[type[FlowState]] = FlowState

    def __init__(self, min_motion: float | None = None) -> None:
        self.min_motion = None if min_motion is None else positive("min_motion", min_motion)

    @abstractmethod
    def advance(self, st: FlowState, ga, gb, space: Space, learning_rate: float, iterations: int):
        """New bounds of every box from its loss gradients, and which boxes settled.

        May update the rule's own part of the state.

        Parameters
        ----------
        st : FlowState
            The boxes' state (the rule's `state_type`).
        ga, gb : ndarray
            The loss's gradients with respect to the lower and the upper bounds, ``[K, n]``.
        space : Space
            The Space the boxes grow in.
        learning_rate : float
            The gradient step of the faithful flow.
        iterations : int
            The search's horizon, in faithful steps.

        Returns
        -------
        tuple
            The new lower and upper bounds ``[K, n]`` (before repair), and which boxes settled ``[K]`` (None: the rule
            does not say).
        """

    @abstractmethod
    def stop(self, st: FlowState, moved: np.ndarray, iterations: int, settled: np.ndarray | None) -> None:
        """Mark converged and active boxes after a step.

        Parameters
        ----------
        st : FlowState
            The boxes' state, updated in place.
        moved : ndarray
            The largest bound move of each box in this step, ``[K]``.
        iterations : int
            The search's horizon, in faithful steps.
        settled : ndarray or None
            Which boxes `advance` found settled, ``[K]``, or None.
        """


class FaithfulSteps(StepRule):
    """The paper's plain gradient steps, each of the algorithm's ``learning_rate``.

    Parameters
    ----------
    min_motion : float, optional
        A box stops once its bounds moved less than this for two steps; None: every box runs all its iterations.

    Raises
    ------
    ValueError
        If ``min_motion`` is not positive.
    """

    name = "faithful"

    def advance(self, st, ga, gb, space, learning_rate, iterations):
        return st.a - learning_rate * ga, st.b - learning_rate * gb, None

    def stop(self, st, moved, iterations, settled) -> None:
        if self.min_motion is not None:
            st.still = np.where(moved < self.min_motion, st.still + 1, 0)
            st.converged |= st.active & (st.still >= 2)


class AdaptiveSteps(StepRule):
    """The faithful flow to the same horizon in fewer, longer steps.

    Parameters
    ----------
    min_motion : float, optional
        A box stops once its remaining motion would be less than this; None: 1e-3 of the Space's smallest range.
    max_move : float
        One step moves no bound more than this share of the box's width (or ``min_move``'s limit, whichever is
        larger).
    min_move : float
        One step may always move a bound this share of the parameter's range.
    max_leap : float
        One step covers at most this many faithful iterations.
    max_log_growth : float
        One step changes no log-width by more than this.

    Raises
    ------
    ValueError
        If an option is not positive.
    """

    name = "adaptive"
    state_type = AdaptiveState

    def __init__(self, min_motion: float | None = None, max_move: float = 0.1, min_move: float = 1e-3,
                 max_leap: float = 64.0, max_log_growth: float = 0.1) -> None:
        super().__init__(min_motion)
        self.max_move, self.min_move = positive("max_move", max_move), positive("min_move", min_move)
        self.max_leap, self.max_log_growth = positive("max_leap", max_leap), positive("max_log_growth", max_log_growth)

    def advance(self, st: AdaptiveState, ga, gb, space, learning_rate, iterations):
        """Advance the faithful flow by k iterations at once, k as large as the limits allow.

        Integrates da = -lr dL/da, db = -lr dL/db in the box's centre and log-width, where the early, geometric
        growth of a box is linear (a large step there is exact). k is limited so that no bound moves more than
        ``max_move`` of the box's width or ``min_move`` of the parameter's range (whichever is larger), no width
        changes by more than a factor exp(``max_log_growth``), and no bound overshoots the point where its velocity
        vanishes (a secant estimate of the flow's stiffness from the last two steps). A box is settled when, at its
        current rates, all its remaining iterations would move it less than ``min_motion``.

        Parameters
        ----------
        st : AdaptiveState
            The boxes' state; the rule's part (covered iterations, last bounds and velocities) is updated.
        ga, gb : ndarray
            The loss's gradients with respect to the lower and the upper bounds, ``[K, n]``.
        space : Space
            The Space the boxes grow in.
        learning_rate : float
            The gradient step of the faithful flow.
        iterations : int
            The search's horizon, in faithful steps.

        Returns
        -------
        tuple
            The new lower and upper bounds ``[K, n]`` (before repair), and which boxes settled ``[K]``.
        """
        h, a, b = self, st.a, st.b
        min_motion = self.min_motion if self.min_motion is not None else 1e-3 * float(space.widths.min())
        remaining = iterations - st.elapsed
        velocity = -learning_rate * np.concatenate([ga, gb], axis=-1)  # per faithful iteration
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
        settled = (future < min_motion).all(-1)
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


#: Step rules by name: ``step_rule=`` takes these names or a [`StepRule`][semkit.regions.rules.StepRule] object.
STEP_RULES: Registry[StepRule] = Registry("step rule", "semkit.regions.rules:StepRule", {
    "faithful": "semkit.regions.rules:FaithfulSteps", "adaptive": "semkit.regions.rules:AdaptiveSteps"})

