"""What it means for a view to pass: one [`Criterion`][semkit.Criterion], passed everywhere.

Four kinds, each a question about the network's answer at one view:

* ``Criterion.top1()``: the true class is the top-1 answer ("top-1 correct");
* ``Criterion.topk(k)``: the true class is among the k most probable;
* ``Criterion.score(t)``: the true class's probability is at least t;
* ``Criterion.margin(m)``: the true class's probability exceeds the most
  probable other class's by at least m (a margin of 0 is top-1, a tie
  included).

Every function that judges views (verified regions, radii, robust accuracy,
worst views, decision noise, region checks, comparisons) takes
``criterion=`` (a Criterion or its name, such as ``"top-5"`` or
``"score >= 0.5"``); results name it in their attrs (``criterion``, and
``criterion_spec`` to read it back with [`Criterion.from_attrs`][semkit.Criterion.from_attrs]).
A criterion's class (``label=``) is f's own, or absent (f supplies it): f's
score is its own class's probability, so a criterion naming another class
is refused (make a SemanticFunction with that label instead).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import xarray as xr

KINDS = ("top-1", "top-k", "score", "margin")

_SCORES_ONLY = ("this f gives scores only, so a criterion on classes ({name}) cannot be checked: pass "
                "criterion='score >= t' (a view passes when its score is at least t)")


@dataclass(frozen=True)
class Criterion:
    """A pass/fail rule for one view; build it with `top1`, `topk`, `score` or `margin`.

    Parameters
    ----------
    kind : {"top-1", "top-k", "score", "margin"}, default "top-1"
        The question asked of the network's answer at a view.
    value : float, default 1.0
        k for top-k, the minimum probability for score (in [0, 1]), the margin for margin (in [-1, 1]); 1 for top-1.
    label : int, optional
        The true class index for the classes criteria; None takes it from f when the criterion is resolved.

    Raises
    ------
    ValueError
        An unknown kind, a value out of its kind's range, or a label that is not an integer >= 0.
    """

    kind: str = "top-1"
    value: float = 1.0  #: k for top-k, t for score, m for margin (1 for top-1)
    label: int | None = None  #: the true class (classes criteria; taken from f when not given)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown criterion kind {self.kind!r}: choose one of {KINDS}")
        v = self.value
        if not (isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)):
            raise ValueError(f"a criterion's value must be a finite number, got {v!r}")
        if self.kind == "score" and not 0.0 <= v <= 1.0:
            raise ValueError(f"a criterion's min_score is a probability in [0, 1], got {v!r}")
        if self.kind == "margin" and not -1.0 <= v <= 1.0:
            raise ValueError(f"a margin is a difference of probabilities in [-1, 1], got {v!r}")
        if self.kind == "top-k" and (v != int(v) or v < 1):
            raise ValueError(f"top-k needs a whole k >= 1, got {v!r}")
        if self.label is not None and (not isinstance(self.label, (int, np.integer)) or self.label < 0):
            raise ValueError(f"label must be a class index (an integer >= 0), got {self.label!r}")

    # ------------------------------------------------------------ builders
    @classmethod
    def top1(cls, label: int | None = None) -> "Criterion":
        """Pass where the true class is the network's top-1 answer.

        Parameters
        ----------
        label : int, optional
            The true class index; None takes it from f.
        """
        return cls("top-1", 1.0, label)

    @classmethod
    def topk(cls, k: int, label: int | None = None) -> "Criterion":
        """Pass where the true class is among the ``k`` most probable (k = 1 gives `top1`).

        Parameters
        ----------
        k : int
            How many top classes count, at least 1.
        label : int, optional
            The true class index; None takes it from f.
        """
        return cls("top-k", float(k), label) if k != 1 else cls.top1(label)

    @classmethod
    def score(cls, minimum: float) -> "Criterion":
        """Pass where the true class's probability is at least ``minimum``.

        Parameters
        ----------
        minimum : float
            The least passing probability, in [0, 1]. Needs no classes, so it also judges plain score functions.
        """
        return cls("score", float(minimum))

    @classmethod
    def margin(cls, m: float, label: int | None = None) -> "Criterion":
        """Pass where the true class's probability exceeds the most probable other class's by at least ``m``.

        A margin of 0 is top-1 with a tie included.

        Parameters
        ----------
        m : float
            The least passing margin, a difference of probabilities in [-1, 1].
        label : int, optional
            The true class index; None takes it from f.
        """
        return cls("margin", float(m), label)

    @classmethod
    def parse(cls, text: str) -> "Criterion":
        """A criterion from its name.

        Parameters
        ----------
        text : str
            ``"top-1"``, ``"top-5"``, ``"score >= 0.5"`` or ``"margin >= 0.1"`` (case and a trailing "correct"
            ignored).

        Raises
        ------
        TypeError
            ``text`` is not a string.
        ValueError
            A name not of these forms.
        """
        if not isinstance(text, str):
            raise TypeError(f"a criterion's name is a string such as 'top-1', 'top-5' or 'score >= 0.5', got "
                            f"{text!r}; pass a semkit.Criterion for anything else")
        s = text.strip().lower().replace("correct", "").strip()
        if m := re.fullmatch(r"top-?(\d+)", s):
            k = int(m.group(1))
            if k < 1:
                raise ValueError(f"{text!r}: top-k needs a whole k >= 1")
            return cls.topk(k)
        if m := re.fullmatch(r"(score|margin)\s*>=\s*([-+0-9.e]+)", s):
            try:
                value = float(m.group(2))
            except ValueError:
                value = None
            if value is not None:
                return cls.score(value) if m.group(1) == "score" else cls.margin(value)
        raise ValueError(f"unknown criterion {text!r}: use 'top-1', 'top-5', 'score >= 0.5' or 'margin >= 0.1', "
                         "or a semkit.Criterion")

    @classmethod
    def resolve_all(cls, criteria: Any) -> list["Criterion"]:
        """Several criteria as a list of Criterion objects.

        Parameters
        ----------
        criteria : Criterion, str, or list or tuple of them
            The criteria or their names; one alone is a list of one.

        Raises
        ------
        ValueError
            An empty list.
        TypeError
            None or a nested list among them.
        """
        items = list(criteria) if isinstance(criteria, (list, tuple)) else [criteria]
        if not items:
            raise ValueError("criterion= got an empty list: give one criterion ('top-1', 'score >= 0.5', a "
                             "semkit.Criterion) or a list of at least one")
        if any(c is None or isinstance(c, (list, tuple)) for c in items):
            raise TypeError(f"criterion= takes a criterion or a flat list of criteria, got {criteria!r}")
        return [cls.resolve(c) for c in items]

    @classmethod
    def resolve(cls, criterion: "Criterion | str | None" = None, f: Any = None) -> "Criterion":
        """The one way a function turns ``criterion=`` (and f, for the true class) into a Criterion.

        Classes criteria take their label from f when they carry none, and
        are checked against f's number of classes.

        Parameters
        ----------
        criterion : Criterion or str, optional
            The criterion or its name; None: top-1 correct.
        f : ScoreFunction, optional
            The function judged, which supplies the true class (a SemanticFunction knows it).

        Raises
        ------
        ValueError
            A classes criterion for an f that gives scores only, or a label or k beyond f's classes.
        TypeError
            A list, or anything other than a Criterion or its name.
        """
        if isinstance(criterion, str):
            criterion = cls.parse(criterion)
        elif isinstance(criterion, (list, tuple)):
            raise TypeError(f"criterion= takes one criterion here, got a list {criterion!r}: a list of criteria is "
                            "for maps (robust_accuracy, compare_networks)")
        elif criterion is not None and not isinstance(criterion, Criterion):
            raise TypeError(f"criterion must be a semkit.Criterion or its name, got {type(criterion).__name__}")
        criterion = criterion or cls.top1()
        if f is not None and criterion.needs_classes and criterion.label is None:
            label = f.describe().get("label")
            if label is None:
                raise ValueError(_SCORES_ONLY.format(name=criterion.name))
            criterion = replace(criterion, label=int(label))
        if f is not None:
            criterion.check_classes(f)
            criterion.check_label(f)
        return criterion

    def check_label(self, f: Any) -> None:
        """An error when the criterion names a class other than the one f scores.

        f's score is the probability of its own true class, and a margin or
        score criterion is judged on that score: judged on another class it
        would mix two classes (a margin of class 0's probability over class 2's
        rival). So a criterion's label must be f's (or absent: f supplies it).

        Parameters
        ----------
        f : ScoreFunction
            The function to check against: its class (or, for a group, each network's).

        Raises
        ------
        ValueError
            The criterion has a label and f scores another class.
        """
        if self.label is None:
            return
        other = sorted(labels_of(f) - {int(self.label)})
        if other:
            raise ValueError(f"the criterion {self.name!r} judges class {self.label}, but f scores class "
                             f"{', '.join(map(str, other))} (its score is that class's probability): make a "
                             f"SemanticFunction for the class to judge (SemanticFunction(shape, network, "
                             f"label={self.label})), or build the criterion without label= (it takes f's class)")

    def check_map_label(self, semantic_map: xr.Dataset) -> None:
        """An error when the criterion names a class other than the one a map's scores and 'correct' are of.

        Parameters
        ----------
        semantic_map : Dataset
            The map to check against: its class is its ``label`` coord, variable or attr.

        Raises
        ------
        ValueError
            The criterion has a label and the map holds another class's scores.
        """
        if self.label is None:
            return
        found = semantic_map["label"].values.reshape(-1).tolist() if "label" in semantic_map.coords or "label" in semantic_map else \
            [semantic_map.attrs["label"]] if "label" in semantic_map.attrs else []
        other = sorted({int(v) for v in found if np.isfinite(v) and int(v) >= 0} - {int(self.label)})
        if other:
            raise ValueError(f"the criterion {self.name!r} judges class {self.label}, but this map holds the scores "
                             f"and top-1 answers of class {', '.join(map(str, other))}: map a SemanticFunction for "
                             f"class {self.label} (SemanticFunction(shape, network, label={self.label})), or build the "
                             "criterion without label=")

    def check_classes(self, f: Any) -> None:
        """An error naming the label or k when f's network has fewer classes (nothing for f without classes).

        Parameters
        ----------
        f : ScoreFunction
            The function to check against.

        Raises
        ------
        ValueError
            The label or k is beyond the network's classes.
        """
        n = classes_of(f)
        if n is None or not self.needs_classes:
            return
        if self.label is not None and self.label >= n:
            raise ValueError(f"the criterion's label {self.label} is out of range: the network has {n} classes "
                             f"(labels 0 to {n - 1})")
        if self.k > n:
            raise ValueError(f"{self.name} needs the top {self.k} classes, and the network has only {n} classes")

    # ------------------------------------------------------------ description
    @property
    def needs_classes(self) -> bool:
        return self.kind != "score"

    @property
    def k(self) -> int:
        """How many top classes an evaluation must return to judge this criterion."""
        return {"top-1": 1, "top-k": int(self.value), "score": 1, "margin": 2}[self.kind]

    @property
    def min_score(self) -> float | None:
        """The score a view must reach under a score criterion (None for the others)."""
        return self.value if self.kind == "score" else None

    @property
    def name(self) -> str:
        if self.kind == "top-1":
            return "top-1 correct"
        if self.kind == "top-k":
            return f"top-{int(self.value)} correct"
        return f"{self.kind} >= {self.value:g}"

    def attrs(self) -> dict[str, Any]:
        """Dataset attrs naming the criterion (``criterion``) and saying it whole (``criterion_spec``)."""
        return {"criterion": self.name, "criterion_spec": json.dumps(self.spec()),
                "min_score": float("nan") if self.min_score is None else self.min_score}

    def spec(self) -> dict[str, Any]:
        """The criterion whole as plain data (``kind``, ``value``, ``label``): the attr ``criterion_spec`` holds it."""
        return {"kind": self.kind, "value": float(self.value), "label": None if self.label is None else int(self.label)}

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> "Criterion | None":
        """The criterion a result records (None when it records none).

        Parameters
        ----------
        attrs : dict
            A result's attrs; ``criterion_spec`` is read first, else the name in ``criterion``.

        Raises
        ------
        ValueError
            Malformed criterion attrs.
        """
        try:
            if "criterion_spec" in attrs:
                spec = json.loads(attrs["criterion_spec"])
                return cls(spec["kind"], spec["value"], spec["label"])
            if "criterion" in attrs:
                return cls.parse(str(attrs["criterion"]))
        except (TypeError, ValueError, KeyError) as e:
            raise ValueError(f"this result's criterion attrs are malformed ({e}): pass criterion= (e.g. 'top-1'), "
                             "or drop the attrs criterion and criterion_spec") from None
        return None

    # ------------------------------------------------------------ judging
    def passes(self, score: np.ndarray, topk: np.ndarray | None = None, topk_prob: np.ndarray | None = None) -> np.ndarray:
        """Pass/fail per view from its true-class score and top classes.

        Parameters
        ----------
        score : array_like [B]
            Each view's true-class probability.
        topk : array_like of int [B, k], optional
            Each view's top classes, best first; needed by all criteria but score.
        topk_prob : array_like [B, k], optional
            Their probabilities; needed by margin.

        Returns
        -------
        numpy.ndarray of bool [B]

        Raises
        ------
        ValueError
            A classes criterion without top classes or a label, or fewer top classes than it needs.
        """
        score = np.asarray(score, dtype=float).reshape(-1)
        if self.kind == "score":
            return score >= self.value
        if topk is None:
            raise ValueError(_SCORES_ONLY.format(name=self.name))
        if self.label is None:
            raise ValueError(f"the criterion {self.name!r} has no true class: build it with label=, or let f supply it")
        topk = np.asarray(topk).reshape(len(score), -1)
        if topk.shape[1] < self.k:
            raise ValueError(f"{self.name} needs the top {self.k} classes of each view, got {topk.shape[1]}")
        if self.kind in ("top-1", "top-k"):
            return (topk[:, : self.k] == self.label).any(axis=1)
        probs = np.asarray(topk_prob, dtype=float).reshape(len(score), -1)
        runner_up = np.where(topk[:, 0] == self.label, probs[:, 1], probs[:, 0])
        return score - runner_up >= self.value - 1e-12

    def evaluate(self, f: Any, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Evaluate f at points and judge each view.

        Parameters
        ----------
        f : ScoreFunction
            The function to evaluate.
        points : numpy.ndarray [B, n]
            The views.

        Returns
        -------
        passes : numpy.ndarray of bool [B]
        score : numpy.ndarray [B]
        top1 : numpy.ndarray of int [B]
            -1 where f predicts no classes.

        Raises
        ------
        ValueError
            f returned the wrong number of scores or a NaN or infinite one, or has too few classes.
        """
        if len(points) == 0:
            return np.zeros(0, bool), np.zeros(0), np.zeros(0, np.int64)
        self.check_classes(f)
        self.check_label(f)
        ev = f.evaluate(points, k=self.k)
        score = np.asarray(ev.score, dtype=float).reshape(-1)
        if score.shape != (len(points),):
            raise ValueError(f"f returned {score.size} scores for {len(points)} points")
        if not np.isfinite(score).all():
            bad = int(np.argmax(~np.isfinite(score)))
            raise ValueError(f"f returned a NaN or infinite score at {points[bad]}: the criterion cannot be checked there")
        top1 = np.full(len(points), -1, np.int64) if ev.top1 is None else np.asarray(ev.top1, dtype=np.int64)
        return self.passes(score, ev.topk, ev.topk_prob), score, top1

    def on_map(self, semantic_map: xr.Dataset) -> xr.DataArray:
        """The pass/fail grid of a dense map (refused for a study with unfinished tasks).

        A view without a value (NaN, see `missing_on_map`) fails: a missing view is not a passing one.

        Parameters
        ----------
        semantic_map : xarray.Dataset
            A dense map (``score``, and ``correct`` for top-1) or a study of maps.

        Raises
        ------
        ValueError
            A study with unfinished tasks, a top-1 criterion on a map without ``correct``, or a top-k or margin
            criterion (a map holds no top classes beyond the first).
        """
        if "done" in semantic_map and not bool((semantic_map["done"] == 1).all()):
            raise ValueError(f"{int((semantic_map['done'] != 1).sum())} task(s) of this study are unfinished (done = 0): rerun "
                             "the study to finish them, or select the finished ones")
        self.check_map_label(semantic_map)
        if self.kind == "score":
            return semantic_map["score"] >= self.value
        if self.kind == "top-1":
            if "correct" not in semantic_map:
                raise ValueError("this map has no 'correct' variable (a map of a plain function): pass "
                                 "criterion='score >= t'")
            return semantic_map["correct"] == 1
        raise ValueError(f"a map holds each view's score and top-1 answer, not its {self.name!r} answer: judge maps by "
                         "top-1 or score >= t, or judge f itself (robust_accuracy(f, ...), robustness_radius)")

    def missing_on_map(self, semantic_map: xr.Dataset) -> xr.DataArray:
        """The views of a map that have no value for this criterion (NaN): `on_map` counts them failing.

        Parameters
        ----------
        semantic_map : xarray.Dataset
            A dense map.
        """
        return semantic_map["correct" if self.kind == "top-1" and "correct" in semantic_map else "score"].isnull()


def classes_of(fn: Any) -> int | None:
    """How many classes f's network has (None for f without a network)."""
    functions = getattr(fn, "functions", None) or [fn]
    counts = {len(f.classifier.labels) for f in functions if getattr(getattr(f, "classifier", None), "labels", None)}
    return min(counts) if counts else None


def labels_of(fn: Any) -> set[int]:
    """The true classes f scores: one for a SemanticFunction, each network's for a group (none for scores only)."""
    functions = getattr(fn, "functions", None)
    if functions:
        return set().union(*(labels_of(f) for f in functions))
    label = getattr(fn, "label", None)
    if label is None:
        describe = getattr(fn, "describe", None)
        label = describe().get("label") if callable(describe) else None
    return {int(label)} if isinstance(label, (int, np.integer)) and not isinstance(label, bool) else set()
