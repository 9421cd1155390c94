"""Checks of scalar options (counts, probabilities, confidence levels), in one place with one kind of message.

Every subpackage validates its whole-number and real-number options here, as
scikit-learn's ``check_scalar`` does: the message names the option, what it
must be, the value received and, where it helps, how to fix it. A value of
the wrong type (text, None, a bool) is a TypeError; a number that is not
whole, not finite or out of range is a ValueError. numpy scalars count as
numbers; bools never do (``True`` is not a count).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

#: Which ends of [low, high] a value may equal, as scikit-learn's ``include_boundaries``.
CLOSED = ("both", "neither", "left", "right")


def check_scalar(value: Any, name: str, kind: type = int, *, low: float | None = None, high: float | None = None,
                 closed: str = "both", what: str | None = None) -> Any:
    """``value`` as a plain ``int`` (``kind=int``) or finite ``float`` (``kind=float``), or a clear error.

    ``low`` and ``high`` bound it (None: unbounded), ``closed`` says which
    bounds it may equal; ``what`` says in words what the number counts
    ("noisy views"), added to the message.
    """
    if kind not in (int, float):
        raise ValueError(f"kind must be int or float, got {kind!r}")
    if closed not in CLOSED:
        raise ValueError(f"closed must be one of {CLOSED}, got {closed!r}")
    expected = _expected(kind, low, high, closed) + (f" ({what})" if what else "")
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be {expected}, got {value!r}: pass a number, not a bool")
    if not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {expected}, got {value!r}{_type_hint(value)}")
    if kind is int and not isinstance(value, numbers.Integral):
        hint = (f": pass the whole number {int(value)}" if math.isfinite(value) and value == int(value)
                else ": it is not a whole number")
        raise ValueError(f"{name} must be {expected}, got {value!r}{hint}")
    number = int(value) if kind is int else float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be {expected}, got {value!r}: pass a finite number")
    below = low is not None and (number < low or (number == low and closed in ("neither", "right")))
    above = high is not None and (number > high or (number == high and closed in ("neither", "left")))
    if below or above:
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return number


def check_count(value: Any, name: str, *, minimum: int = 1, what: str | None = None) -> int:
    """``value`` as an int of at least ``minimum`` (how many samples, iterations, workers...), or a clear error."""
    return check_scalar(value, name, int, low=minimum, what=what)


def check_probability(value: Any, name: str, *, closed: str = "both") -> float:
    """``value`` as a float in [0, 1] (``closed="neither"``: in (0, 1)), or a clear error."""
    return check_scalar(value, name, float, low=0, high=1, closed=closed)


def check_confidence(value: Any, name: str = "confidence") -> float:
    """A confidence level (or a share that must be neither 0 nor 1) as a float in the open interval (0, 1)."""
    return check_probability(value, name, closed="neither")


def _expected(kind: type, low: float | None, high: float | None, closed: str) -> str:
    """What the value must be, in words: "a whole number of at least 1", "a number in (0, 1)"."""
    noun = "a whole number" if kind is int else "a number"
    left, right = closed in ("both", "left"), closed in ("both", "right")
    if low is not None and high is not None:
        return f"{noun} in {'[' if left else '('}{low:g}, {high:g}{']' if right else ')'}"
    if low is not None:
        if low == 0 and kind is float:
            return "a non-negative number" if left else "a positive number"
        return f"{noun} of at least {low:g}" if left else f"{noun} above {low:g}"
    if high is not None:
        return f"{noun} of at most {high:g}" if right else f"{noun} below {high:g}"
    return noun if kind is int else "a finite number"


def _type_hint(value: Any) -> str:
    """How to fix a value that is no number at all."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return ": pass a number, not text"
        return f": pass the number {value}, not the text {value!r}"
    if value is None:
        return ": pass a number"
    return f" (a {type(value).__name__}): pass one number"
