"""Randomized smoothing over the semantic space (Cohen, Rosenfeld & Kolter 2019, "Certified Adversarial Robustness
via Randomized Smoothing"), and certified accuracy.

[`Smoothed`][semkit.Smoothed] wraps f into the smoothed network g: at a view x, g answers
what f answers most often at x + sigma * eps, eps ~ N(0, I), sigma per
parameter in its own units. ``certify`` states, with confidence c per view,
g's answer there and a radius R such that g keeps that answer at every view
x' with ||(x' - x) / sigma||_2 < R (the whitened L2 radius, in units of
sigma); ``predict`` answers or abstains. Both speak of g, never of f: a
network can fail at views inside a certified radius of g.

[`certified_accuracy`][semkit.certified_accuracy] turns certificates of many views into the
smoothing literature's curve: the share of views where g is right with a
radius of at least r.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from ..criterion import Criterion
from ..function import SemanticFunctions, as_function
from ..space import Space
from ..validation import check_confidence, check_count
from .records import space_json, state_attr

#: g's answer where it abstains.
ABSTAIN = -1

BOUNDS_NOTE = ("noise wraps on periodic parameters and is clipped to the bounds on bounded ones (Space and "
               "SemanticFunction refuse views beyond a bound): g smooths f(clip(x)), and its certificate holds for "
               "that function")


class Smoothed:
    """The smoothed network g(x) = the answer f gives most often at x + sigma * eps, eps ~ N(0, I).

    `certify` and `predict` speak of g, never of f: a network can fail at views inside a certified
    radius of g. Noise wraps on periodic parameters; on bounded ones the noisy view is clipped to the bound (Space
    and SemanticFunction refuse views beyond it), so g smooths f(clip(x)): the choice is recorded in results' attrs
    (``bounds``).

    Parameters
    ----------
    f : callable or SemanticFunctions
        A [`SemanticFunction`][semkit.SemanticFunction] (g answers its top-1 class), a [`SemanticFunctions`][semkit.SemanticFunctions] group
        (one g per network; each noisy view rendered once for all of them), or any score function (points ->
        scores; give ``space`` and ``criterion``).
    sigma : float, sequence of float or mapping of str to float
        The noise's standard deviation per parameter in its units: one number for every parameter, a sequence in the
        Space's order, or a mapping by name (every parameter).
    criterion : Criterion or str, optional
        With one (e.g. ``"score >= 0.5"`` or ``"top-5"``) g answers pass (1) or fail (0) instead of a class; a plain
        score function needs one.
    space : Space, optional
        The Space; None: ``f.space`` (a group has its own: not given here).
    batch_size : int, default 1024
        Noisy views evaluated at a time (f renders them in its own batches); the noise is drawn in one stream, so
        results do not depend on it.

    Raises
    ------
    ValueError
        A score function without a criterion, a ``space`` for a group, a ``sigma`` not positive or of the wrong
        length, a ``batch_size`` below 1.
    """

    def __init__(self, f: Any, sigma: float | Sequence[float] | Mapping[str, float], *,
                 criterion: Criterion | str | None = None, space: Space | None = None, batch_size: int = 1024) -> None:
        self.group = isinstance(f, SemanticFunctions)
        if self.group:
            if space is not None and space != f.space:
                raise ValueError("a SemanticFunctions group has its own Space: build it with space=, not Smoothed")
            first = f.functions[0]
            self.f, self.space, self.networks = f, f.space, list(f.networks)
        else:
            first = self.f = as_function(f, space=space)
            self.space = first.space
        self.info = first.describe()
        if not self.group:
            self.networks = [str(self.info["network"])] if "network" in self.info else None
        if criterion is None and "label" not in self.info:
            raise ValueError("this f gives scores only, so it has no classes for g to answer: pass a criterion (e.g. "
                             "criterion='score >= 0.5'; g then answers pass or fail)")
        self.criterion = None if criterion is None else Criterion.resolve(criterion, f=first)
        self.label = int(self.info["label"]) if self.criterion is None else 1
        self.sigma = self.space.per_parameter(sigma, "sigma (the noise's standard deviation)")
        self.batch_size = check_count(batch_size, "batch_size")

    def __repr__(self) -> str:
        return f"Smoothed({self._describe_sigma()}, answer={self.answer!r})"

    @property
    def answer(self) -> str:
        """What g answers: the top-1 class, or pass/fail under the criterion."""
        return "top-1 class" if self.criterion is None else f"pass (1) / fail (0) under {self.criterion.name}"

    # ------------------------------------------------------------ the two procedures
    def predict(self, points: Any, n: int = 1000, confidence: float = 0.999, random_state: Any = 0,
                progress: bool = True) -> xr.Dataset:
        """g's answer at each point, or -1 (abstain) where the two most frequent answers are not told apart.

        Cohen et al.'s PREDICT: a binomial test at level 1 - ``confidence`` of the two most frequent answers of
        ``n`` noisy views; an answer other than -1 is g's with probability at least ``confidence``.

        Parameters
        ----------
        points : array or dict or Dataset
            Points of the Space, ``[B, n]`` in its order or named.
        n : int
            Noisy views per point.
        confidence : float
            The probability, per point, that an answer other than -1 is g's; in (0, 1).
        random_state : int or numpy Generator, optional
            Draws the noise: the same value gives the same answers.
        progress : bool
            Show a progress bar.

        Returns
        -------
        Dataset
            Over ``point`` (and ``network`` for a group): ``prediction`` (-1: abstain), ``count`` of the most frequent
            answer, the test's ``p_value`` and ``queries``; the points' coordinates as coords, the guarantee in attrs.

        Raises
        ------
        ValueError
            If ``n`` is not a positive whole number or ``confidence`` is not in (0, 1).
        TypeError
            If one of them is no number (text, None, a bool).
        """
        pts = self.space.points(points)
        check_count(n, "n", what="noisy views")
        check_confidence(confidence)
        (counts,) = self._counts(pts, [n], np.random.default_rng(random_state), progress, "predict")
        order = np.argsort(-counts, axis=2, kind="stable")
        top = np.take_along_axis(counts, order[..., :2], axis=2)  # counts hold at least two answers
        p_value = _two_sided_half(top[..., 0], top[..., 1])
        prediction = np.where(p_value <= 1 - confidence, order[..., 0], ABSTAIN)
        ds = self._dataset(pts, {"prediction": prediction, "count": top[..., 0], "p_value": p_value,
                                 "queries": np.full(prediction.shape, n)})
        ds["prediction"].attrs = {"long_name": f"g's answer ({self.answer}); -1: abstain"}
        ds.attrs.update(self._attrs(confidence, n0=0, n=n, views=len(pts), random_state=random_state))
        ds.attrs["guarantee"] = (f"with probability at least {confidence:g} per point, an answer other than -1 is the "
                                 f"answer of the smoothed network g ({self._describe_sigma()}); this speaks of g, not of "
                                 "the network itself")
        ds.attrs["procedure"] = "Cohen et al. (2019) PREDICT: two-sided binomial test of the two most frequent answers"
        return ds

    def certify(self, points: Any, n0: int = 100, n: int = 10_000, confidence: float = 0.999,
                random_state: Any = 0, progress: bool = True) -> xr.Dataset:
        """g's answer at each point and the whitened L2 radius within which g keeps it (Cohen et al.'s CERTIFY).

        ``n0`` noisy views choose the answer, ``n`` fresh ones bound its probability from below (one-sided
        Clopper-Pearson, ``p_lower``); where the bound is below 1/2 g abstains (prediction -1, radius 0), else
        ``radius`` = Phi^-1(p_lower) in units of sigma: g answers ``prediction`` at every x' with
        ||(x' - x) / sigma||_2 < radius, with confidence ``confidence`` per point.

        Parameters
        ----------
        points : array or dict or Dataset
            Points of the Space, ``[B, n]`` in its order or named.
        n0 : int
            Noisy views per point that choose the answer.
        n : int
            Fresh noisy views per point that bound the answer's probability.
        confidence : float
            The confidence, per point, of the certificate; in (0, 1).
        random_state : int or numpy Generator, optional
            Draws the noise: the same value gives the same certificates.
        progress : bool
            Show a progress bar.

        Returns
        -------
        Dataset
            Over ``point`` (and ``network`` for a group): ``prediction`` (-1: abstain), ``radius`` (units of sigma),
            ``p_lower``, ``correct`` (g's answer is the true class, or pass) and ``queries``; the points' coordinates
            as coords, the guarantee in attrs.

        Raises
        ------
        ValueError
            If ``n0`` or ``n`` is not a positive whole number or ``confidence`` is not in (0, 1).
        TypeError
            If one of them is no number (text, None, a bool).
        """
        from scipy.stats import beta, norm

        pts = self.space.points(points)
        check_count(n0, "n0", what="noisy views")
        check_count(n, "n", what="noisy views")
        check_confidence(confidence)
        selection, estimation = self._counts(pts, [n0, n], np.random.default_rng(random_state), progress, "certify")
        chosen = selection.argmax(axis=2)
        hits = np.take_along_axis(estimation, chosen[..., None], axis=2)[..., 0]
        p_lower = np.where(hits > 0, beta.ppf(1 - confidence, np.maximum(hits, 1), n - hits + 1), 0.0)
        abstain = p_lower < 0.5
        prediction = np.where(abstain, ABSTAIN, chosen)
        radius = np.where(abstain, 0.0, norm.ppf(np.where(abstain, 0.5, p_lower)))
        ds = self._dataset(pts, {"prediction": prediction, "radius": radius, "p_lower": p_lower,
                                 "correct": prediction == self.label, "queries": np.full(prediction.shape, n0 + n)})
        ds["prediction"].attrs = {"long_name": f"g's answer ({self.answer}); -1: abstain"}
        ds["radius"].attrs = {"long_name": "certified whitened L2 radius ||(x' - x) / sigma||_2", "units": "sigma"}
        ds["p_lower"].attrs = {"long_name": f"lower {confidence:g} confidence bound of P(f answers prediction)"}
        ds["correct"].attrs = {"long_name": "g answers the true class" if self.criterion is None else "g answers pass"}
        ds.attrs.update(self._attrs(confidence, n0=n0, n=n, views=len(pts), random_state=random_state))
        ds.attrs["guarantee"] = (f"with confidence {confidence:g} per point, the smoothed network g "
                                 f"({self._describe_sigma()}) answers `prediction` at every view within the whitened L2 "
                                 "radius `radius` (||(x' - x) / sigma||_2 < radius); this speaks of g, not of the network "
                                 "itself")
        ds.attrs["procedure"] = "Cohen et al. (2019) CERTIFY: n0 views choose the answer, n fresh views bound its probability"
        return ds

    # ------------------------------------------------------------ internals
    def _counts(self, pts: np.ndarray, sizes: Sequence[int], rng: np.random.Generator, progress: bool,
                desc: str) -> list[np.ndarray]:
        """Per segment (``sizes`` noisy views of every point), counts of each answer [P, networks, answers]."""
        from tqdm.auto import tqdm

        per_point = int(sum(sizes))
        edges = np.cumsum([0, *sizes])
        total = len(pts) * per_point
        width = 1 if self.networks is None else len(self.networks)
        counts = [np.zeros((len(pts), width, 2), dtype=np.int64) for _ in sizes]
        with tqdm(total=total, desc=f"Smoothed.{desc}", disable=not progress, leave=False) as bar:
            for start in range(0, total, self.batch_size):
                flat = np.arange(start, min(start + self.batch_size, total))
                owner, within = np.divmod(flat, per_point)
                eps = rng.standard_normal((len(flat), self.space.n))
                answers = self._answers(self.space.clip(pts[owner] + eps * self.sigma))
                segment = np.searchsorted(edges, within, side="right") - 1
                for s in range(len(sizes)):
                    mine = segment == s
                    counts[s] = _add_counts(counts[s], owner[mine], answers[mine])
                bar.update(len(flat))
        size = max(c.shape[2] for c in counts)
        return [np.pad(c, ((0, 0), (0, 0), (0, size - c.shape[2]))) for c in counts]

    def _answers(self, points: np.ndarray) -> np.ndarray:
        """f's answer at each point [m, networks]: its top-1 class, or 1/0 for pass/fail under the criterion."""
        k = 1 if self.criterion is None else self.criterion.k
        evaluations = list(self.f.evaluate(points, k=k).values()) if self.group else [self.f.evaluate(points, k=k)]
        out = []
        for ev in evaluations:
            if self.criterion is not None:
                out.append(self.criterion.passes(ev.score, ev.topk, ev.topk_prob).astype(np.int64))
            elif ev.top1 is None:
                raise ValueError("this f predicts no classes: pass a criterion (g then answers pass or fail)")
            else:
                out.append(np.asarray(ev.top1, dtype=np.int64))
        return np.stack(out, axis=1)

    def _dataset(self, pts: np.ndarray, values: dict[str, np.ndarray]) -> xr.Dataset:
        coords: dict[str, Any] = {name: ("point", pts[:, i]) for i, name in enumerate(self.space.names)}
        coords["point"] = np.arange(len(pts))
        if self.group:
            data = {k: (("network", "point"), np.asarray(v).T) for k, v in values.items()}
            coords["network"] = self.networks
        else:
            data = {k: ("point", np.asarray(v)[:, 0]) for k, v in values.items()}
        coords.update({key: self.info[key] for key in ("network", "shape") if key in self.info and key not in coords})
        ds = xr.Dataset(data, coords=coords)
        for i, p in enumerate(self.space.parameters):
            ds[p.name].attrs = {"units": p.units, "sigma": float(self.sigma[i])}
        return ds

    def _attrs(self, confidence: float, n0: int, n: int, views: int, random_state: Any) -> dict[str, Any]:
        judged = self.criterion if self.criterion is not None else Criterion.top1(self.label)  # correct: g's top-1
        label = {"label": int(self.info["label"]), "label_name": str(self.info.get("label_name", ""))} if "label" in self.info else {}
        noisy = views * (n0 + n)
        return {
            **judged.attrs(), **label, "answer": self.answer, "sigma": json.dumps(dict(zip(self.space.names, self.sigma.tolist()))),
            "bounds": BOUNDS_NOTE, "confidence": confidence, "n0": int(n0), "n": int(n),
            "queries": noisy * (1 if self.networks is None else len(self.networks)), "noisy_views": noisy,
            "space": space_json(self.space), "random_state": state_attr(random_state),
        }

    def _describe_sigma(self) -> str:
        units = self.space.units
        return "Gaussian noise sigma " + ", ".join(f"{name}={s:g}{(' ' + units[name]) if units[name] else ''}"
                                                   for name, s in zip(self.space.names, self.sigma))


def certified_accuracy(certificates: xr.Dataset, radius: float | Sequence[float] | None = None, *,
                       confidence: float = 0.95, sampled: bool = True) -> xr.DataArray:
    """The share of views where the smoothed network g is right with a certified radius >= r, for each r.

    Radii are whitened, in units of sigma; the share is over the certificates' other dims (``network``, ``shape``).
    Each count also rests on its certificates, each true with their own confidence.

    Parameters
    ----------
    certificates : Dataset
        From [`Smoothed.certify`][semkit.Smoothed.certify] (several shapes: ``xr.concat(..., "shape")``): its ``correct`` and ``radius``.
    radius : float or sequence of float, optional
        The radii r, non-negative; None: 0 to the largest radius certified (at least 1), in 25 steps.
    confidence : float, default 0.95
        With ``sampled``: the level of the Clopper-Pearson interval over the views.
    sampled : bool, default True
        The points are a uniform sample of the Space (the share has an interval); False: they are the views asked
        about (a grid) and the share is about them alone.

    Returns
    -------
    DataArray
        ``certified_accuracy`` over ``radius`` (units sigma) and the certificates' other dims; coords ``ci_low`` and
        ``ci_high`` when sampled; attrs ``views``, ``confidence``, ``certificate_confidence``, ``queries``, the
        smoothing's settings and ``guarantee``.

    Raises
    ------
    ValueError
        Certificates without ``correct`` or ``radius``, a negative radius, a confidence outside (0, 1).
    """
    from scipy.stats import beta

    for name in ("correct", "radius"):
        if name not in certificates:
            raise ValueError(f"certificates have no {name!r} variable: pass the Dataset of Smoothed.certify")
    check_confidence(confidence)
    radii = certificates["radius"]
    if radius is None:
        radius = np.linspace(0.0, max(float(radii.max()), 1.0), 25)
    r = np.atleast_1d(np.asarray(radius, dtype=float))
    if not (np.isfinite(r).all() and (r >= 0).all()):
        raise ValueError(f"radius must be non-negative numbers, got {radius}")
    grid = xr.DataArray(r, dims="radius", coords={"radius": r})
    good = (certificates["correct"].astype(bool) & (radii >= grid)).transpose("radius", ...)
    views = certificates.sizes["point"]
    hits = good.sum("point")
    share = hits / views
    share.name = "certified_accuracy"
    if sampled:
        tail = (1 - confidence) / 2
        k = hits.values
        share = share.assign_coords(
            ci_low=(hits.dims, np.where(k > 0, beta.ppf(tail, np.maximum(k, 1), views - k + 1), 0.0)),
            ci_high=(hits.dims, np.where(k < views, beta.ppf(1 - tail, k + 1, np.maximum(views - k, 1)), 1.0)))
    share["radius"].attrs = {"units": "sigma", "long_name": "whitened L2 radius"}
    keep = ("criterion", "criterion_spec", "answer", "sigma", "bounds", "n0", "n", "label", "label_name", "space")
    share.attrs = {key: certificates.attrs[key] for key in keep if key in certificates.attrs}
    share.attrs.update(
        long_name="share of views where the smoothed network g is right with a certified radius >= r",
        views=int(views), sampled=bool(sampled), confidence=confidence,
        certificate_confidence=certificates.attrs.get("confidence", float("nan")),
        queries=int(certificates["queries"].sum()),
        guarantee=("each counted view: with confidence certificate_confidence, g is right within the radius; "
                   + ("the share of the Space's views: Clopper-Pearson interval at confidence over the sampled views"
                      if sampled else "a statement about these views alone")) + "; this speaks of g, not of the network",
    )
    return share


def _add_counts(counts: np.ndarray, rows: np.ndarray, answers: np.ndarray) -> np.ndarray:
    """counts [P, networks, answers] plus one per (row, network, answer); widened when an answer is new."""
    if not len(rows):
        return counts
    top = int(answers.max()) + 1
    if top > counts.shape[2]:
        counts = np.pad(counts, ((0, 0), (0, 0), (0, top - counts.shape[2])))
    for j in range(answers.shape[1]):
        np.add.at(counts[:, j, :], (rows, answers[:, j]), 1)
    return counts


def _two_sided_half(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """p-values of the two-sided binomial test that ``first`` of ``first + second`` draws has probability 1/2."""
    from scipy.stats import binom

    trials = first + second
    return np.minimum(1.0, 2 * binom.cdf(np.minimum(first, second), trials, 0.5))
