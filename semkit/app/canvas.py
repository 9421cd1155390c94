"""The explorer's map canvas: a picture of the map that takes clicks and arrow keys.

Matplotlib draws the map (with what the trust layer found) into a PNG only
when the map or its marks change; the cursor is drawn by the browser over
the picture, so a move costs no redraw. The canvas knows where the axes lie
in the picture (``frame``) and turns a click into a point of the map's two
parameters; the arrow keys step the cursor by one map cell. It is an
anywidget, so it runs wherever Jupyter widgets do (JupyterLab, Notebook 7,
VS Code, Colab) with no extension to install.
"""

from __future__ import annotations

import base64
from typing import Any

import anywidget
import traitlets

_ESM = """
const NS = "http://www.w3.org/2000/svg";
function render({ model, el }) {
  const wrap = document.createElement("div");
  wrap.className = "semkit-map";
  wrap.tabIndex = 0;  // takes focus: the arrow keys step the cursor
  wrap.dataset.lmSuppressShortcuts = "true";  // JupyterLab leaves the keys to it
  wrap.style.cssText = "position:relative;display:inline-block;outline:none;cursor:crosshair;line-height:0";
  const img = document.createElement("img");
  img.draggable = false;
  img.style.display = "block";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("style", "position:absolute;left:0;top:0;width:100%;height:100%;pointer-events:none;overflow:visible");
  const ring = document.createElementNS(NS, "circle");
  ring.setAttribute("r", "8");
  ring.setAttribute("fill", "none");
  ring.setAttribute("stroke", "yellow");
  ring.setAttribute("stroke-width", "2.5");
  ring.classList.add("semkit-cursor");
  svg.appendChild(ring);
  wrap.append(img, svg);
  el.appendChild(wrap);

  const frame = () => model.get("frame");
  function toPixels(x, y) {
    const f = frame();
    const fx = f.left + (x - f.x0) / (f.x1 - f.x0) * (f.right - f.left);
    const fy = f.bottom + (y - f.y0) / (f.y1 - f.y0) * (f.top - f.bottom);
    return [100 * fx, 100 * (1 - fy)];
  }
  function draw() {
    img.src = model.get("src");
    img.style.width = model.get("width") + "px";
    const [x, y] = model.get("point");
    const [px, py] = toPixels(x, y);
    ring.setAttribute("cx", px + "%");
    ring.setAttribute("cy", py + "%");
  }
  function go(x, y) {
    model.set("clicked", [x, y, Date.now()]);
    model.save_changes();
  }
  img.addEventListener("click", (event) => {
    const box = img.getBoundingClientRect();
    const f = frame();
    const fx = (event.clientX - box.left) / box.width;
    const fy = 1 - (event.clientY - box.top) / box.height;
    if (fx < f.left || fx > f.right || fy < f.bottom || fy > f.top) return;  // the axes only
    go(f.x0 + (fx - f.left) / (f.right - f.left) * (f.x1 - f.x0), f.y0 + (fy - f.bottom) / (f.top - f.bottom) * (f.y1 - f.y0));
    wrap.focus();
  });
  wrap.addEventListener("keydown", (event) => {
    const d = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] }[event.key];
    if (!d) return;
    event.preventDefault();
    event.stopPropagation();
    const [x, y] = model.get("point");
    const s = model.get("step");
    go(x + d[0] * s[0], y + d[1] * s[1]);
  });
  for (const name of ["src", "point", "frame", "width"]) model.on("change:" + name, draw);
  draw();
}
export default { render };
"""


class MapCanvas(anywidget.AnyWidget):
    """The map as a picture with a cursor; a click or an arrow key sets ``clicked`` to ``[x, y, time]``.

    Parameters
    ----------
    width : int, default 500
        The picture's width on screen, in pixels.
    """

    _esm = _ESM
    src = traitlets.Unicode("").tag(sync=True)  # the map as a PNG data URL
    frame = traitlets.Dict({"left": 0.0, "right": 1.0, "bottom": 0.0, "top": 1.0, "x0": 0.0, "x1": 1.0, "y0": 0.0,
                            "y1": 1.0}).tag(sync=True)  # the axes in the picture (fractions) and their data limits
    point = traitlets.List([0.0, 0.0]).tag(sync=True)  # the cursor, in the map's units
    step = traitlets.List([1.0, 1.0]).tag(sync=True)  # an arrow key's step, in the map's units
    clicked = traitlets.List([]).tag(sync=True)  # set by the browser: [x, y, time in ms]
    width = traitlets.Int(500).tag(sync=True)

    def __init__(self, width: int = 500) -> None:
        super().__init__(width=width)

    def show(self, png: bytes, ax: Any) -> None:
        """Show the picture ``png`` of the figure that holds ``ax`` (the map's axes), and where ``ax`` lies in it."""
        box = ax.get_position()
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        self.frame = {"left": float(box.x0), "right": float(box.x1), "bottom": float(box.y0), "top": float(box.y1), "x0": float(x0), "x1": float(x1),
                      "y0": float(y0), "y1": float(y1)}
        self.src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")

    def pixel_of(self, x: float, y: float) -> tuple[float, float]:
        """Where the point (x, y) lies in the picture, as fractions of its width and height from the top left."""
        f = self.frame
        fx = f["left"] + (x - f["x0"]) / (f["x1"] - f["x0"]) * (f["right"] - f["left"])
        fy = f["bottom"] + (y - f["y0"]) / (f["y1"] - f["y0"]) * (f["top"] - f["bottom"])
        return fx, 1 - fy

    def click(self, fx: float, fy: float) -> None:
        """Click the picture at fractions (fx, fy) of its width and height from the top left, as the browser does."""
        f = self.frame
        up = 1 - fy
        if not (f["left"] <= fx <= f["right"] and f["bottom"] <= up <= f["top"]):
            return
        x = f["x0"] + (fx - f["left"]) / (f["right"] - f["left"]) * (f["x1"] - f["x0"])
        y = f["y0"] + (up - f["bottom"]) / (f["top"] - f["bottom"]) * (f["y1"] - f["y0"])
        self.clicked = [x, y, (self.clicked[2] + 1) if self.clicked else 0]
