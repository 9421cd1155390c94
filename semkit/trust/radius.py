"""The robustness radius of a view: how far around it the views keep passing.

Two statements, side by side. On the lattice x + j * step: ``steps``,
the largest k such that every lattice point within k steps passes (exact,
and about lattice points only). On the continuum (the default guarantee):
``radius``, the largest +-k * step box (k <= steps) that meets the
continuous guarantee ([`Guarantee`][semkit.trust.guarantee.Guarantee]: with confidence c at
most a share p of its views fail, by fresh uniform samples).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np
import xarray as xr

from ..criterion import Criterion
from ..function import as_function
from ..regions import EXTRA_NAMES
from ..space import Space
from ..validation import check_count
from .guarantee import BoxCertifier, Guarantee, audit
from .lattice import LatticeOracle, largest_passing
from .records import json_units, space_json, state_attr

CERTIFICATES = ("sampled", "lattice")


def check_certificate(certificate: str) -> str:
    if certificate not in CERTIFICATES:
        raise ValueError(f"unknown certificate {certificate!r}: choose one of {CERTIFICATES}")
    return certificate


def radius_box(space: Space, x: np.ndarray, half: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The box x +- half (per parameter), clipped at bounded parameters; periodic ones unwrapped, at most one period."""
    half = np.where(space.periodic, np.minimum(half, space.widths / 2), half)
    a, b = x - half, x + half
    bounded = ~space.periodic
    return np.where(bounded, np.maximum(a, space.lower), a), np.where(bounded, np.minimum(b, space.upper), b)


