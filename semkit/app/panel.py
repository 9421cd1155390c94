"""The explorer's widgets: a map that takes clicks, sliders, pickers, and trust buttons that answer in the background.

`build` binds an [`Explorer`][semkit.app.explorer.Explorer] to ipywidgets. A move (slider, click, arrow key on the
map) renders the view once and shows every network's top-5; the map's picture is redrawn only when what it shows
changes (a new map, an answer, another comparison), the cursor being drawn by the browser. Each trust button runs
its question as a [`Task`][semkit.app.tasks.Task]: the widgets stay live, a progress bar counts the views, **cancel**
stops it between two chunks, and the answer is drawn on the map with its criterion, guarantee and queries.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any, Callable

import numpy as np
import xarray as xr

from ..regions import ALGORITHMS, DEFAULT_STEP_RULE, STEP_RULES
from ..space import Parameter
from .canvas import MapCanvas
from .pictures import figure_png, png
from .tasks import Cancelled, Task

CRITERIA = ("top-1", "top-5", "score >= 0.5", "margin >= 0.1")
NONE = "(none)"  # no network compared
WIDE = {"width": "auto"}  # buttons as wide as their words


def build(explorer: Any):
    """The explorer as a widget box; ``box.semkit`` names its parts (for tests and notebooks)."""
    return _Panel(explorer).box


class _Panel:
    def __init__(self, explorer: Any) -> None:
        import ipywidgets as w

        self.ex, self.task, self.syncing, self.map_wanted = explorer, None, False, False
        space = explorer.space
        self.sliders = {
            p.name: w.FloatSlider(
                value=explorer.point[p.name], min=p.low, max=p.high - (step if p.periodic else 0.0), step=step,
                description=f"{p.name} ({p.units})" if p.units else p.name, continuous_update=False,
                style={"description_width": "110px"}, layout=w.Layout(width="420px"),
            )
            for p, step in ((p, _slider_step(p)) for p in space.parameters)
        }
        self.shape = w.Dropdown(options=explorer.shapes, value=explorer.shape, description="shape")
        self.network = w.Dropdown(options=explorer.networks, value=explorer.network, description="network",
                                  tooltip="the network the map and the trust questions are about")
        self.compare = w.Dropdown(options=[NONE] + explorer.networks, value=explorer.compare or NONE,
                                  description="compare", tooltip="outline on the map where this network's top-1 differs")
        self.criterion = w.Combobox(value=explorer.criterion.name, options=list(CRITERIA), description="criterion",
                                    ensure_option=False, tooltip="what a view must pass: top-1, top-5, score >= t, margin >= m")
        self.x = w.Dropdown(options=list(space.names), value=explorer.axes[0], description="map x")
        self.y = w.Dropdown(options=list(space.names), value=explorer.axes[1], description="map y")
        self.map_button = w.Button(description="map this slice", icon="th", tooltip="compute the map at the other parameters' values", layout=w.Layout(**WIDE))
        self.algorithm = w.Dropdown(options=[n for n in ALGORITHMS.names() if n != "verified"], value="oir_b",
                                    description="algorithm")
        self.step_rule = w.Dropdown(options=list(STEP_RULES.names()), value=DEFAULT_STEP_RULE, description="steps")
        self.grow = w.Button(description="grow region", icon="expand", tooltip="the paper's heuristic region, on the map", layout=w.Layout(**WIDE))
        self.radius_button = w.Button(description="radius", icon="circle-o",
                                      tooltip="how far every view around this one passes (a guarantee)", layout=w.Layout(**WIDE))
        self.failures_button = w.Button(description="find failures", icon="search",
                                        tooltip="the worst view within +-radius (a search, no guarantee)", layout=w.Layout(**WIDE))
        self.search_radius = w.FloatText(value=20.0, description="+-", layout=w.Layout(width="140px"),
                                         style={"description_width": "20px"})
        self.verified_button = w.Button(description="verified box", icon="check-square-o",
                                        tooltip="a box where at most 1% of the views fail, with 95% confidence", layout=w.Layout(**WIDE))
        self.certify_button = w.Button(description="certify", icon="certificate",
                                       tooltip="the smoothed network's answer and certified radius (of g, not the network)", layout=w.Layout(**WIDE))
        self.sigma = w.FloatText(value=10.0, description="sigma", layout=w.Layout(width="150px"),
                                 style={"description_width": "40px"})
        self.cancel = w.Button(description="cancel", icon="stop", disabled=True, button_style="warning")
        self.progress = w.IntProgress(value=0, min=0, max=1, description="", layout=w.Layout(width="200px", visibility="hidden"))
        self.image = w.Image(format="png", layout=w.Layout(width="224px", height="224px"))
        self.worst = w.Image(format="png", layout=w.Layout(width="112px", height="112px", visibility="hidden"))
        self.worst_caption = w.HTML()
        self.prediction = w.HTML()
        self.canvas = MapCanvas(width=520)
        self.status = w.HTML()
        self.answer = w.HTML()
        self._bind()
        self.show(map_changed=True)
        trust = w.HBox([self.radius_button, self.failures_button, self.search_radius, self.verified_button,
                        self.certify_button, self.sigma, self.cancel, self.progress])
        pickers = [w.HBox([self.shape, self.network, self.compare]), w.HBox([self.criterion, self.algorithm, self.step_rule, self.grow])]
        if space.n > 2:
            pickers.append(w.HBox([self.x, self.y, self.map_button]))
        controls = w.VBox([*pickers, *self.sliders.values(), trust, self.status])
        views = w.HBox([w.VBox([self.image, w.HBox([self.worst, self.worst_caption])]), w.VBox([self.canvas, self.answer])])
        self.box = w.VBox([controls, views, self.prediction])
        self.box.semkit = {
            "sliders": self.sliders, "shape": self.shape, "network": self.network, "compare": self.compare,
            "criterion": self.criterion, "x": self.x, "y": self.y, "map_slice": self.map_button,
            "algorithm": self.algorithm, "step_rule": self.step_rule, "button": self.grow, "radius": self.radius_button,
            "find_failures": self.failures_button, "search_radius": self.search_radius, "verified_box": self.verified_button,
            "certify": self.certify_button, "sigma": self.sigma, "cancel": self.cancel, "progress": self.progress,
            "image": self.image, "worst": self.worst, "prediction": self.prediction, "map": self.canvas, "status": self.status,
            "answer": self.answer, "panel": self,
        }
        parts = [self.box, self.x, self.y, self.map_button]  # the axes pickers are shown only for more than 2 parameters
        for widget in {id(w): w for part in parts for w in _descendants(part)}.values():
            explorer.keep(widget)

    # ------------------------------------------------------------ wiring
    def _bind(self) -> None:
        for name, slider in self.sliders.items():
            slider.observe(lambda change, name=name: self._move({name: change["new"]}), names="value")
        self.canvas.observe(self._clicked, names="clicked")
        for picker, key in ((self.shape, "shape"), (self.network, "network"), (self.compare, "compare")):
            picker.observe(lambda change, key=key: self._pick(key, None if change["new"] == NONE else change["new"]), names="value")
        self.criterion.observe(lambda change: self._pick("criterion", change["new"]), names="value")
        for picker in (self.x, self.y):
            picker.observe(lambda change: self._pick("axes", (self.x.value, self.y.value)), names="value")
        self.map_button.on_click(lambda _: self._start_map())
        self.grow.on_click(self._grow)
        self.radius_button.on_click(lambda _: self._ask("robustness_radius", self.ex.robustness_radius))
        self.failures_button.on_click(lambda _: self._ask("find_failures", lambda: self.ex.find_failures(self.search_radius.value)))
        self.verified_button.on_click(lambda _: self._ask("verified_box", self.ex.verified_box))
        self.certify_button.on_click(lambda _: self._ask("certify", lambda: self.ex.certify(self.sigma.value)))
        self.cancel.on_click(lambda _: self.task is not None and self.task.cancel())

    def _move(self, changes: dict[str, float]) -> None:
        if self.syncing:
            return
        old_slice = self.ex.slice_space()
        self._guarded(lambda: self.ex.set(**changes))
        self.show(map_changed=self.ex.slice_space() != old_slice)

    def _clicked(self, change) -> None:
        if not change["new"]:
            return
        x, y = change["new"][:2]
        changes = {}
        for name, value in zip(self.ex.axes, (x, y)):
            p = self.ex.space[name]
            step = _slider_step(p)
            value = round(value / step) * step
            changes[name] = value % p.width if p.periodic and not p.low <= value < p.high else float(np.clip(value, p.low, p.high))
        self._move(changes)

    def _pick(self, key: str, value: Any) -> None:
        if self.syncing:
            return
        if key == "criterion" and value not in CRITERIA and not _parses(value):
            self.status.value = f"<span style='color:#b00'>{escape(f'criterion {value!r}: {_parse_error(value)}')}</span>"
            return
        self._guarded(lambda: self.ex.set(**{key: value}))
        self.show(map_changed=True)

    def _guarded(self, change: Callable[[], Any]) -> None:
        try:
            change()
        except ValueError as e:
            self.status.value = f"<span style='color:#b00'>{escape(str(e))}</span>"

    # ------------------------------------------------------------ showing
    def show(self, map_changed: bool) -> None:
        """Show the current view; redraw the map's picture when what it shows changed."""
        ex = self.ex
        self.syncing = True
        try:
            for name, slider in self.sliders.items():
                slider.value = ex.point[name]
        finally:
            self.syncing = False
        self.image.value = png(ex.image)
        self.prediction.value = ex.prediction_html()
        x, y = ex.axes
        self.canvas.point = [ex.point[x], ex.point[y]]
        self.canvas.step = [float(ex.step[ex.space.names.index(x)]), float(ex.step[ex.space.names.index(y)])]
        self.status.value = f"<small>render + {len(ex.networks)} network(s): {1000 * ex.seconds:.0f} ms</small>"
        if map_changed:
            if ex.has_map() or ex.space.n > 2:
                self.redraw()
            else:
                self.canvas.src = ""  # no picture of another shape's map under this shape's cursor
            if not ex.has_map():
                if ex.space.n == 2:
                    self._start_map()
                else:
                    self.status.value += "<br><i>the map shows another slice: press <b>map this slice</b></i>"

    def _start_map(self) -> None:
        """Compute the map in the background (it cannot be cancelled: the sliders stay live meanwhile); if a question
        is running, once it ends."""
        if self.task is not None and self.task.running:
            self.map_wanted = True
            self.status.value += "<br><i>the map follows when the running question ends</i>"
            return
        self.map_wanted = False
        self._start("the map", self.ex.map, on_done=lambda _: None, cancellable=False)

    def redraw(self) -> None:
        """Draw the map, with everything found, into the canvas."""
        fig = self.ex.map_figure(cursor=False)
        ax = fig.axes[0]
        self.canvas.show(figure_png(fig), ax)

    # ------------------------------------------------------------ questions
    def _grow(self, _) -> None:
        if self.task is not None and self.task.running:
            self.status.value = "<i>still answering: grow when it ends, or press cancel</i>"
            return
        self.status.value = "<i>growing...</i>"
        try:
            regions = self.ex.grow(self.algorithm.value, step_rule=self.step_rule.value)
        except ValueError as e:
            self.status.value = f"<span style='color:#b00'>{escape(str(e))}</span>"
            return
        self.redraw()
        box = ", ".join(f"{p} [{lo:.0f}, {hi:.0f}]" for p, lo, hi in zip(regions.param.values, regions.lower.values[0, 0],
                                                                         regions.upper.values[0, 0]))
        self.answer.value = f"{self.algorithm.value} ({self.step_rule.value} steps; the paper's heuristic, no guarantee): {box}"
        self.status.value += f"<br>{self.algorithm.value} ({self.step_rule.value} steps): {box}"

    def _ask(self, name: str, question: Callable[[], xr.Dataset]) -> None:
        self._start(name.replace("_", " "), question, on_done=lambda result: self._answered(name, result))

    def _start(self, what: str, work: Callable[[], Any], on_done: Callable[[Any], None], cancellable: bool = True) -> None:
        if self.task is not None and self.task.running:
            self.status.value = "<i>still answering: wait, or press cancel</i>"
            return
        self.progress.value, self.progress.max = 0, max(1, _expected_views(what))
        self.progress.layout.visibility = "visible" if cancellable else "hidden"
        self.cancel.disabled = not cancellable
        self.status.value = f"<i>{what}: running (the sliders stay live)</i>"

        def on_views(views: int) -> None:
            self.progress.max = max(self.progress.max, views)
            self.progress.value = views
            self.progress.description = f"{views} views"

        def done(result: Any, error: BaseException | None) -> None:
            self.cancel.disabled = True
            self.progress.layout.visibility = "hidden"
            if isinstance(error, Cancelled):
                self.status.value = f"<i>{what}: cancelled</i>"
            elif error is not None:
                self.status.value = f"<span style='color:#b00'>{what} failed: {escape(f'{type(error).__name__}: {error}')}</span>"
            else:
                on_done(result)
                self.redraw()
                if what == "the map":
                    self.status.value = f"<small>{what}: done</small>"
            if self.map_wanted and not self.ex.has_map():
                self.task = None
                self._start_map()

        self.task = self.ex.keep(Task(work, done, on_views))

    def _answered(self, name: str, result: xr.Dataset) -> None:
        ex = self.ex
        self.answer.value = summary(name, result)
        self.status.value = f"<small>{name.replace('_', ' ')}: done</small>"
        if name == "find_failures":
            self.worst.value = png(ex.worst_image)
            self.worst.layout.visibility = "visible"
            self.worst_caption.value = (f"<small>worst view found:<br>score {float(result.score.values[0]):.3f}<br>"
                                        + "<br>".join(f"{p} {v:.1f}" for p, v in zip(result.param.values, result.point.values[0]))
                                        + "</small>")


