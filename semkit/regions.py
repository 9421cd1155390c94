"""Robust regions: boxes grown around starting points by gradient steps on their bounds.

Implements the three methods of Hamdi & Ghanem as stated in
reference/ALGORITHMS.md: ``naive`` (grow where f is high, pay for size),
``oir_b`` (outer-inner ratio, black-box: values of f only) and ``oir_w``
(outer-inner ratio, white-box: values and gradients of f). All boxes of all
starts and all algorithms advance together: each step evaluates every
corner (and outer corner) in one batched call of f, for any dimension n.

A periodic parameter (azimuth) lets a box cross its period: bounds are kept
unwrapped (a < 0 or b > 360 allowed, width at most the period) and f is
evaluated at the wrapped angle. Bounded parameters are clipped to the Space.

Two step rules: ``"faithful"`` takes the plain gradient steps of the paper
(learning rate 0.1 for a fixed number of iterations); ``"adaptive"``
follows the same gradient flow to the same horizon in fewer, longer steps
(exact in log-width while a box is small, limited by a trust region and a
secant estimate of the flow's stiffness once it is not), reaching the same
boxes with a fraction of the queries (docs/benchmarks.md).

The results are labeled: an ``xarray.Dataset`` over ``start``,
``algorithm`` and ``param``; :func:`srvr` turns them into the paper's
robustness number and :func:`check_regions` holds them against a dense map.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import xarray as xr

from .maps import _fingerprint, _settings
from .space import Space

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


# ------------------------------------------------------------------ the math
def loss_gradients(
    algorithm: str,
    a: np.ndarray,
    b: np.ndarray,
    f_inner: np.ndarray,
    f_outer: np.ndarray | None = None,
    grad_neg_log: np.ndarray | None = None,
    hyper: Hyper = Hyper(),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dL/da, dL/db [K, n] and the loss [K] of K boxes, as in ALGORITHMS.md.

    f_inner [K, 2^n]: f at the corners of D = [a, b]; f_outer [K, 2^n]: f at
    the corners of the outer box E (oir_b); grad_neg_log [K, 2^n, n]: the
    gradient of -log f at the corners of D (oir_w).
    """
    K, n = a.shape
    M = corner_masks(n)
    Mbar = 1.0 - M
    r = b - a
    vol = np.prod(r, axis=1)
    c = (vol / 2**n)[:, None]  # |D| / 2^n
    alpha, beta = hyper.alpha, hyper.beta
    if algorithm == "naive":
        ga = 2 * c * (f_inner @ Mbar.T) / r - hyper.lam * r
        gb = -2 * c * (f_inner @ M.T) / r + hyper.lam * r
        loss = -c[:, 0] * f_inner.sum(1) + hyper.lam / 2 * (r**2).sum(1)
    elif algorithm == "oir_b":
        q = (1 + alpha) ** (n - 1)
        Q = q * ((1 + alpha / 2) * M + (alpha / 2) * Mbar)
        Qbar = q * ((1 + alpha / 2) * Mbar + (alpha / 2) * M)
        ga = 2 * c / r * (2 * f_inner @ Mbar.T - f_outer @ Qbar.T)
        gb = 2 * c / r * (-2 * f_inner @ M.T + f_outer @ Q.T)
        loss = c[:, 0] * ((1 + alpha) ** n * f_outer.sum(1) - 2 * f_inner.sum(1))
    elif algorithm == "oir_w":
        G = grad_neg_log  # [K, 2^n, n]
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
    else:
        raise ValueError(f"unknown algorithm {algorithm!r}; choose from {ALGORITHMS}")
    return ga, gb, loss


