"""The region-algorithm interface and its registry.

A region algorithm is an object ([`RegionAlgorithm`][semkit.regions.base.RegionAlgorithm], in the spirit of
foolbox's attacks): it declares its name, display name and colour, the
points it queries per step and whether it needs gradients, and runs a
search over all starts ([`Search`][semkit.regions.base.Search]) that proposes, each step, the
points it wants f at ([`Proposal`][semkit.regions.base.Proposal]). Its options are its
constructor's keywords (``OIRB(alpha=0.1)``, validated when made, listed by
``get_params()``). A new algorithm plugs in without touching the driver, the
plots or the studies (``ALGORITHMS.register(MyAlgorithm)``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, NamedTuple

import numpy as np

from ..function import Evaluation, ScoreFunction
from ..registry import Configurable, Registry
from ..space import Space


# ------------------------------------------------------- the algorithm interface
class Proposal(NamedTuple):
    """The points a search wants this step: f at ``values`` [P, n], the gradient of f at ``gradients`` [G, n]."""

    values: np.ndarray
    gradients: np.ndarray


class Search(ABC):
    """One algorithm's search over all starts: owns its per-start state, proposes points, takes their values."""

    @property
    @abstractmethod
    def active(self) -> np.ndarray:
        """[K] which starts still search."""

    @abstractmethod
    def propose(self) -> Proposal:
        """The points this step needs (points may lie outside the Space: the driver wraps and clips them)."""

    @abstractmethod
    def update(self, values: np.ndarray, gradients: np.ndarray, gradient_cost: float,
               evaluation: Evaluation | None = None) -> None:
        """Take f at the proposed points, and its gradients where proposed.

        Parameters
        ----------
        values : ndarray
            f at the proposal's ``values`` points, ``[P]``.
        gradients : ndarray
            The gradient of f at the proposal's ``gradients`` points, ``[G, n]``.
        gradient_cost : float
            What one gradient costs, in queries of f (for the search's query counts).
        evaluation : Evaluation, optional
            f's evaluation at the ``values`` points (its top classes), for an algorithm that ``needs_classes``; None: f
            gives scores only.
        """

    @abstractmethod
    def state(self) -> dict[str, np.ndarray]:
        """The whole state as arrays (for a checkpoint)."""

    @abstractmethod
    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Continue from `state`'s arrays.

        Parameters
        ----------
        arrays : dict of str to ndarray
            The whole state, as `state` returned it (e.g. read back from a checkpoint).
        """

    @abstractmethod
    def result(self) -> dict[str, np.ndarray]:
        """Final boxes and traces: ``lower``/``upper`` [K, n], ``lower_trace``/``upper_trace`` [T, K, n],
        ``loss`` [T, K], ``queries``, ``converged``, ``iterations`` [K]; optionally ``start_passes`` [K] and
        ``extra``, more per-start variables by name ([K] each; NaN for the algorithms without them)."""


class RegionAlgorithm(Configurable, ABC):
    """A way to grow a region around each start (see the module docstring).

    Class attributes say what plots and studies need: ``name`` (as in the
    results' ``algorithm`` coordinate), ``title`` (a display name for legends), ``color``,
    ``needs_gradient``, ``needs_classes`` (it judges its points by a
    criterion on classes: it gets f's evaluation there, and
    `for_function` binds it to f's true class and needs ``criterion.k``
    top classes), ``fd_step`` (the central-difference step of a plain
    callable's gradient, for an algorithm that needs gradients).
    `queries_per_step` declares the points one box costs per step;
    `describe` (its name and ``get_params()``) the settings that
    determine its results (stores are matched on them).
    """

    name: ClassVar[str]
    title: ClassVar[str]
    color: ClassVar[str] = "tab:gray"
    needs_gradient: ClassVar[bool] = False
    needs_classes: ClassVar[bool] = False
    fd_step: float | None = None

    @abstractmethod
    def queries_per_step(self, n: int) -> int:
        """Points of f (gradient points included, each as one) that one box costs per step.

        Parameters
        ----------
        n : int
            The dimension of the Space.

        Returns
        -------
        int
            The queries of f per box and step.
        """

    @abstractmethod
    def search(self, space: Space, starts: np.ndarray, iterations: int) -> Search:
        """A fresh search of every start's box.

        Parameters
        ----------
        space : Space
            The Space the boxes grow in.
        starts : ndarray
            The starts, ``[K, n]``: one box grows around each.
        iterations : int
            At most this many steps.

        Returns
        -------
        Search
            The search, before its first step.
        """

    def for_function(self, f: ScoreFunction) -> "RegionAlgorithm":
        """This algorithm as it runs on ``f``; itself by default.

        An algorithm with a criterion takes f's true class from it.

        Parameters
        ----------
        f : ScoreFunction
            The score function the boxes grow on.

        Returns
        -------
        RegionAlgorithm
            The algorithm bound to ``f``.
        """
        return self

    @property
    def top_classes(self) -> int:
        """How many top classes its evaluations need (algorithms with a criterion: the criterion's k)."""
        criterion = getattr(self, "criterion", None)
        return criterion.k if criterion is not None else 1



#: Region algorithms by name: find_regions, plots and studies accept these names (or configured objects).
ALGORITHMS: Registry[RegionAlgorithm] = Registry("region algorithm", "semkit.regions.base:RegionAlgorithm", {
    "naive": "semkit.regions.paper:Naive", "oir_b": "semkit.regions.paper:OIRB", "oir_w": "semkit.regions.paper:OIRW",
    "verified": "semkit.trust.verified:Verified"})


def style(name: str, index: int = 0) -> tuple[str, str]:
    """Display name and colour of a region algorithm by its name, for legends and plots.

    Parameters
    ----------
    name : str
        The algorithm's name (``"oir_b"``).
    index : int
        Where the algorithm is in its plot: an algorithm semkit does not know gets colour ``C<index>``.

    Returns
    -------
    tuple of str
        The display name and the colour (the name itself for an unknown algorithm).
    """
    if name not in ALGORITHMS:
        return name, f"C{index}"
    cls = ALGORITHMS[name]
    return cls.title, cls.color
