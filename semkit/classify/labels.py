"""ImageNet's class names, and class labels given by index or by name."""

from __future__ import annotations

import difflib
from functools import lru_cache
from importlib import resources
from typing import Any, Sequence

import numpy as np


@lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 human-readable ImageNet class names (index = class id), offline."""
    text = resources.files("semkit").joinpath("data/imagenet_classes.txt").read_text(encoding="utf-8")
    return tuple(line for line in text.splitlines() if line)


def check_labels(labels: Any) -> tuple[str, ...]:
    """A network's class names as a tuple, or a clear error: a list of distinct, non-empty names, in output order.

    A string is refused (it would be read as one class per character), and
    so are duplicates (they would split one class's probability between two
    outputs, and a name would find the first only).
    """
    if isinstance(labels, (str, bytes)):
        text = labels.decode(errors="replace") if isinstance(labels, bytes) else labels
        shown = [str(c) for c in labels[:5]] + (["..."] if len(labels) > 5 else [])
        raise TypeError(f"labels must be a list of class names, got the string {labels!r} (read as the classes "
                        f"{shown}): pass labels=[{text!r}] for one class, or a list of several")
    try:
        names = tuple(str(n) if isinstance(n, str) else n for n in labels)  # numpy strings as plain str
    except TypeError:
        raise TypeError(f"labels must be a list of class names, got {labels!r}") from None
    if not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise ValueError(f"labels must be the non-empty class names of the network's outputs, in order; got {labels!r}")
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(names):  # exact names: ImageNet's own 'Cardigan' (a dog) and 'cardigan' differ by case
        positions.setdefault(name, []).append(i)
    duplicated = {names[where[0]]: where for where in positions.values() if len(where) > 1}
    if duplicated:
        listed = "; ".join(f"{name!r} at positions {where}" for name, where in duplicated.items())
        raise ValueError(f"labels must name each output once, but {listed}: a duplicated name splits its class's "
                         "probability between outputs; give each class one distinct name")
    return names


def resolve_label(label: int | str, labels: Sequence[str] | None = None) -> int:
    """The index of a class in ``labels``, given by index or by name.

    Names match case-insensitively, with underscores as spaces
    (``"folding_chair"`` is ``"folding chair"``).

    Parameters
    ----------
    label : int or str
        The class index or name.
    labels : sequence of str, optional
        The class names, in order; None: ImageNet's 1000.

    Raises
    ------
    ValueError
        An unknown name (naming the closest of ``labels``), or an index out of range (saying how many classes
        there are).
    """
    default = labels is None
    labels = imagenet_labels() if labels is None else tuple(labels)
    if isinstance(label, str):
        lookup: dict[str, int] = {}
        if label in labels:  # an exact name first: 'cardigan' is not ImageNet's 'Cardigan' (a dog)
            return list(labels).index(label)
        for i, name in enumerate(labels):
            lookup.setdefault(_key(name), i)
        key = _key(label)
        if key in lookup:
            return lookup[key]
        close = [labels[lookup[k]] for k in difflib.get_close_matches(key, lookup, n=5, cutoff=0.6)]
        if close:
            hint = f"; did you mean {close}?"
        elif default:
            hint = "; see semkit.imagenet_labels() for the names"
        else:
            shown = list(labels[:10]) + (["..."] if len(labels) > 10 else [])
            hint = f"; the network's {len(labels)} labels are {shown}"
        raise ValueError(f"unknown class label {label!r}{hint}")
    if isinstance(label, bool) or not isinstance(label, (int, np.integer, float, np.floating)):
        raise TypeError(f"a class label is an integer class index or a name, got {label!r}")
    if label != int(label):
        raise ValueError(f"a class label must be an integer class index or a class name, got {label!r}")
    index = int(label)
    if not 0 <= index < len(labels):
        raise ValueError(f"class index {label!r} is out of range: there are {len(labels)} classes (0..{len(labels) - 1})")
    return index


def _key(name: str) -> str:
    """A class name as compared: lower case, underscores as spaces, single spaces."""
    return " ".join(name.replace("_", " ").lower().split())
