"""The explorer's pictures: renders and figures as PNG bytes, every network's answer as an HTML table."""

from __future__ import annotations

import io
from html import escape
from typing import Mapping

import numpy as np
import xarray as xr


def predictions_html(ds: xr.Dataset, shape: str, point: Mapping[str, float], network: str, label: str,
                     criterion: str) -> str:
    """Every network's top classes (``Explorer.predictions``) side by side; the true class in bold."""
    where = ", ".join(f"{k} {v:g}" for k, v in point.items())
    shape, criterion, label = escape(shape), escape(criterion), escape(label)
    columns = []
    for name in ds.network.values:
        one = ds.sel(network=name)
        names = [escape(str(c)) for c in one.class_name.values]
        rows = "".join(f"<tr><td>{f'<b>{c}</b>' if c == label else c}</td><td style='text-align:right'>{p:.3f}</td></tr>"
                       for c, p in zip(names, one.probability.values))
        mark = "passes" if bool(one.passes) else "fails"
        top1 = f"<span class='semkit-top1'>{one.class_name.values[0]}</span>" if name == network else one.class_name.values[0]
        columns.append(f"<td style='vertical-align:top;padding-right:14px'><b>{name}</b>{' (map)' if name == network else ''}"
                       f"<br>top-1: {top1}<br>P({label}) = {float(one.score):.3f}, {mark}<table>{rows}</table></td>")
    return (f"<div class='semkit-prediction'><b>{shape}</b> at {where}; criterion: {criterion}"
            f"<table><tr>{''.join(columns)}</tr></table></div>")


def png(image: np.ndarray) -> bytes:
    """An [H, W, 3] image in [0, 1] as PNG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def figure_png(fig, dpi: int = 90) -> bytes:
    """A figure as PNG bytes (the figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()