def continuous_steps(fn: Any, criterion: Criterion, space: Space, x: np.ndarray, step: np.ndarray,
                     candidates: Sequence[Sequence[int]], guarantee: Guarantee,
                     random_state: int | np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per view, the first of its candidate step counts whose +-k * step box is certified (-1: none).

    Candidates are tried in the order given, all views together (one call
    of f per look). Returns (steps, queries, bound of the box kept).
    """
    P = len(x)
    result = np.full(P, -1, dtype=np.int64)
    queries = np.zeros(P, dtype=np.int64)
    bound = np.full(P, np.nan)
    rngs = np.random.default_rng(random_state).spawn(P)
    queue = [list(c) for c in candidates]
    current: list[tuple[int, BoxCertifier] | None] = [None] * P

    def next_test(i: int) -> None:
        current[i] = None
        while queue[i]:
            k = queue[i].pop(0)
            cert = BoxCertifier(guarantee, *radius_box(space, x[i], k * step), rngs[i])
            if not cert.done:
                current[i] = (k, cert)
                return
            if cert.status == "certified":  # a box of one view, which passed
                result[i], bound[i] = k, 0.0
                return

    for i in range(P):
        next_test(i)
    while any(c is not None for c in current):
        active = [i for i in range(P) if current[i] is not None]
        asks = [current[i][1].propose() for i in active]
        passes, _, _ = criterion.evaluate(fn, space.wrap(np.concatenate(asks)))
        at = 0
        for i, ask in zip(active, asks):
            k, cert = current[i]
            cert.update(passes[at : at + len(ask)])
            at += len(ask)
            queries[i] += len(ask)
            if not cert.done:
                continue
            if cert.status == "certified":
                result[i], bound[i] = k, cert.bound
                current[i] = None
            else:
                next_test(i)
    return result, queries, bound


def robustness_radius(
    f: Callable[[np.ndarray], Any],
    points: Any,
    *,
    space: Space | None = None,
    criterion: Criterion | str | None = None,
    step: float | Sequence[float] | None = None,
    max_steps: int = 10,
    certificate: str = "sampled",
    guarantee: Guarantee | None = None,
    random_state: int | np.random.Generator = 0,
    progress: bool = True,
) -> xr.Dataset:
    """The robustness radius of each view: how far every view around it keeps passing ``criterion``.

    Two statements, side by side. On the lattice x + j * step: ``steps``, the largest k <= ``max_steps`` such that
    every lattice point with |j| <= k (per parameter) passes the criterion (0: only x passes, -1: x fails); exact,
    and about lattice points only. ``radius`` is what the ``certificate`` guarantees: "sampled", the largest
    +-k * step box, k <= steps, that meets the continuous ``guarantee`` (with its confidence at most its share of the
    box's views fail, shown by fresh uniform samples; the confidence split over the up to ``max_steps`` boxes tried
    per view); "lattice", the lattice radius, with a continuous audit of its box (as many fresh views as the
    guarantee's first look), which is no guarantee. Boxes are clipped to bounded parameters and wrap on periodic ones.

    Parameters
    ----------
    f : callable
        A function of points [B, n] (a [`SemanticFunction`][semkit.SemanticFunction], or scores only with a score criterion).
    points : array or dict
        The views, points of the Space.
    space : Space, optional
        The Space; None: ``f.space``.
    criterion : Criterion or str, optional
        What a view must pass; None: top-1 correct.
    step : float or sequence of float, optional
        The lattice step, per parameter or for all; None: the Space's default step.
    max_steps : int, default 10
        The largest k tried: the radius is at most ``max_steps * step``.
    certificate : str, default "sampled"
        What ``radius`` states: "sampled", a box that meets the continuous guarantee; "lattice", the lattice radius,
        audited.
    guarantee : Guarantee, optional
        The continuous guarantee (and, with "lattice", the audit's sample count and confidence); None:
        ``Guarantee(confidence=0.95, max_failure=0.01)``.
    random_state : int or Generator, default 0
        Draws the fresh samples: an int or a numpy Generator (the same value, the same samples).
    progress : bool, default True
        Show a progress bar.

    Returns
    -------
    Dataset
        Over ``point`` (and ``param``): ``steps``, ``lattice_radius`` (steps x step), ``radius``, ``view`` and
        ``queries``; with "sampled" also ``radius_steps``, ``check_n_samples`` and ``failure_bound``; with "lattice"
        the audit's ``audit_n_samples``, ``audit_failures`` and ``audit_bound`` (the Clopper-Pearson upper bound of the
        failure share at its confidence). Attrs: the criterion, ``certificate``, ``step``, ``max_steps``, the Space
        and ``guarantee``, the statement in words.

    Raises
    ------
    ValueError
        An unknown certificate, a negative or non-integer ``max_steps``, a point outside the Space.
    TypeError
        ``guarantee`` is not a [`Guarantee`][semkit.trust.Guarantee], or ``max_steps`` is no number (text, None, a
        bool).
    """
    if guarantee is None:
        guarantee = Guarantee()
    elif not isinstance(guarantee, Guarantee):
        raise TypeError(f"guarantee must be a semkit.trust.Guarantee(confidence=..., max_failure=...), got "
                        f"{type(guarantee).__name__}")
    fn = as_function(f, space=space)
    space = fn.space
    criterion = Criterion.resolve(criterion, f=fn)
    check_certificate(certificate)
    step = space.steps(step)
    max_steps = check_count(max_steps, "max_steps", minimum=0)
    x = space.points(points)
    oracle = LatticeOracle(fn, space, criterion, x, step)
    last = largest_passing(oracle, [np.full(space.n, k) for k in range(1, max_steps + 1)], progress, "robustness radius")
    views = _Views(fn, criterion, space, x, step, np.where(last == -2, -1, last + 1))  # box i has half-width i + 1
    variables: dict[str, Any] = {
        "steps": ("point", views.steps, {"long_name": "largest k: every lattice point within k steps passes (-1: the view fails)"}),
        "lattice_radius": (("point", "param"), views.lattice_radius, {"long_name": "steps x step", "units": json_units(space)}),
        "view": (("point", "param"), x, {"long_name": "the view"}),
    }
    queries = oracle.queries.copy()
    if certificate == "sampled":
        certified, extra, statement, extra_attrs = views.sampled(guarantee, max_steps, random_state)
    else:
        certified, extra, statement, extra_attrs = views.audited(guarantee, random_state)
    variables.update(certified)
    queries += extra
    variables["queries"] = ("point", queries, {"long_name": "evaluations of f charged to the view"})
    return xr.Dataset(
        variables,
        coords={"point": np.arange(len(x)), "param": list(space.names)},
        attrs={**criterion.attrs(), "certificate": certificate, "step": step.tolist(), "max_steps": int(max_steps),
               "random_state": state_attr(random_state), **extra_attrs, "space": space_json(space), "guarantee": statement},
    )


#: A certificate's answer: its variables, the queries it charged per view, its statement, its attrs.
_Certified = tuple[dict[str, Any], np.ndarray, str, dict[str, Any]]


@dataclass
class _Views:
    """The views and their lattice steps, what both certificates start from (with f, its criterion, the Space, the step)."""

    fn: Any
    criterion: Criterion
    space: Space
    x: np.ndarray
    step: np.ndarray
    steps: np.ndarray

    @property
    def lattice_radius(self) -> np.ndarray:
        """Per view and parameter, steps x step (NaN where the view fails)."""
        return np.where(self.steps[:, None] >= 0, self.steps[:, None] * self.step[None, :], np.nan)

    def sampled(self, guarantee: Guarantee, max_steps: int, random_state: int | np.random.Generator) -> _Certified:
        """The "sampled" certificate: per view the largest +-k * step box, k <= steps, that meets the guarantee."""
        guarantee = replace(guarantee, tests=max(int(max_steps), 1))
        candidates = [list(range(int(k), 0, -1)) for k in self.steps]
        kept, extra, bound = continuous_steps(self.fn, self.criterion, self.space, self.x, self.step, candidates, guarantee,
                                              random_state)
        kept = np.where(self.steps >= 0, np.maximum(kept, 0), -1)  # the view itself passed: radius 0 at least
        bound = np.where(kept == 0, 0.0, bound)
        radius = np.where(kept[:, None] >= 0, kept[:, None] * self.step[None, :], np.nan)
        variables = {
            "radius_steps": ("point", kept, {"long_name": "largest k <= steps whose +-k step box meets the guarantee"}),
            "radius": (("point", "param"), radius, {"long_name": "radius_steps x step: the box meets the guarantee",
                                                    "units": json_units(self.space)}),
            "check_n_samples": ("point", extra, {"long_name": "fresh uniform samples drawn to certify boxes"}),
            "failure_bound": ("point", bound, {"long_name": "Clopper-Pearson bound of the failure share in the box kept"}),
        }
        statement = f"sampled: the +-radius box of each view: {guarantee.describe(self.criterion)}"
        return variables, extra, statement, guarantee.attrs()

    def audited(self, guarantee: Guarantee, random_state: int | np.random.Generator) -> _Certified:
        """The "lattice" certificate: the lattice radius, its box audited by fresh continuous samples (no guarantee)."""
        space, x, lattice_radius = self.space, self.x, self.lattice_radius
        lower, upper = zip(*[radius_box(space, x[i], np.nan_to_num(lattice_radius[i])) for i in range(len(x))]) if len(x) else ((), ())
        lower, upper = np.array(lower).reshape(-1, space.n), np.array(upper).reshape(-1, space.n)
        audited = audit(self.fn, self.criterion, lower, upper, space=space, n_samples=guarantee.first_look,
                        confidence=guarantee.confidence, random_state=random_state)
        passing = self.steps >= 0
        for key in audited:  # a failing view has no box to audit
            audited[key] = np.where(passing, audited[key], -1 if audited[key].dtype.kind == "i" else np.nan)
        variables = {"radius": (("point", "param"), lattice_radius, {"long_name": "steps x step (lattice)",
                                                                     "units": json_units(space)})}
        variables.update({k: ("point", v, {"long_name": EXTRA_NAMES[k]}) for k, v in audited.items()})
        statement = (f"lattice: every lattice point within the radius passes ({self.criterion.name}); audited by fresh "
                     f"continuous samples of each box (audit_failures, audit_bound at confidence {guarantee.confidence:g}), "
                     "which is no guarantee")
        extra_attrs = {"confidence": guarantee.confidence, "n_samples": guarantee.first_look}
        return variables, np.where(passing, audited["audit_n_samples"], 0), statement, extra_attrs