# --------------------------------------------------------------- the search
def find_regions(
    f: Callable[[np.ndarray], Any],
    starts: Any,
    algorithms: Sequence[str] = ALGORITHMS,
    space: Space | None = None,
    iterations: int = 600,
    tol: float | None = None,
    *,
    step_rule: str = "faithful",
    store: str | os.PathLike | None = None,
    progress: bool = True,
    **hyper: float,
) -> xr.Dataset:
    """Grow a robust box around each start with each algorithm.

    ``f`` maps points [B, n] to scores [B]; OIR_W uses ``f.gradient`` when it
    exists (autograd through a differentiable renderer, else what f itself
    does) and central differences of f otherwise. ``starts`` are points of
    ``space`` (default ``f.space``). ``iterations`` steps are taken
    (faithfully, with the paper's defaults); with ``tol``, a box stops when
    its bounds move less than ``tol`` for two steps. ``step_rule="adaptive"``
    follows the same gradient flow to the same horizon (``iterations``
    faithful steps) in fewer, larger steps, and stops a box once its
    remaining motion would be under ``tol`` (default 1e-3 of the smallest
    range). Hyper-parameters: :class:`Hyper`.

    With ``store`` (a ``.nc`` path) the search is kept: its state is saved
    every few seconds and when it is interrupted (Ctrl-C, an error), the
    same call resumes from the last saved step, a finished search is read
    back, and a store made with other settings is refused.

    Returns an ``xarray.Dataset`` over ``start``, ``algorithm``, ``param``
    (and ``iteration`` for the traces): ``lower``, ``upper``, ``lower_trace``,
    ``upper_trace``, ``loss``, ``queries``, ``converged``, ``iterations``.
    """
    space = space or getattr(f, "space", None)
    if space is None:
        raise ValueError("find_regions needs a Space: pass space=, or an f with a .space (a SemanticFunction)")
    algorithms = tuple(algorithms) if not isinstance(algorithms, str) else (algorithms,)
    unknown = [x for x in algorithms if x not in ALGORITHMS]
    if unknown or not algorithms:
        raise ValueError(f"unknown algorithm(s) {unknown}; choose from {ALGORITHMS}")
    if step_rule not in STEP_RULES:
        raise ValueError(f"unknown step_rule {step_rule!r}; choose from {STEP_RULES}")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    try:
        h = Hyper(**hyper)
    except TypeError:
        raise TypeError(f"unknown hyper-parameters {sorted(set(hyper) - {f.name for f in fields(Hyper)})}") from None
    if step_rule == "adaptive" and tol is None:
        tol = 1e-3 * float(space.widths.min())
    u0 = space.points(starts)
    search = _Search(f, space, algorithms, h, step_rule, tol)
    if store is None:
        return search.run(u0, iterations, progress)
    settings = {**_settings(f, space, {}), "starts": u0.tolist(), "algorithms": list(algorithms), "iterations": iterations,
                "tol": tol, "step_rule": step_rule, "hyper": asdict(h)}
    return _run_stored(search, u0, iterations, progress, Path(store), _fingerprint(settings))


def _run_stored(search: "_Search", u0: np.ndarray, iterations: int, progress: bool, store: Path, fingerprint: str) -> xr.Dataset:
    """A search kept in ``store``: read back when finished, resumed from its checkpoint, else run and saved."""
    if store.suffix != ".nc":
        raise ValueError(f"a region search's store is a .nc file, got {store}")
    if store.exists():
        with xr.open_dataset(store) as done:
            if done.attrs.get("fingerprint") != fingerprint:
                raise ValueError(f"{store} holds a region search with other settings; semkit will not mix them. "
                                 f"Use another store, or delete {store} to start again.")
            return done.load()
    checkpoint = _Checkpoint(store.with_name(store.name + ".partial.npz"), fingerprint)
    result = search.run(u0, iterations, progress, checkpoint)
    result.attrs["fingerprint"] = fingerprint
    tmp = store.with_name(f".{store.name}.tmp")
    result.to_netcdf(tmp)
    os.replace(tmp, store)
    checkpoint.path.unlink(missing_ok=True)
    return result


#: Seconds between two saves of a stored region search (it is saved when interrupted too).
CHECKPOINT_SECONDS = 10.0


