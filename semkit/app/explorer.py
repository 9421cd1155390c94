"""An interactive explorer: move through the semantic space and watch a network's answer.

[`Explorer`][semkit.app.explorer.Explorer] holds the state (shape, network, current point) and
computes what a person looks at: the render, the top-5 predictions, the
shape's 2-D map with a cursor, and robust regions grown from the current
point. Its logic is plain Python (tested without a browser);
[`Explorer.widget`][semkit.app.explorer.Explorer.widget] binds it to ipywidgets for Jupyter: a slider per
parameter, shape and network pickers, an algorithm picker and a button.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from ..classify import BUNDLED, Classifier, load_classifier
from ..function import SemanticFunction
from ..maps import interpolate, semantic_map
from ..regions import ALGORITHMS, DEFAULT_STEP_RULE, STEP_RULES, find_regions
from ..render import DEFAULTS, Renderer
from ..scene import Mesh
from ..space import Parameter, Space
from ..store import file_stem


class Explorer:
    """State and views of the explorer (see the module docstring).

    The map of each (shape, network) pair is computed once and kept. Regions
    grow on that map, interpolated, so a click answers at once.

    Parameters
    ----------
    shapes : sequence of str or Mesh, default four gallery shapes
        Gallery names, mesh files (ShapeNet's too) or meshes.
    networks : sequence of str or Classifier, default BUNDLED
        Network names or classifiers.
    space : Space, optional
        A 2-D Space; any parameter the renderer knows may be a slider (``Space.of("azimuth", "roll")``). None:
        [`Space.paper`][semkit.Space.paper].
    step : float or sequence of float, default (15, 10)
        The maps' grid step, in the Space's units (one, or one per parameter).
    image_size : int, optional
        The renders' size; None: each network's input size.
    store : str or path, optional
        A folder the maps are kept in too, so a rerun reads them back.
    renderer_options : mapping, optional
        Keywords for [`Renderer`][semkit.Renderer] (e.g. ``{"materials": True, "background": 0.5}``).

    Raises
    ------
    ValueError
        No shapes or no networks, or a Space that is not 2-D.
    """

    def __init__(
        self,
        shapes: Sequence[str | Mesh] = ("coffee_mug", "park_bench", "vase", "water_bottle"),
        networks: Sequence[str | Classifier] = BUNDLED,
        *,
        space: Space | None = None,
        step: float | Sequence[float] = (15, 10),
        image_size: int | None = None,
        store: str | Path | None = None,
        renderer_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not shapes or not networks:
            raise ValueError("the explorer needs at least one shape and one network")
        self.space = space or Space.paper()
        if self.space.n != 2:
            raise ValueError(f"the explorer shows a 2-D map: give it a Space of two parameters, not {list(self.space.names)}")
        from ..scene import load_shape

        self.meshes = {m.name: m for m in (load_shape(s) for s in shapes)}
        self._networks = {(n if isinstance(n, str) else n.name): n for n in networks}
        self.step = step
        self.image_size = image_size
        self.store = Path(store) if store is not None else None
        self.renderer_options = dict(renderer_options or {})
        self.shape = next(iter(self.meshes))
        self.network = next(iter(self._networks))
        start = {**DEFAULTS, "azimuth": 30.0, "elevation": 20.0}
        self.point = {p.name: float(np.clip(start.get(p.name, (p.low + p.high) / 2), p.low, p.high)) for p in self.space.parameters}
        self.regions: xr.Dataset | None = None
        self._functions: dict[tuple[str, str], SemanticFunction] = {}
        self._maps: dict[tuple[str, str], xr.Dataset] = {}
        self._loaded: set[str] = set()  # networks this explorer loaded from their names (dropped by close())
        self._widgets: list[Any] = []  # every widget that widget() made (closed by close())
        self._figures: list[Any] = []  # the figures map_figure() made (closed by close())
        self.update()

    # ------------------------------------------------------------ the state
    @property
    def shapes(self) -> list[str]:
        return list(self.meshes)

    @property
    def networks(self) -> list[str]:
        return list(self._networks)

    def function(self) -> SemanticFunction:
        """The SemanticFunction of the current shape and network."""
        key = (self.shape, self.network)
        if key not in self._functions:
            classifier = self._networks[self.network]
            if isinstance(classifier, str):
                classifier = self._networks[self.network] = load_classifier(classifier)
                self._loaded.add(self.network)
            renderer = Renderer(image_size=self.image_size or classifier.input_size, **self.renderer_options)
            self._functions[key] = SemanticFunction(self.meshes[self.shape], classifier, renderer=renderer, space=self.space)
        return self._functions[key]

    def close(self) -> None:
        """Release what the explorer holds: close its widgets and figures, stop the renderers' threads, drop
        the functions and the networks it loaded by name (the maps stay; all starts again when used)."""
        import matplotlib.pyplot as plt

        for widget in self._widgets:
            widget.close()
        self._widgets.clear()
        for fig in self._figures:
            plt.close(fig)
        self._figures.clear()
        for f in self._functions.values():
            f.close()
        self._functions.clear()
        for name in self._loaded:
            self._networks[name] = name
        self._loaded.clear()

    def __enter__(self) -> "Explorer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def set(self, **changes: Any) -> "Explorer":
        """Change the shape, the network or parameter values, and update what is shown.

        Bad values raise an error that names them, and change nothing; a periodic parameter's value is
        wrapped into its range (azimuth 370 is kept as 10).
        """
        point, shape, network = dict(self.point), self.shape, self.network
        for key, value in changes.items():
            if key == "shape":
                if value not in self.meshes:
                    raise ValueError(f"unknown shape {value!r}; the explorer has {self.shapes}")
                shape = value
            elif key == "network":
                if value not in self._networks:
                    raise ValueError(f"unknown network {value!r}; the explorer has {self.networks}")
                network = value
            elif key in self.space.names:
                try:
                    point[key] = float(value)
                except (TypeError, ValueError):
                    units = self.space[key].units
                    raise ValueError(f"{key} must be a number{f' ({units})' if units else ''}, got {value!r}") from None
            else:
                raise ValueError(f"unknown setting {key!r}: use shape, network or one of {list(self.space.names)}")
        # range and NaN checks, with errors that name the parameter; periodic values wrap (azimuth 370 is 10)
        point = dict(zip(self.space.names, map(float, self.space.points(point)[0])))
        if (shape, network) != (self.shape, self.network):
            self.regions = None  # a region belongs to its shape and network
        self.point, self.shape, self.network = point, shape, network
        return self.update()

    def update(self) -> "Explorer":
        """Render and classify the current point (``image``, ``top5``, ``score``, ``seconds``)."""
        start = time.perf_counter()
        f = self.function()
        pts = self.space.points({k: self.point[k] for k in self.space.names})
        ev = f.evaluate(pts, k=5)
        self.image = f.renderer.render(f.mesh, pts, space=self.space)[0].permute(1, 2, 0).numpy()
        labels = f.classifier.labels
        self.top5 = [(labels[int(i)], float(p)) for i, p in zip(ev.topk[0], ev.topk_prob[0])]
        self.score = float(ev.score[0])
        self.seconds = time.perf_counter() - start
        return self

    def map(self) -> xr.Dataset:
        """The 2-D map of the current shape and network (computed once)."""
        key = (self.shape, self.network)
        if key not in self._maps:
            store = None
            if self.store is not None:
                self.store.mkdir(parents=True, exist_ok=True)
                store = self.store / f"{file_stem(self.network)}__{file_stem(self.shape)}.nc"
            self._maps[key] = semantic_map(self.function(), space=self.space, step=self.step, store=store, progress=False)
        return self._maps[key]

    def grow(self, algorithm: str = "oir_b", step_rule: str = DEFAULT_STEP_RULE, iterations: int = 600) -> xr.Dataset:
        """Grow a robust region from the current point on the (interpolated) map; kept in ``regions``.

        Parameters
        ----------
        algorithm : str, default "oir_b"
            The region algorithm, by name (``"naive"``, ``"oir_b"``, ``"oir_w"``, ``"verified"``).
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
        start = [[self.point[k] for k in self.space.names]]
        self.regions = find_regions(
            interpolate(self.map(), space=self.space), start, (algorithm,), space=self.space, iterations=iterations,
            step_rule=step_rule, progress=False
        )
        return self.regions

    # ---------------------------------------------------------------- views
    def prediction_html(self) -> str:
        """The current prediction as text (what the widget shows under the render)."""
        f = self.function()
        rows = "".join(
            f"<tr><td>{'<b>' if name == f.label_name else ''}{name}{'</b>' if name == f.label_name else ''}</td>"
            f"<td style='text-align:right'>{p:.3f}</td></tr>"
            for name, p in self.top5
        )
        where = ", ".join(f"{k} {self.point[k]:g}" for k in self.space.names)
        return (
            f"<div class='semkit-prediction'><b>{f.classifier.name}</b> on <b>{self.shape}</b> at {where}<br>"
            f"top-1: <span class='semkit-top1'>{self.top5[0][0]}</span>; "
            f"P({f.label_name}) = {self.score:.3f}<table>{rows}</table></div>"
        )

    def map_figure(self, figsize: tuple[float, float] = (5.5, 3.4)):
        """The map with a cursor at the current point (and the grown region, if any); `close` closes it.

        Parameters
        ----------
        figsize : (float, float), default (5.5, 3.4)
            The figure's size in inches.

        Returns
        -------
        matplotlib.figure.Figure
        """
        import matplotlib.pyplot as plt

        from .. import plot

        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        self._figures = [f for f in self._figures if plt.fignum_exists(f.number)] + [fig]
        m = self.map()
        x, y = self.space.names
        if self.regions is not None:
            plot.regions(self.regions, m, x=x, y=y, ax=ax, show_correct=True)
        else:
            plot.heatmap(m, x=x, y=y, ax=ax, show_correct=True)
        ax.plot([self.point[x]], [self.point[y]], "o", ms=11, mfc="none", mec="yellow", mew=2.5)
        return fig

    def widget(self):
        """The explorer as ipywidgets (display it in a notebook)."""
        import ipywidgets as w

        sliders = {
            p.name: w.FloatSlider(
                value=self.point[p.name], min=p.low, max=p.high - (step if p.periodic else 0.0), step=step,
                description=f"{p.name} ({p.units})" if p.units else p.name, continuous_update=False,
                style={"description_width": "110px"}, layout=w.Layout(width="420px"),
            )
            for p, step in ((p, _slider_step(p)) for p in self.space.parameters)
        }
        shape = w.Dropdown(options=self.shapes, value=self.shape, description="shape")
        network = w.Dropdown(options=self.networks, value=self.network, description="network")
        algorithm = w.Dropdown(options=list(ALGORITHMS.names()), value="oir_b", description="algorithm")
        rule = w.Dropdown(options=list(STEP_RULES.names()), value=DEFAULT_STEP_RULE, description="steps",
                          tooltip="faithful: the paper's plain gradient steps; adaptive: the same flow in fewer, longer steps")
        button = w.Button(description="grow region", icon="expand", tooltip="grow a robust region from the current point")
        image = w.Image(format="png", layout=w.Layout(width="224px", height="224px"))
        prediction = w.HTML()
        map_view = w.Image(format="png", layout=w.Layout(width="500px"))
        status = w.HTML()

        def show(map_too: bool) -> None:
            image.value = _png(self.image)
            prediction.value = self.prediction_html()
            if map_too:
                status.value = "<i>computing the map...</i>" if (self.shape, self.network) not in self._maps else ""
                map_view.value = _figure_png(self.map_figure())
            status.value = f"<small>render + classify: {1000 * self.seconds:.0f} ms</small>"

        def on_slider(change) -> None:
            self.set(**{change["owner"].semkit_name: change["new"]})
            show(map_too=True)

        def on_pick(change) -> None:
            self.set(**{change["owner"].description: change["new"]})
            show(map_too=True)

        def on_grow(_) -> None:
            status.value = "<i>growing...</i>"
            regions = self.grow(algorithm.value, step_rule=rule.value)
            show(map_too=True)
            box = ", ".join(f"{p} [{lo:.0f}, {hi:.0f}]" for p, lo, hi in zip(regions.param.values, regions.lower.values[0, 0], regions.upper.values[0, 0]))
            status.value += f"<br>{algorithm.value} ({rule.value} steps): {box}"

        for name, slider in sliders.items():
            slider.semkit_name = name
            slider.observe(on_slider, names="value")
        shape.observe(on_pick, names="value")
        network.observe(on_pick, names="value")
        button.on_click(on_grow)
        show(map_too=True)
        controls = w.VBox([shape, network, *sliders.values(), w.HBox([algorithm, rule, button]), status])
        box = w.VBox([controls, w.HBox([w.VBox([image, prediction]), map_view])])
        box.semkit = {"sliders": sliders, "shape": shape, "network": network, "algorithm": algorithm, "step_rule": rule, "button": button,
                      "image": image, "prediction": prediction, "map": map_view, "status": status}
        self._widgets.extend(_descendants(box))
        return box


def _descendants(widget: Any) -> list[Any]:
    """A widget and every widget inside it (containers' children, and their layouts and styles)."""
    found = [widget]
    for child in getattr(widget, "children", ()):
        found.extend(_descendants(child))
    for part in ("layout", "style"):
        if getattr(widget, part, None) is not None:
            found.append(getattr(widget, part))
    return found


def _slider_step(parameter: Parameter) -> float:
    """1 degree (or scene unit) for wide ranges, 1% of the range for narrow ones (light intensity)."""
    return 1.0 if parameter.width >= 10 else parameter.width / 100


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _figure_png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()
