"""Semantic functions: f(u), a network's score for the true class on renders of a shape at parameters u.

* `.protocol`: [`ScoreFunction`][semkit.function.ScoreFunction], what every f offers, and [`as_function`][semkit.function.as_function] for plain callables;
* `.semantic`: [`SemanticFunction`][semkit.SemanticFunction] (one shape, one network) and [`SemanticFunctions`][semkit.SemanticFunctions]
  (one shape, several networks, each view rendered once);
* `.cache`: the memo of evaluated points; `.differences`: gradients by central differences.
"""

from .cache import QueryCache
from .protocol import Evaluation, ScoreFunction, as_function, describe_attrs, store_identity
from .semantic import SemanticFunction, SemanticFunctions

__all__ = [
    "Evaluation", "QueryCache", "ScoreFunction", "SemanticFunction", "SemanticFunctions", "as_function", "describe_attrs", "store_identity",
]