class _Checkpoint:
    """The saved state of a region search (an .npz written whole, then renamed into place)."""

    def __init__(self, path: Path, fingerprint: str) -> None:
        self.path, self.fingerprint = path, fingerprint

    def load(self) -> dict[str, np.ndarray] | None:
        if not self.path.exists():
            return None
        with np.load(self.path) as data:
            if str(data["fingerprint"]) != self.fingerprint:
                raise ValueError(f"{self.path} is a region search with other settings; delete it to start again")
            return {k: data[k] for k in data.files if k != "fingerprint"}

    def save(self, state: dict[str, np.ndarray]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp.npz")
        np.savez(tmp, fingerprint=np.array(self.fingerprint), **state)
        os.replace(tmp, self.path)


class _Search:
    """The state of all boxes (S starts x A algorithms) and their batched updates."""

    def __init__(self, f, space: Space, algorithms, hyper: Hyper, step_rule: str, tol: float | None) -> None:
        self.f, self.space, self.algorithms, self.h, self.step_rule, self.tol = f, space, algorithms, hyper, step_rule, tol
        self.lower, self.upper, self.periodic = space.lower, space.upper, space.periodic
        self.period = np.where(self.periodic, space.widths, np.inf)
        self.gradient = getattr(f, "gradient", None)
        if "oir_w" in algorithms:
            self.gradient_source = getattr(f, "gradient_method", None) or (
                "f.gradient" if self.gradient else f"central differences (semkit.regions, step {hyper.fd_step:g})"
            )
        else:
            self.gradient_source = "not used"

    def run(self, u0: np.ndarray, iterations: int, progress: bool, checkpoint: "_Checkpoint | None" = None) -> xr.Dataset:
        from tqdm.auto import tqdm

        state = (checkpoint.load() if checkpoint is not None else None) or self._initial(u0, iterations)
        bar = tqdm(total=iterations, initial=int(state["t"]), desc="robust regions", unit="step", disable=not progress, leave=False)
        saved = time.monotonic()
        try:
            while state["t"] < iterations and state["active"].any():
                state = self._step(state, iterations)
                bar.update()
                if checkpoint is not None and time.monotonic() - saved > CHECKPOINT_SECONDS:
                    checkpoint.save(state)
                    saved = time.monotonic()
        except BaseException:
            if checkpoint is not None:  # every finished step is kept; the same call resumes from it
                checkpoint.save(state)
                print(f"\nstopped at step {int(state['t'])} of {iterations}; saved in {checkpoint.path}: rerun to resume",
                      file=sys.stderr)
            raise
        finally:
            bar.close()
        used = int(state["steps_taken"].max())
        return self._dataset(
            u0, state["a"], state["b"], state["lower_trace"][:used], state["upper_trace"][:used], state["loss_trace"][:used],
            state["queries"], state["converged"], state["steps_taken"],
        )

    def _initial(self, u0: np.ndarray, iterations: int) -> dict[str, np.ndarray]:
        """Every box at its start, nothing evaluated yet."""
        h = self.h
        S, A, n = len(u0), len(self.algorithms), self.space.n
        a, b = self._repair(np.repeat(u0[:, None, :], A, axis=1) - h.start_width, np.repeat(u0[:, None, :], A, axis=1) + h.start_width)
        return {
            "t": np.array(0),
            "a": a,  # [S, A, n]
            "b": b,
            "lower_trace": np.full((iterations, S, A, n), np.nan),  # an adaptive run takes fewer steps
            "upper_trace": np.full((iterations, S, A, n), np.nan),
            "loss_trace": np.full((iterations, S, A), np.nan),
            "queries": np.zeros((S, A), dtype=np.int64),
            "active": np.ones((S, A), dtype=bool),
            "converged": np.zeros((S, A), dtype=bool),
            "steps_taken": np.zeros((S, A), dtype=np.int64),
            "still": np.zeros((S, A), dtype=np.int64),  # consecutive steps that moved less than tol
            "elapsed": np.zeros((S, A)),  # adaptive rule: faithful iterations covered so far ...
            "position": np.full((S, A, 2 * n), np.nan),  # ... the bounds at the last step ...
            "velocity": np.zeros((S, A, 2 * n)),  # ... and their velocities
        }

    def _step(self, state: dict[str, np.ndarray], iterations: int) -> dict[str, np.ndarray]:
        """One step of every active box; returns the next state.

        The given state stays as it was but for row t of the traces, which the
        next step rewrites: an interruption mid-step leaves a state to resume from.
        """
        h = self.h
        st = {k: v if k.endswith("_trace") else v.copy() for k, v in state.items()}
        t, a, b, active = int(st["t"]), st["a"], st["b"], st["active"]
        st["lower_trace"][t] = np.where(active[..., None], a, np.nan)
        st["upper_trace"][t] = np.where(active[..., None], b, np.nan)
        ga, gb, loss, cost = self._gradients(a, b, active)
        st["loss_trace"][t][active] = loss[active]
        st["queries"] += cost
        if self.step_rule == "faithful":
            new_a, new_b = a - h.learning_rate * ga, b - h.learning_rate * gb
        else:
            new_a, new_b, leap, settled, st["position"], st["velocity"] = self._leap(
                a, b, ga, gb, iterations - st["elapsed"], st["position"], st["velocity"]
            )
            st["elapsed"] += np.where(active, leap, 0.0)
        new_a, new_b = self._repair(np.where(active[..., None], new_a, a), np.where(active[..., None], new_b, b))
        moved = np.maximum(np.abs(new_a - a).max(-1), np.abs(new_b - b).max(-1))
        st["a"], st["b"] = new_a, new_b
        st["steps_taken"] += active
        if self.step_rule == "adaptive":
            st["converged"] |= active & settled
            active &= st["elapsed"] < iterations - 1e-9
        elif self.tol is not None:
            st["still"] = np.where(moved < self.tol, st["still"] + 1, 0)
            st["converged"] |= active & (st["still"] >= 2)
        st["active"] = active & ~st["converged"]
        st["t"] = np.array(t + 1)
        return st

    def _leap(self, a, b, ga, gb, remaining, last_position, last_velocity):
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
        h = self.h
        velocity = -h.learning_rate * np.concatenate([ga, gb], axis=-1)  # per faithful iteration
        # a bound held at the edge of a bounded parameter does not move, whatever its gradient says
        n = a.shape[-1]
        held = np.concatenate(
            [~self.periodic & (a <= self.lower) & (velocity[..., :n] < 0), ~self.periodic & (b >= self.upper) & (velocity[..., n:] > 0)],
            axis=-1,
        )
        velocity = np.where(held, 0.0, velocity)
        va, vb = velocity[..., :n], velocity[..., n:]
        r = b - a
        half = r / 2
        centre_rate = (va + vb) / 2
        log_rate = (vb - va) / r
        allowed = np.maximum(h.max_move * r, h.min_move * self.space.widths)  # [S, A, n]
        grow_limit = np.minimum(np.log1p(allowed / half), h.max_log_growth) / np.maximum(np.abs(log_rate), 1e-300)
        shift_limit = allowed / np.maximum(np.abs(centre_rate), 1e-300)
        # stiffness: v ~ -kappa (x - x*) along each bound; a leap of 1/kappa lands on x*
        position = np.concatenate([a, b], axis=-1)
        dx, dv = position - last_position, velocity - last_velocity
        with np.errstate(divide="ignore", invalid="ignore"):
            kappa = np.where(np.abs(dx) > 1e-9, -dv / dx, 0.0)
        stiff_limit = np.where(kappa > 0, 1.0 / np.where(kappa > 0, kappa, 1.0), np.inf).min(-1)
        leap = np.minimum(np.minimum(grow_limit, shift_limit).min(-1), np.minimum(stiff_limit, h.max_leap))
        leap = np.clip(np.minimum(leap, remaining), 0.0, None)
        leap = np.where(remaining >= 1, np.maximum(leap, 1.0), leap)
        rest = np.maximum(remaining, 0.0)[..., None]
        future = np.abs(centre_rate) * rest + half * np.abs(np.expm1(np.clip(rest * log_rate, None, 50.0)))
        settled = (future < self.tol).all(-1) if self.tol is not None else np.zeros(leap.shape, dtype=bool)
        leap = np.where(settled, rest[..., 0], leap)  # a settled box makes its remaining (tiny) motion at once
        k = leap[..., None]
        small = (r < h.min_move * self.space.widths) | settled[..., None]  # geometric: exact in log-width
        centre = (a + b) / 2 + k * centre_rate
        new_half = np.where(small, half * np.exp(np.clip(k * log_rate, None, 50.0)), half + k * half * log_rate)
        return centre - new_half, centre + new_half, leap, settled, position, velocity

    def _repair(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Clip bounded parameters and keep b >= a + epsilon; periodic ones stay unwrapped, width <= period."""
        eps = self.h.epsilon
        lo, hi, per = self.lower, self.upper, self.periodic
        a = np.where(per, a, np.clip(a, lo, hi))
        b = np.where(per, b, np.clip(b, lo, hi))
        b = np.maximum(b, a + eps)
        a = np.where(~per & (b > hi), hi - eps, a)
        b = np.where(~per, np.minimum(b, hi), b)
        # periodic: at most one period wide, and the lower bound in [low, high) (the same box, re-labelled)
        wide = per & (b - a > self.period)
        centre = (a + b) / 2
        a = np.where(wide, centre - self.period / 2, a)
        b = np.where(wide, centre + self.period / 2, b)
        shift = np.where(per, np.floor((a - lo) / np.where(per, self.period, 1.0)) * np.where(per, self.period, 0.0), 0.0)
        return a - shift, b - shift

    def _gradients(self, a, b, active):
        """Loss gradients and losses of all active boxes, from one batched call of f."""
        S, A, n = a.shape
        ga, gb = np.zeros_like(a), np.zeros_like(b)
        loss = np.full((S, A), np.nan)
        cost = np.zeros((S, A), dtype=np.int64)
        plans = [self._plan(name, j, a, b, active) for j, name in enumerate(self.algorithms)]
        plans = [p for p in plans if p is not None]
        points = np.concatenate([q for p in plans for q in p["points"]]) if plans else np.empty((0, n))
        values = self._evaluate(points)
        offset = 0
        for p in plans:
            sizes = [len(q) for q in p["points"]]
            parts = np.split(values[offset : offset + sum(sizes)], np.cumsum(sizes)[:-1])
            offset += sum(sizes)
            K, C = p["inner"].shape[:2]
            f_inner = parts[0].reshape(K, C)
            f_outer = parts[1].reshape(K, C) if p["name"] == "oir_b" else None
            grad, extra = None, 0
            if p["name"] == "oir_w":
                df, extra = self._corner_gradients(p, parts[1:])
                grad = -df / np.maximum(f_inner, self.h.score_floor)[..., None]  # gradient of -log f
            idx, j = p["idx"], p["j"]
            ga[idx, j], gb[idx, j], loss[idx, j] = loss_gradients(p["name"], a[idx, j], b[idx, j], f_inner, f_outer, grad, self.h)
            cost[idx, j] = sum(sizes) // K + extra
        return ga, gb, loss, cost

    def _plan(self, name: str, j: int, a, b, active) -> dict | None:
        """The points one algorithm needs this step: inner corners, and outer corners or difference points."""
        idx = np.flatnonzero(active[:, j])
        if len(idx) == 0:
            return None
        aj, bj = a[idx, j], b[idx, j]
        inner = _corners(aj, bj)
        plan = {"name": name, "j": j, "idx": idx, "inner": inner, "points": [inner.reshape(-1, inner.shape[-1])]}
        if name == "oir_b":
            margin = self.h.alpha / 2 * (bj - aj)
            plan["points"].append(_corners(aj - margin, bj + margin).reshape(-1, aj.shape[-1]))
        elif name == "oir_w" and self.gradient is None:
            plus, minus = self._difference_points(plan["points"][0])
            plan["points"] += [plus.reshape(-1, aj.shape[-1]), minus.reshape(-1, aj.shape[-1])]
            plan["span"] = np.einsum("pii->pi", plus - minus)
        return plan

    def _evaluate(self, points: np.ndarray) -> np.ndarray:
        """f at points (periodic coordinates wrapped, bounded ones clipped into the Space)."""
        inside = self.space.wrap(np.where(self.periodic, points, np.clip(points, self.lower, self.upper)))
        values = np.asarray(self.f(inside), dtype=float).reshape(-1)
        if values.shape != (len(points),):
            raise ValueError(f"f returned {values.size} scores for {len(points)} points")
        bad = ~np.isfinite(values)
        if bad.any():
            raise ValueError(f"f returned NaN or infinite scores at {int(bad.sum())} point(s), first at {points[np.argmax(bad)]}")
        return values

    def _corner_gradients(self, plan: dict, parts: list[np.ndarray]) -> tuple[np.ndarray, int]:
        """Gradients of f at the inner corners [K, 2^n, n], and the extra queries they cost per box."""
        K, C, n = plan["inner"].shape
        corners = plan["inner"].reshape(-1, n)
        if self.gradient is None:  # central differences, evaluated in the batched call
            plus, minus = parts[0].reshape(-1, n), parts[1].reshape(-1, n)
            return ((plus - minus) / plan["span"]).reshape(K, C, n), 0
        before = getattr(self.f, "queries", None)
        inside = self.space.wrap(np.where(self.periodic, corners, np.clip(corners, self.lower, self.upper)))
        df = np.asarray(self.gradient(inside), dtype=float).reshape(K, C, n)
        after = getattr(self.f, "queries", None)
        return df, (after - before) // K if before is not None else C

    def _difference_points(self, corners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Points [P, n, n] one fd_step either side of each corner, one-sided where a bound stops a step."""
        steps = np.eye(corners.shape[1]) * self.h.fd_step
        plus = corners[:, None, :] + steps[None]
        minus = corners[:, None, :] - steps[None]
        plus = np.where(self.periodic, plus, np.minimum(plus, self.upper))
        minus = np.where(self.periodic, minus, np.maximum(minus, self.lower))
        return plus, minus

    def _dataset(self, u0, a, b, lower_trace, upper_trace, loss_trace, queries, converged, steps_taken) -> xr.Dataset:
        from . import __version__

        names = list(self.space.names)
        coords = {
            "start": np.arange(len(u0)),
            "algorithm": list(self.algorithms),
            "param": names,
            "iteration": np.arange(len(loss_trace)),
            "start_point": (("start", "param"), u0),
            "units": ("param", [self.space.units[n] for n in names]),
        }
        dims = ("start", "algorithm", "param")
        tdims = ("iteration",) + dims
        return xr.Dataset(
            {
                "lower": (dims, a, {"long_name": "lower bound of the box"}),
                "upper": (dims, b, {"long_name": "upper bound of the box (periodic bounds are unwrapped)"}),
                "lower_trace": (tdims, lower_trace),
                "upper_trace": (tdims, upper_trace),
                "loss": (tdims[:-1], loss_trace),
                "queries": (dims[:-1], queries, {"long_name": "points evaluated (gradients included)"}),
                "converged": (dims[:-1], converged, {"long_name": "stopped before the last iteration: its bounds no longer moved (tol)"}),
                "iterations": (dims[:-1], steps_taken, {"long_name": "steps taken"}),
            },
            coords=coords,
            attrs={
                "title": "Robust regions",
                "step_rule": self.step_rule,
                "tol": self.tol if self.tol is not None else "none",
                "gradient_source": self.gradient_source,
                **asdict(self.h),
                "space": json.dumps(self.space.to_dict()),
                "semkit_version": __version__,
                **_describe(self.f),
            },
        )


def _corners(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Corners [K, 2^n, n] of boxes [K, n]."""
    M = corner_masks(a.shape[-1])
    return a[:, None, :] + M.T[None] * (b - a)[:, None, :]


def _describe(f) -> dict[str, Any]:
    describe = getattr(f, "describe", None)
    if describe is None:
        return {"function": f"{getattr(f, '__module__', '?')}.{getattr(f, '__qualname__', type(f).__qualname__)}"}
    info = describe()
    return {k: info[k] for k in ("label", "label_name", "network", "shape") if k in info}


# ------------------------------------------------------------------ metrics
def _space_of(data: xr.Dataset, space: Space | None) -> Space:
    if space is not None:
        return space
    if "space" not in data.attrs:
        raise ValueError("these results record no Space: pass space=")
    return Space.from_dict(json.loads(data.attrs["space"]))


def volume_ratio(regions: xr.Dataset, space: Space | None = None) -> xr.DataArray:
    """|D| / |Omega| of every final box (dims of ``regions`` less ``param``)."""
    space = _space_of(regions, space)
    widths = xr.DataArray(space.widths, dims="param", coords={"param": list(space.names)})
    return ((regions.upper - regions.lower) / widths).prod("param")


def srvr(regions: xr.Dataset, space: Space | None = None) -> xr.DataArray:
    """Semantic Robustness Volume Ratio: the mean over starts of |D| / |Omega|.

    One value per algorithm (and per network and shape where ``regions``
    has those dims: average them for the paper's per-network numbers).
    """
    out = volume_ratio(regions, space).mean("start")
    out.attrs = {"long_name": "SRVR (mean box volume / volume of the Space)", "units": "1"}
    return out.rename("srvr")


def check_regions(regions: xr.Dataset, semantic_map: xr.Dataset, threshold: float | None = None) -> xr.Dataset:
    """Each box against a dense map of the same function.

    For every start and algorithm: ``points`` (grid points inside the box),
    ``fraction_correct`` (of those, the share classified correctly),
    ``mean_score`` (the mean score inside) and ``iou``, the intersection over
    union, in grid points, of the box with the connected region of correct
    points that holds the start (neighbours across a periodic parameter's
    period are connected). "Correct" is the map's ``correct`` variable, or
    ``score >= threshold`` (default 0.5) for maps of plain functions.
    """
    space = _space_of(regions, None)
    names = list(space.names)
    score = semantic_map["score"].transpose(*names)
    if threshold is None and "correct" in semantic_map:
        good = semantic_map["correct"].transpose(*names).values.astype(bool)
    else:
        good = score.values >= (0.5 if threshold is None else threshold)
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
            "fraction_correct": (dims, out["fraction_correct"], {"long_name": "share of the box's map points classified correctly"}),
            "mean_score": (dims, out["mean_score"], {"long_name": "mean score inside the box"}),
            "iou": (dims, out["iou"], {"long_name": "IoU with the correct region around the start"}),
        },
        coords={"start": regions.start.values, "algorithm": regions.algorithm.values},
    )


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