def summary(name: str, result: xr.Dataset) -> str:
    """One answer in words: what it says, under which criterion and guarantee, at what cost in queries."""
    criterion = result.attrs.get("criterion", "?")
    if name == "robustness_radius":
        r = ", ".join(f"{p} +-{v:g}" for p, v in zip(result.param.values, result.radius.values[0]))
        what = (f"radius {r}" if int(result.steps.values[0]) >= 0 else "the view itself fails")
        said = result.attrs.get("guarantee", "")
        queries = int(result.queries.values[0])
    elif name == "find_failures":
        failed = bool(result.failed.values[0])
        what = f"{'a failing view found' if failed else 'no failure found'} (worst score {float(result.score.values[0]):.3f})"
        said = "a search: a failure found is real, none found proves nothing"
        queries = int(result.queries.values[0])
    elif name == "verified_box":
        lower, upper = result.lower.values[0, 0], result.upper.values[0, 0]
        what = ("no box: the view fails" if not np.isfinite(lower).all()
                else "box " + ", ".join(f"{p} [{a:.1f}, {b:.1f}]" for p, a, b in zip(result.param.values, lower, upper)))
        said = (f"with confidence {result.attrs.get('confidence')}, at most {result.attrs.get('max_failure')} of the box's "
                "views fail (fresh uniform samples)")
        queries = int(result.queries.values[0, 0]) if "queries" in result else -1
    else:
        prediction, r = int(result.prediction.values[0]), float(result.radius.values[0])
        what = ("the smoothed network abstains" if prediction < 0
                else f"the smoothed network answers {prediction} ({'right' if bool(result.correct.values[0]) else 'wrong'}) "
                     f"within radius {r:.2f} sigma ({', '.join(f'{k}={v:g}' for k, v in json.loads(result.attrs['sigma']).items())})")
        said = result.attrs.get("guarantee", "")
        queries = int(result.attrs.get("queries", -1))
    return (f"<div class='semkit-answer' data-question='{name}'><b>{name.replace('_', ' ')}</b>: {what}<br>"
            f"<small>criterion: {criterion}; {said}; {queries} queries</small></div>")


def _expected_views(what: str) -> int:
    """A progress bar's length: a question's usual number of views (it grows if the question needs more)."""
    return {"find failures": 200, "verified box": 2000, "certify": 1100, "robustness radius": 400}.get(what, 100)


def _parses(text: str) -> bool:
    return _parse_error(text) is None


def _parse_error(text: str) -> str | None:
    from ..criterion import Criterion

    try:
        Criterion.parse(text)
    except (TypeError, ValueError) as e:
        return str(e)
    return None


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
