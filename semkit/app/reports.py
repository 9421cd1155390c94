"""Reports: the parameterized notebooks, executed with papermill, exported to HTML.

``run_reports()`` (``make report``, ``semkit report``) executes the report
notebooks in order into a report folder, each next to an HTML export, and
stops at the first failing notebook with a message that names it and the
cell, keeping what finished. [`setup`][semkit.app.reports.setup] (through `load_shapes`) is
the notebooks' one way to pick shapes: gallery shapes by default, a ShapeNet
folder instead; [`loadable`][semkit.app.reports.loadable] names those shapes for a study on Dask, whose
workers load them themselves.
"""

from __future__ import annotations

import ast
import os
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..scene import Mesh, load_shapes

#: The notebooks ``make report`` runs, in order (04, the explorer, is interactive).
__all__ = ["REPORT_NOTEBOOKS", "ReportError", "check_parameters", "loadable", "run_reports", "setup"]

REPORT_NOTEBOOKS = (
    "01_semantic_maps.ipynb", "02_robust_regions.ipynb", "03_network_comparison.ipynb", "05_trustworthy_robustness.ipynb",
    "06_benchmark.ipynb",
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

    Parameters
    ----------
    out, figures : str or path
        The folders for results and for figures; made when missing.
    shapes : sequence of str, optional
        The shapes (see [`load_shapes`][semkit.scene.load_shapes]). Gallery names mean nothing in a ShapeNet folder: with
        ``shapenet`` they are dropped, and its classes' first models are taken.
    shapenet : str or path, optional
        A ShapeNetCore folder to take models from.
    classes : sequence of str, optional
        The ShapeNet classes; None: the paper's classes found there.
    per_class : int, default 2
        Models per ShapeNet class.
    image_size : int, optional
        The render size; None: each network renders at its own input size.
    smoke : bool, default False
        A quick run: two shapes (one model per class) and 64-pixel renders.

    Returns
    -------
    out, figures : pathlib.Path
    meshes : list of Mesh
    image_size : int or None
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


def loadable(shapes: Sequence[Mesh]) -> list[str]:
    """The meshes [`setup`][semkit.app.reports.setup] gave, as what a study on Dask takes: gallery names and absolute
    mesh file paths, which its workers load themselves.

    A study stores the same settings for these names as for the meshes, so a store made on Dask and one made in this
    process are the same store (notebook 06 reuses notebook 03's maps either way).

    Parameters
    ----------
    shapes : sequence of Mesh
        Gallery shapes and meshes loaded from files (ShapeNet models), as `setup` loads them.

    Returns
    -------
    list of str

    Raises
    ------
    ValueError
        A mesh made in memory, which no worker can load by a name.
    """
    from ..scene import gallery

    names = []
    for mesh in shapes:
        if mesh.source and Path(mesh.source).is_file():
            names.append(str(Path(mesh.source).resolve()))
        elif mesh.source == "semkit.gallery" and mesh.name in gallery.names():
            names.append(mesh.name)
        else:
            raise ValueError(f"shape {mesh.name!r} was made in memory (source {mesh.source!r}): a study on Dask loads "
                             "shapes by name on its workers; save it to a mesh file and pass the file")
    return names


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

    Parameters
    ----------
    notebooks : str or path, default "notebooks"
        The folder holding the report notebooks.
    out : str or path, default "reports"
        The folder the executed notebooks go to.
    parameters : mapping, optional
        Values for the notebooks' parameters cells; each notebook gets those its cell declares.
    names : sequence of str, default REPORT_NOTEBOOKS
        The notebooks to run, in order.
    html : bool, default True
        Also export each executed notebook as HTML.
    progress : bool, default True
        Print each notebook's start and time, and show papermill's progress bar.

    Returns
    -------
    list of pathlib.Path

    Raises
    ------
    ReportError
        Before anything runs: a parameter no report notebook declares (a misspelt name; the message names the ones
        they do declare), or networks with random weights (``weights="random"``). Else at the first failing
        notebook, after the notebooks before it were written.
    """
    _refuse_untrained(parameters or {})
    try:
        import nbconvert  # noqa: F401  (the HTML export)
        import papermill
    except ImportError as e:
        raise ReportError(f"reports need the notebooks extra ({e.name} is missing): pip install \"semkit[notebooks]\"") from None

    notebooks, out = Path(notebooks).resolve(), Path(out).resolve()
    declared = {name: set(params) for name, params in check_parameters(notebooks, parameters or {}, names).items()}
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ReportError(f"cannot write the reports to {out}: {e.strerror or e}; pick another folder") from None
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


def check_parameters(notebooks: str | os.PathLike, parameters: Mapping[str, Any],
                     names: Sequence[str] = REPORT_NOTEBOOKS) -> dict[str, dict[str, Any]]:
    """Each report notebook's declared parameters with their defaults, after checking ``parameters`` against them.

    Raises [`ReportError`][semkit.app.reports.ReportError] for a name no notebook declares, or a value whose type does not fit a
    notebook's default (a whole number where the default is one, a list where it is a list, ...).
    """
    try:
        import papermill
    except ImportError as e:
        raise ReportError(f"reports need the notebooks extra ({e.name} is missing): pip install \"semkit[notebooks]\"") from None
    notebooks = Path(notebooks)
    declared: dict[str, dict[str, Any]] = {}
    for name in names:
        if (notebooks / name).exists():
            declared[name] = {}
            for key, info in papermill.inspect_notebook(str(notebooks / name)).items():
                try:
                    declared[name][key] = ast.literal_eval(info["default"])
                except (ValueError, SyntaxError):
                    declared[name][key] = None  # a default that is an expression: any value
    if not declared:
        raise ReportError(f"{notebooks} holds none of the report notebooks {list(names)}: pass the notebooks folder "
                          "(--notebooks) of a semkit checkout or installation")
    known = sorted(set().union(*declared.values()))
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ReportError(f"unknown notebook parameter(s) {unknown}: the report notebooks declare {known}")
    for key, value in parameters.items():
        for defaults in declared.values():
            if key in defaults and (problem := _misfit(value, defaults[key]) or _not_a_step(key, value)
                                    or _not_for_dask(key, value)):
                raise ReportError(f"notebook parameter {key} = {value!r} {problem} (the default is {defaults[key]!r})")
    if parameters.get("smoke"):
        replaced = sorted(set(parameters) & set().union(*(smoke_sets(notebooks / name) for name in declared)))
        replaced += ["shapes"] if isinstance(parameters.get("shapes"), (list, tuple)) and len(parameters["shapes"]) > 2 else []
        if replaced:
            raise ReportError(f"smoke (--smoke) sets {replaced} itself (tiny settings; of shapes it keeps the first two), so the "
                              "values given would be replaced: drop smoke to run with them, or drop them")
    return declared


#: What [`setup`][semkit.app.reports.setup] sets itself with ``smoke`` (it also keeps two shapes).
SETUP_SMOKE = ("per_class", "image_size")


def smoke_sets(notebook: Path) -> set[str]:
    """The names a report notebook sets itself when ``smoke`` is on: those assigned under ``if smoke:`` in its code
    cells, and what [`setup`][semkit.app.reports.setup] sets."""
    import json

    names = set(SETUP_SMOKE)
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        if cell.get("cell_type") != "code":
            continue
        try:
            tree = ast.parse("".join(cell["source"]))
        except SyntaxError:  # cell magics and the like
            continue
        for node in tree.body:
            if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "smoke":
                for statement in ast.walk(node):
                    for target in getattr(statement, "targets", []):
                        names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


def _not_for_dask(key: str, value: Any) -> str | None:
    """Why ``value`` is no ``scheduler`` (a text: "local" or an address) or no ``workers`` count: None where it is one."""
    if key == "scheduler" and value is not None and not (isinstance(value, str) and value.strip()):
        return "must be 'local' (a Dask LocalCluster) or a scheduler's address, e.g. tcp://host:8786 (null: this process)"
    if key == "workers" and isinstance(value, int) and value < 1:
        return "must be at least 1 (processes of a 'local' scheduler)"
    return None


def _not_a_step(key: str, value: Any) -> str | None:
    """Why ``value`` is no grid or lattice step (a ``step*`` or ``*_step`` parameter): None where it is one."""
    if not (key.startswith("step") or key.endswith("_step")) or value is None:
        return None
    values = _flat(value) if isinstance(value, (list, tuple)) else [value]
    positive = all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in values)
    return None if positive and values else "must be positive (a step in the parameters' units, e.g. degrees)"


def _misfit(value: Any, default: Any) -> str | None:
    """Why ``value`` cannot stand where ``default`` is (None: it can); a None default takes anything."""
    if default is None or value is None:
        return None
    number = (int, float)
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "must be true or false"
    if isinstance(default, int):
        return None if isinstance(value, int) and not isinstance(value, bool) else "must be a whole number"
    if isinstance(default, float):
        return None if isinstance(value, number) and not isinstance(value, bool) else "must be a number"
    if isinstance(default, str):
        return None if isinstance(value, str) else "must be a text"
    if isinstance(default, dict):
        return None if isinstance(value, dict) else "must be a mapping, e.g. '{a: [0, 1]}'"
    if isinstance(default, (list, tuple)):
        numeric = all(isinstance(v, number) and not isinstance(v, bool) for v in _flat(default))
        if numeric and isinstance(value, number) and not isinstance(value, bool):
            return None  # one number for every entry
        if not isinstance(value, (list, tuple)):
            return "must be a list, e.g. '[a, b]'"
        if numeric and not all(isinstance(v, number) and not isinstance(v, bool) for v in _flat(value)):
            return "must hold numbers only"
        if default and all(isinstance(v, str) for v in _flat(default)) and not all(isinstance(v, str) for v in _flat(value)):
            return "must hold names only (quote one that YAML reads as a number or true/false, e.g. '[\"on\"]')"
    return None


def _flat(values: Any) -> list[Any]:
    return [v for item in values for v in (_flat(item) if isinstance(item, (list, tuple)) else [item])]


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
