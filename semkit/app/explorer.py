"""An interactive explorer: point at a view and ask whether the networks are robust there, and why not.

[`Explorer`][semkit.app.explorer.Explorer] holds the state (shape, networks, view, criterion, the map's two
parameters) and answers at the current view: every network's top classes (one render), the shape's map, and the
trust layer (radius, worst view, verified box, smoothed certificate), each the library's own Dataset, drawn on the
map. Plain Python, tested without a browser; `semkit.app.panel` binds it to widgets, `semkit.app.sharing` to JSON.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import xarray as xr

from ..classify import BUNDLED, Classifier, load_classifier
from ..criterion import Criterion
from ..function import SemanticFunction, SemanticFunctions
from ..maps import interpolate, semantic_map
from ..regions import ALGORITHMS, DEFAULT_STEP_RULE, find_regions
from ..render import DEFAULTS, Renderer
from ..scene import Mesh, load_shape
from ..space import Space
from ..store import file_stem
from ..trust import Smoothed, Verified
from ..validation import check_count
from ..trust import find_failures as search_failures
from ..trust import robustness_radius as radius_of
from . import overlays, pictures, sharing
from .tasks import Watched, current_watch, give_back_memory


class Explorer:
    """State and answers of the explorer (see the module docstring).

    A map is computed once per shape and slice, for every network at once (each view rendered once), and kept
    (in ``store`` too). With more than two parameters the map is a slice: its two parameters (``axes``) vary, the
    others stay at the current view's values, and it is computed when asked ([`map`][semkit.app.explorer.Explorer.map];
    an adaptive map). The trust questions speak of the whole Space at the current view, under ``criterion``.

    Parameters
    ----------
    shapes : sequence of str or Mesh, default four gallery shapes
        Gallery names, mesh files (ShapeNet's too) or meshes.
    networks : sequence of str or Classifier, default BUNDLED
        Network names or classifiers; all are shown side by side, the first is the one the map and the trust
        questions are about until another is picked.
    space : Space, optional
        The Space, of two or more parameters; any parameter the renderer knows may be one
        (``Space.of("azimuth", "elevation", "roll")``). None: [`Space.paper`][semkit.Space.paper].
    axes : (str, str), optional
        The map's two parameters; None: the Space's first two.
    step : float, sequence of float or mapping of str to float, optional
        The maps' grid step in the Space's units (one, one per parameter, or by name); None: a 24th of a periodic
        parameter's range, a 10th of a bounded one's (15 and 10 degrees in the paper's Space).
    criterion : Criterion or str, optional
        What a view must pass, for the map's outline and every trust question; None: top-1 correct.
    store : str or path, optional
        A folder the maps are kept in too, so a rerun reads them back.
    image_size : int, optional
        The renders' size; None: the networks' largest input size (each network resizes to its own).
    renderer_options : mapping, optional
        Other keywords for [`Renderer`][semkit.Renderer] (e.g. ``{"materials": True, "background": 0.5}``).
    random_state : int or None, default 0
        Draws the trust questions' samples: the same state, the same answers; None: fresh randomness.

    Raises
    ------
    ValueError
        No shapes or no networks, a Space of one parameter, unknown or equal axes, an unknown criterion.
    """

    def __init__(
        self,
        shapes: Sequence[str | Mesh] = ("coffee_mug", "park_bench", "vase", "water_bottle"),
        networks: Sequence[str | Classifier] = BUNDLED,
        *,
        space: Space | None = None,
        axes: Sequence[str] | None = None,
        step: float | Sequence[float] | Mapping[str, float] | None = None,
        criterion: Criterion | str | None = None,
        store: str | Path | None = None,
        image_size: int | None = None,
        renderer_options: Mapping[str, Any] | None = None,
        random_state: int | None = 0,
    ) -> None:
        if isinstance(shapes, (str, Mesh)) or isinstance(networks, (str, Classifier)):
            raise ValueError("shapes and networks are lists: Explorer(['coffee_mug'], ['efficientnet_lite0'])")
        if not shapes or not networks:
            raise ValueError("the explorer needs at least one shape and one network")
        self.space = space or Space.paper()
        if self.space.n < 2:
            raise ValueError(f"the explorer's map shows two parameters: give it a Space of two or more, not "
                             f"{list(self.space.names)}")
        self.axes = self._checked_axes(self.space.names[:2] if axes is None else axes)
        default = np.array([p.width / (24 if p.periodic else 10) for p in self.space.parameters])
        self.step = self.space.per_parameter(step, "step", default=default) if step is not None else default
        self.criterion = Criterion.resolve(criterion)
        self._sources = list(shapes)
        self.meshes = {m.name: m for m in (load_shape(s) for s in shapes)}
        self._networks: dict[str, str | Classifier] = {(n if isinstance(n, str) else n.name): n for n in networks}
        self.store = Path(store) if store is not None else None
        self.renderer_options = dict(renderer_options or {})
        if "image_size" in self.renderer_options:
            raise ValueError("give the render size as image_size=, not in renderer_options")
        self.image_size = None if image_size is None else check_count(image_size, "image_size", what="pixels")
        self.random_state = random_state
        self.shape, self.network, self.compare = next(iter(self.meshes)), next(iter(self._networks)), None
        start = {**DEFAULTS, "azimuth": 30.0, "elevation": 20.0}
        self.point = {p.name: float(np.clip(start.get(p.name, (p.low + p.high) / 2), p.low, p.high))
                      for p in self.space.parameters}
        self.regions: xr.Dataset | None = None
        self.results: dict[str, xr.Dataset] = {}  # the trust questions' answers, by method name
        self.lock = threading.RLock()  # one renderer and one set of networks serve the sliders and the tasks
        self._map_lock = threading.Lock()  # a map asked for twice at once is computed once
        self._keep_lock = threading.Lock()
        self._groups: dict[tuple, SemanticFunctions] = {}
        self._renderers: dict[str, Renderer] = {}
        self._maps: dict[tuple, dict[str, xr.Dataset]] = {}  # by shape and slice, then network
        self._probabilities: dict[str, np.ndarray] = {}
        self._loaded: set[str] = set()  # networks this explorer loaded from their names (dropped by close())
        self._closers: list[Any] = []  # widgets, figures and tasks to close (close())
        self.update()

    def _checked_axes(self, axes: Sequence[str]) -> tuple[str, str]:
        axes = tuple(axes)
        if len(axes) != 2 or len(set(axes)) != 2 or not set(axes) <= set(self.space.names):
            raise ValueError(f"axes must be two different parameters of the Space {list(self.space.names)}, got {axes}")
        return axes  # type: ignore[return-value]

    # ------------------------------------------------------------ the state
    @property
    def shapes(self) -> list[str]:
        return list(self.meshes)

    @property
    def networks(self) -> list[str]:
        return list(self._networks)

    def classifiers(self) -> list[Classifier]:
        """The networks as classifiers (those named are loaded once)."""
        for name, n in self._networks.items():
            if isinstance(n, str):
                self._networks[name] = load_classifier(n)
                self._loaded.add(name)
        return list(self._networks.values())  # type: ignore[arg-type]

    def renderer(self, role: str = "views") -> Renderer:
        """The renderer of the views shown and asked about, or the one that draws maps while the views move.

        Parameters
        ----------
        role : str, default "views"
            ``"views"`` or ``"maps"``.
        """
        if role not in self._renderers:
            size = self.image_size or max(c.input_size for c in self.classifiers())
            self._renderers[role] = Renderer(image_size=size, **self.renderer_options)
        return self._renderers[role]

    def functions(self, space: Space | None = None, role: str = "views") -> SemanticFunctions:
        """The current shape's SemanticFunctions (every network).

        Parameters
        ----------
        space : Space, optional
            Their Space (a map's slice); None: the explorer's.
        role : str, default "views"
            Whose renderer they use (see [`renderer`][semkit.app.explorer.Explorer.renderer]).
        """
        space = space or self.space
        key = (self.shape, space, role)
        if key not in self._groups:
            self._groups[key] = SemanticFunctions(self.meshes[self.shape], self.classifiers(), renderer=self.renderer(role),
                                                  space=space)
        return self._groups[key]

    def function(self) -> SemanticFunction:
        """The SemanticFunction of the current shape and network (what the trust questions ask)."""
        return self.functions()[self.network]

    def close(self) -> None:
        """Release what the explorer holds: cancel its tasks, close its widgets and figures, stop the renderers'
        threads, drop the functions and the networks it loaded by name (the maps stay; all starts again when used)."""
        import matplotlib.pyplot as plt

        for item in self._closers:
            if hasattr(item, "cancel"):
                item.cancel()
                item.thread.join(30)
            elif hasattr(item, "number"):
                plt.close(item)
            else:
                item.close()
        self._closers.clear()
        for group in self._groups.values():
            group.close()
        self._groups.clear()
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
        for name in self._loaded:
            self._networks[name] = name
        self._loaded.clear()
        give_back_memory()

    def keep(self, item: Any) -> Any:
        """Have ``close`` close ``item`` too; returns it (finished tasks and closed figures are let go).

        Parameters
        ----------
        item : widget, figure or Task
            What to close with the explorer.
        """
        import matplotlib.pyplot as plt

        with self._keep_lock:  # widgets' threads keep items too
            self._closers = [c for c in self._closers if not (hasattr(c, "number") and not plt.fignum_exists(c.number))
                             and not (hasattr(c, "running") and not c.running)] + [item]
        return item

    def __enter__(self) -> "Explorer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def set(self, **changes: Any) -> "Explorer":
        """Change the shape, network, compared network, criterion, the map's axes or parameter values; update.

        Bad values raise an error that names them, and change nothing; a periodic parameter's value is
        wrapped into its range (azimuth 370 is kept as 10). A new shape, network or criterion drops the answers
        about the old one.
        """
        point, shape, network, compare = dict(self.point), self.shape, self.network, self.compare
        criterion, axes = self.criterion, self.axes
        for key, value in changes.items():
            if key == "shape":
                if value not in self.meshes:
                    raise ValueError(f"unknown shape {value!r}; the explorer has {self.shapes}")
                shape = value
            elif key in ("network", "compare"):
                if value not in self._networks and not (key == "compare" and value is None):
                    raise ValueError(f"unknown network {value!r}; the explorer has {self.networks}")
                network, compare = (value, compare) if key == "network" else (network, value)
            elif key == "criterion":
                criterion = Criterion.resolve(value)
            elif key == "axes":
                axes = self._checked_axes(value)
            elif key in self.space.names:
                try:
                    point[key] = float(value)
                except (TypeError, ValueError):
                    units = self.space[key].units
                    raise ValueError(f"{key} must be a number{f' ({units})' if units else ''}, got {value!r}") from None
            else:
                raise ValueError(f"unknown setting {key!r}: use shape, network, compare, criterion, axes or one of "
                                 f"{list(self.space.names)}")
        # range and NaN checks, with errors that name the parameter; periodic values wrap (azimuth 370 is 10)
        point = dict(zip(self.space.names, map(float, self.space.points(point)[0])))
        if (shape, network, criterion) != (self.shape, self.network, self.criterion):
            self.results = {}  # an answer belongs to its shape, network and criterion
        if (shape, network, axes) != (self.shape, self.network, self.axes):
            self.regions = None  # a region belongs to its shape, network and map
        self.point, self.shape, self.network, self.compare = point, shape, network, compare
        self.criterion, self.axes = criterion, axes
        return self.update()

    def update(self) -> "Explorer":
        """Render the current point once and classify it by every network (``image``, ``top5``, ``score``,
        ``seconds``)."""
        start = time.perf_counter()
        pts = self.space.points(self.point)
        with self.lock, torch.inference_mode():
            images = self.renderer().render(self.meshes[self.shape], pts, space=self.space)
            self._probabilities = {c.name: c(images)[0].double().cpu().numpy() for c in self.classifiers()}
        self.image = images[0].permute(1, 2, 0).cpu().numpy()
        probs = self._probabilities[self.network]
        labels = self.function().classifier.labels
        self.top5 = [(labels[int(i)], float(probs[i])) for i in np.argsort(-probs, kind="stable")[:5]]
        self.score = float(probs[self.function().label])
        self.seconds = time.perf_counter() - start
        return self

    def save_render(self, path: str | Path) -> Path:
        """Save the render of the current view as a PNG file; its path.

        Parameters
        ----------
        path : str or path
            The file to write (``.png``).
        """
        path = Path(path)
        if path.suffix.lower() != ".png":
            raise ValueError(f"save_render writes PNG files: give a path ending in .png, not {path.name!r}")
        path.write_bytes(pictures.png(self.image))
        return path

    def predictions(self, k: int = 5) -> xr.Dataset:
        """Every network's k most probable classes at the current view (one render for all of them).

        Parameters
        ----------
        k : int, default 5
            How many classes per network.

        Returns
        -------
        Dataset
            Over (``network``, ``rank``): ``class_index``, ``class_name``, ``probability``; per network the true
            class's ``score`` and whether the view ``passes`` the criterion. Attrs: shape, view, criterion.
        """
        check_count(k, "k", what="classes")
        index, names, probability, score, passes = [], [], [], [], []
        for name in self.networks:
            f, probs = self.functions()[name], self._probabilities[name]
            order = np.argsort(-probs, kind="stable")
            criterion = Criterion.resolve(self.criterion, f=f)
            ranked = order[: max(criterion.k, 1)]
            index.append(order[:k])
            names.append([f.classifier.labels[int(i)] for i in order[:k]])
            probability.append(probs[order[:k]])
            score.append(probs[f.label])
            passes.append(bool(criterion.passes(np.array([probs[f.label]]), ranked[None], probs[ranked][None])[0]))
        dims = ("network", "rank")
        return xr.Dataset(
            {"class_index": (dims, np.array(index)), "class_name": (dims, np.array(names)),
             "probability": (dims, np.array(probability), {"long_name": "class probability"}),
             "score": ("network", np.array(score), {"long_name": "probability of the true class"}),
             "passes": ("network", np.array(passes), {"long_name": f"passes {self.criterion.name}"})},
            coords={"network": self.networks, "rank": np.arange(1, k + 1)},
            attrs={"shape": self.shape, "view": json.dumps(self.point), **self.criterion.attrs()},
        )

    # ---------------------------------------------------------------- maps
    def slice_space(self) -> Space:
        """The map's Space: its two axes, the other parameters fixed at the current view (the whole Space when it
        has two)."""
        if self.space.n == 2 and self.axes == self.space.names:
            return self.space
        others = {name: self.point[name] for name in self.space.names if name not in self.axes}
        return Space([self.space[a] for a in self.axes], fixed={**self.space.fixed, **others})

    def _map_key(self) -> tuple:
        return (self.shape, self.slice_space())

    def has_map(self) -> bool:
        """Whether the map of the current shape and slice is computed (a slice is computed when asked)."""
        return self._map_key() in self._maps

    def map(self, network: str | None = None) -> xr.Dataset:
        """The map of the current shape and slice for ``network`` (None: the current one); computed once, for every
        network, when first asked.

        Parameters
        ----------
        network : str, optional
            Whose map; None: the current network's.
        """
        key = self._map_key()
        with self._map_lock:
            if key not in self._maps:
                maps = self._computed_map(key[1])
                self._maps[key] = {name: maps.sel(network=name) for name in self.networks}
        network = network or self.network
        if network not in self._networks:
            raise ValueError(f"unknown network {network!r}; the explorer has {self.networks}")
        return self._maps[key][network]

    def _computed_map(self, space: Space) -> xr.Dataset:
        """Every network's map over the slice ``space`` (its own renderer: views move while it draws)."""
        store = None
        if self.store is not None:  # a folder per shape and slice, a file per network
            fixed = "".join(f"__{k}={v:g}" for k, v in sorted(space.fixed.items()) if k not in self.space.fixed)
            store = self.store / file_stem(self.shape) / file_stem(f"{space.names[0]}-{space.names[1]}{fixed}")
        steps = [float(self.step[self.space.names.index(a)]) for a in space.names]
        return semantic_map(self.functions(space, role="maps"), step=steps, store=store, progress=False,
                            adaptive=self.space.n > 2)

    def grow(self, algorithm: str = "oir_b", step_rule: str = DEFAULT_STEP_RULE, iterations: int = 600) -> xr.Dataset:
        """Grow a robust region from the current point on the (interpolated) map; kept in ``regions``.

        The paper's heuristic on the map's two parameters: no guarantee (see
        [`verified_box`][semkit.app.explorer.Explorer.verified_box] for one).

        Parameters
        ----------
        algorithm : str, default "oir_b"
            The region algorithm, by name (``"naive"``, ``"oir_b"``, ``"oir_w"``).
        step_rule : str, default "faithful"
            The step rule, by name (``"faithful"``, ``"adaptive"``).
        iterations : int, default 600
            The most steps the region grows.

        Returns
        -------
        xarray.Dataset
            The region search, as [`find_regions`][semkit.find_regions] returns it.
        """
        ALGORITHMS[algorithm]  # an unknown name is named before any work
        space = self.slice_space()
        start = [[self.point[k] for k in space.names]]
        self.regions = find_regions(interpolate(self.map(), space=space), start, (algorithm,), space=space,
                                    iterations=iterations, step_rule=step_rule, progress=False)
        return self.regions

    # ---------------------------------------------------------------- trust
    def _asked(self) -> Watched:
        """The current function as the trust questions see it: chunked under the lock, watched by the task, with
        the shape, network and criterion it was asked under (an answer is kept only while they hold)."""
        return Watched(self.function(), self.lock, current_watch(), (self.shape, self.network, self.criterion))

    def _criterion(self) -> Criterion:
        return Criterion.resolve(self.criterion, f=self.function())

    def robustness_radius(self, step: float | Sequence[float] | None = None, max_steps: int = 10,
                          certificate: str = "sampled") -> xr.Dataset:
        """How far every view around the current one keeps passing the criterion ([`robustness_radius`][semkit.robustness_radius]).

        Parameters
        ----------
        step : float or sequence of float, optional
            The lattice step; None: the Space's default step.
        max_steps : int, default 10
            The largest number of steps tried.
        certificate : str, default "sampled"
            "sampled": the radius meets the continuous guarantee; "lattice": lattice points only, audited.

        Returns
        -------
        Dataset
            As [`robustness_radius`][semkit.robustness_radius] returns it, for the current view; kept in ``results``.
        """
        asked = self._asked()
        result = radius_of(asked, [self.point[k] for k in self.space.names], criterion=self._criterion(), step=step,
                           max_steps=max_steps, certificate=certificate, random_state=self.random_state, progress=False)
        return self._kept("robustness_radius", result, asked)

    def find_failures(self, radius: float | Sequence[float] | Mapping[str, float], max_queries: int = 200,
                      algorithm: str = "cmaes") -> xr.Dataset:
        """The worst view within +-``radius`` of the current one ([`find_failures`][semkit.find_failures]; no guarantee).

        Parameters
        ----------
        radius : float, sequence of float or mapping of str to float
            The box's half-width in the Space's units (one, one per parameter, or by name).
        max_queries : int, default 200
            At most this many views evaluated.
        algorithm : str, default "cmaes"
            The search: "cmaes" or "random".

        Returns
        -------
        Dataset
            As [`find_failures`][semkit.find_failures] returns it; kept in ``results``, its worst view's render in
            ``worst_image``.
        """
        asked = self._asked()
        result = search_failures(asked, [self.point[k] for k in self.space.names], radius, criterion=self._criterion(),
                                 max_queries=max_queries, algorithm=algorithm, random_state=self.random_state, progress=False)
        f = asked.f
        with self.lock:
            worst = f.renderer.render(f.mesh, result.point.values[:1], space=f.space)[0].permute(1, 2, 0).cpu().numpy()
        if asked.context == (self.shape, self.network, self.criterion):
            self.worst_image = worst
        return self._kept("find_failures", result, asked)

    def verified_box(self, max_queries: int = 2000, step: float | Sequence[float] | None = None,
                     confidence: float = 0.95, max_failure: float = 0.01) -> xr.Dataset:
        """A box around the current view with the continuous guarantee (the verified algorithm of
        [`find_regions`][semkit.find_regions]): with confidence ``confidence``, at most ``max_failure`` of its views fail.

        Parameters
        ----------
        max_queries : int, default 2000
            At most this many views evaluated.
        step : float or sequence of float, optional
            The growth lattice's step; None: the Space's default step.
        confidence : float, default 0.95
            The guarantee's confidence.
        max_failure : float, default 0.01
            The share of the box's views allowed to fail.

        Returns
        -------
        Dataset
            As [`find_regions`][semkit.find_regions] returns it (one start, the verified algorithm); kept in ``results``.
        """
        algorithm = Verified(criterion=self._criterion(), step=step, confidence=confidence, max_failure=max_failure,
                             max_queries=max_queries, random_state=self.random_state)
        asked = self._asked()
        result = find_regions(asked, [[self.point[k] for k in self.space.names]], (algorithm,), progress=False)
        result.attrs.update(confidence=confidence, max_failure=max_failure)
        return self._kept("verified_box", result, asked)

    def certify(self, sigma: float | Sequence[float] | Mapping[str, float], n0: int = 100, n: int = 1000,
                confidence: float = 0.999) -> xr.Dataset:
        """The smoothed network's answer at the current view and the radius it keeps it within
        ([`Smoothed.certify`][semkit.Smoothed.certify]): a statement about the smoothed network g, not the network.

        Under top-1 correct g answers a class; under another criterion g answers pass or fail.

        Parameters
        ----------
        sigma : float, sequence of float or mapping of str to float
            The noise's standard deviation per parameter, in its units.
        n0 : int, default 100
            Noisy views that choose g's answer.
        n : int, default 1000
            Fresh noisy views that bound its probability.
        confidence : float, default 0.999
            The certificate's confidence.

        Returns
        -------
        Dataset
            As [`Smoothed.certify`][semkit.Smoothed.certify] returns it; kept in ``results``.
        """
        criterion = None if self.criterion.kind == "top-1" else self._criterion()
        asked = self._asked()
        g = Smoothed(asked, sigma, criterion=criterion)
        result = g.certify([self.point[k] for k in self.space.names], n0=n0, n=n, confidence=confidence,
                           random_state=self.random_state, progress=False)
        return self._kept("certify", result, asked)

    def _kept(self, name: str, result: xr.Dataset, asked: Watched) -> xr.Dataset:
        """Label ``result`` with what it was asked about; keep it in ``results`` (a new dict, so a drawing going
        through the old one is undisturbed) only if the explorer still shows that shape, network and criterion."""
        shape, network, _ = asked.context
        result.attrs.update(shape=shape, network=network)
        if asked.context == (self.shape, self.network, self.criterion):
            self.results = {**self.results, name: result}
        return result

    # ---------------------------------------------------------------- views
    def prediction_html(self) -> str:
        """Every network's top-5 at the current view, side by side (what the widget shows under the render)."""
        return pictures.predictions_html(self.predictions(5), self.shape, self.point, self.network,
                                         self.function().label_name, self.criterion.name)

    def map_figure(self, figsize: tuple[float, float] = (5.5, 3.4), cursor: bool = True):
        """The map with what was found drawn on it (regions, trust answers, where two networks disagree).

        Parameters
        ----------
        figsize : (float, float), default (5.5, 3.4)
            The figure's size in inches.
        cursor : bool, default True
            Mark the current view (the widget's canvas draws its own).

        Returns
        -------
        matplotlib.figure.Figure
            Closed by ``close``.
        """
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        self.keep(fig)
        overlays.draw_map(ax, self, cursor)
        return fig

    def widget(self):
        """The explorer as widgets (display it in a notebook): see `semkit.app.panel`."""
        from .panel import build

        return build(self)

    # ---------------------------------------------------------------- keep and share
    @property
    def state(self) -> dict[str, Any]:
        """Everything that makes this explorer, as JSON-serialisable values ([`from_state`][semkit.app.explorer.Explorer.from_state] reopens it)."""
        return sharing.state_of(self, self._sources)

    @classmethod
    def from_state(cls, state: Mapping[str, Any], networks: Sequence[Classifier] | None = None) -> "Explorer":
        """The explorer that ``state`` describes (shape, networks, view, criterion, map axes, step, renderer).

        Parameters
        ----------
        state : mapping
            An explorer's ``state`` (after a JSON round trip too).
        networks : sequence of Classifier, optional
            Classifiers for networks that cannot be loaded by their names (your own), matched by name.

        Raises
        ------
        ValueError
            A state with missing entries, or one naming networks that neither load by name nor are given.
        """
        return sharing.reopened(cls, state, networks)

