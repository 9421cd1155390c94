"""Reports: the parameterized notebooks, executed with papermill, exported to HTML.

``run_reports()`` (``make report``, ``semkit report``) executes the report
notebooks in order into a report folder, each next to an HTML export, and
stops at the first failing notebook with a message that names it and the
cell, keeping what finished. :func:`setup` (through :func:`~semkit.load_shapes`) is
the notebooks' one way to pick shapes: gallery shapes by default, a ShapeNet
folder instead.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..scene import Mesh, load_shapes

#: The notebooks ``make report`` runs, in order (04, the explorer, is interactive).
__all__ = ["REPORT_NOTEBOOKS", "ReportError", "run_reports", "setup"]

REPORT_NOTEBOOKS = (
    "01_semantic_maps.ipynb", "02_robust_regions.ipynb", "03_network_comparison.ipynb", "05_trustworthy_robustness.ipynb",
)


class ReportError(RuntimeError):
    """A report notebook failed; the message says which, where, and where its output is."""


def setup(
    out: str | os.PathLike,
    figures: str | os.PathLike,
    shapes: Sequence[str] | None = None,
    shapenet: str | os.PathLike | None = None,
    classes: Sequence[str] | None = None,
    per_class: int = 2,
    image_size: int | None = None,
    smoke: bool = False,
) -> tuple[Path, Path, list[Mesh], int | None]:
    """What a report notebook starts with: its output and figure folders (made), its meshes, the render size.

    ``shapes`` that are gallery names mean nothing in a ShapeNet folder: with
    ``shapenet`` they are dropped, and its classes' first models are taken.
    ``smoke`` keeps two shapes (one model per class) and 64-pixel renders.
    ``image_size`` None: each network renders at its own input size.
    """
    from ..scene import gallery

    out, figures = Path(out), Path(figures)
    out.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)
    if shapenet is not None and shapes and all(s in gallery.names() for s in shapes if s):
        shapes = None
    shapes = [s for s in shapes or [] if s] or None
    if smoke:
        per_class, image_size = 1, 64
        if shapes or shapenet is None:
            shapes = (shapes or gallery.names())[:2]
    meshes = load_shapes(shapes, shapenet, classes, per_class)
    return out, figures, meshes, image_size


def _refuse_untrained(parameters: Mapping[str, Any]) -> None:
    """Reports present networks' robustness; an untrained network (``weights="random"``) has none: ReportError."""
    networks = parameters.get("networks") or []
    untrained = [getattr(n, "name", n) for n in (networks if isinstance(networks, (list, tuple)) else [networks])
                 if getattr(n, "weights", None) == "random"]
    if parameters.get("weights") == "random" or untrained:
        raise ReportError(f"reports present a network's robustness, but {untrained or 'the networks'} have random "
                          "weights (weights='random': untrained, for tests and speed measurements); use trained weights")


def run_reports(
    notebooks: str | os.PathLike = "notebooks",
    out: str | os.PathLike = "reports",
    parameters: Mapping[str, Any] | None = None,
    names: Sequence[str] = REPORT_NOTEBOOKS,
    html: bool = True,
    progress: bool = True,
) -> list[Path]:
    """Execute the report notebooks with papermill into ``out`` (plus HTML); returns the executed notebooks.

    Each notebook gets the ``parameters`` its parameters cell declares; a
    parameter that no report notebook declares (a misspelt name) is an
    error before anything runs, naming the ones they do declare, and so are
    networks with random weights (``weights="random"``). Raises
    :class:`ReportError` at the first failure, after the notebooks before it
    were written.
    """
    _refuse_untrained(parameters or {})
    try:
        import nbconvert  # noqa: F401  (the HTML export)
        import papermill
    except ImportError as e:
        raise ReportError(f"reports need the notebooks extra ({e.name} is missing): pip install \"semkit[notebooks]\"") from None

    notebooks, out = Path(notebooks).resolve(), Path(out).resolve()
    declared = {name: set(papermill.inspect_notebook(str(notebooks / name))) for name in names
                if (notebooks / name).exists()}
    unknown = sorted(set(parameters or {}) - set().union(*declared.values()))
    if unknown:
        known = sorted(set().union(*declared.values()))
        raise ReportError(f"unknown notebook parameter(s) {unknown}: the report notebooks declare {known}")
    out.mkdir(parents=True, exist_ok=True)
    done = []
    for name in names:
        source = notebooks / name
        if name not in declared:
            raise ReportError(f"report notebook {source} not found; {len(done)} notebook(s) before it finished and are "
                              f"kept in {out}")
        target = out / name
        start = time.perf_counter()
        if progress:
            print(f"[semkit report] {name} ...", flush=True)
        try:
            papermill.execute_notebook(
                source, target, parameters={k: v for k, v in (parameters or {}).items() if k in declared[name]},
                cwd=notebooks, progress_bar=progress, kernel_name="python3", config=_kernel_config(),
            )
        except papermill.PapermillExecutionError as e:
            raise ReportError(
                f"{name} failed in cell {e.exec_count} with {e.ename}: {e.evalue}. The executed notebook, with the "
                f"error, is at {target}; {len(done)} notebook(s) before it finished and are kept in {out}."
            ) from None
        if html:
            _export_html(target)
        done.append(target)
        if progress:
            print(f"[semkit report] {name} done in {time.perf_counter() - start:.0f} s", flush=True)
    return done


def _kernel_config():
    """The kernels talk to papermill over IPC sockets (local files), not TCP: nothing listens on a port, and the
    kernel has no reason to warn that its TCP traffic is unencrypted."""
    from traitlets.config import Config

    return Config({"KernelManager": {"transport": "ipc"}})


def _export_html(notebook: Path) -> Path:
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(notebook, as_version=4))
    path = notebook.with_suffix(".html")
    path.write_text(body, encoding="utf-8")
    return path
