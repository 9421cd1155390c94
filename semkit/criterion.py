"""What it means for a view to pass: one :class:`Criterion`, passed everywhere.

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
``criterion_spec`` to read it back with :meth:`Criterion.from_attrs`).
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
    """A pass/fail rule for one view; build it with :meth:`top1`, :meth:`topk`, :meth:`score` or :meth:`margin`."""

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
        return cls("top-1", 1.0, label)

    @classmethod
    def topk(cls, k: int, label: int | None = None) -> "Criterion":
        return cls("top-k", float(k), label) if k != 1 else cls.top1(label)

    @classmethod
    def score(cls, minimum: float) -> "Criterion":
        """Pass where the true class's probability is at least ``minimum``."""
        return cls("score", float(minimum))

    @classmethod
    def margin(cls, m: float, label: int | None = None) -> "Criterion":
        return cls("margin", float(m), label)

    @classmethod
    def parse(cls, text: str) -> "Criterion":
        """A criterion from its name: "top-1", "top-5", "score >= 0.5", "margin >= 0.1"."""
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
        """Several criteria (a list or tuple of Criterion objects or names; one alone is a list of one), or a
        clear error for an empty list or anything else."""
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

        None: top-1 correct for an f that knows its true class (a
        SemanticFunction), an error for a plain callable. Classes criteria
        take their label from f when they carry none.
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
        return criterion

    def check_classes(self, f: Any) -> None:
        """An error naming the label or k when f's network has fewer classes (nothing for f without classes)."""
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
        return {"kind": self.kind, "value": float(self.value), "label": None if self.label is None else int(self.label)}

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> "Criterion | None":
        """The criterion a result records (None when it records none); a clear error for malformed attrs."""
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
        """Pass/fail per view from its true-class score and top classes (best first) with their probabilities."""
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
        """(passes, score, top1) of f at points [B, n]; top1 is -1 where f predicts no classes."""
        if len(points) == 0:
            return np.zeros(0, bool), np.zeros(0), np.zeros(0, np.int64)
        self.check_classes(f)
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

        A view without a value (NaN, see :meth:`missing_on_map`) fails: a missing view is not a passing one.
        """
        if "done" in semantic_map and not bool((semantic_map["done"] == 1).all()):
            raise ValueError(f"{int((semantic_map['done'] != 1).sum())} task(s) of this study are unfinished (done = 0): rerun "
                             "the study to finish them, or select the finished ones")
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
        """The views of a map that have no value for this criterion (NaN): :meth:`on_map` counts them failing."""
        return semantic_map["correct" if self.kind == "top-1" and "correct" in semantic_map else "score"].isnull()


def classes_of(fn: Any) -> int | None:
    """How many classes f's network has (None for f without a network)."""
    functions = getattr(fn, "functions", None) or [fn]
    counts = {len(f.classifier.labels) for f in functions if getattr(getattr(f, "classifier", None), "labels", None)}
    return min(counts) if counts else None
