"""Semantic functions: f(u), a network's score for the true class on renders of a shape at parameters u.

* :mod:`.protocol`: :class:`ScoreFunction`, what every f offers, and :func:`as_function` for plain callables;
* :mod:`.semantic`: :class:`SemanticFunction` (one shape, one network) and :class:`SemanticFunctions`
  (one shape, several networks, each view rendered once);
* :mod:`.cache`: the memo of evaluated points; :mod:`.differences`: gradients by central differences.
"""

from .cache import QueryCache
from .protocol import Evaluation, ScoreFunction, as_function, describe_attrs, store_identity
from .semantic import SemanticFunction, SemanticFunctions

__all__ = [
    "Evaluation", "QueryCache", "ScoreFunction", "SemanticFunction", "SemanticFunctions", "as_function", "describe_attrs", "store_identity",
]
