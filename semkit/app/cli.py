"""The ``semkit`` command line.

    semkit report [--out reports] [--figures figures] [--shapenet PATH] [--smoke]
    semkit sweep CONFIG.yaml [--scheduler ADDRESS]

``report`` runs the main job: the report notebooks (semantic maps, robust
regions, network comparison) executed with papermill on the built-in
defaults, offline (gallery shapes, bundled networks), into ``--out`` with
HTML exports, and their figures into ``--figures``. ``--shapenet`` runs the
same reports on a ShapeNetCore folder.

``sweep`` runs maps or region searches over shapes x networks on Dask (see
[`semkit.study`][semkit.study] with ``scheduler``), configured by a YAML file such as::

    kind: map                 # or: regions
    store: study.zarr
    networks: [efficientnet_lite0, efficientnet_lite1]
    shapes: [coffee_mug, vase]          # gallery names or mesh files; or:
    shapenet: /data/ShapeNetCore.v2     # with classes: [bench, chair] and per_class: 10
    step: [6, 5]                        # maps; regions take starts, algorithms, iterations, step_rule
    image_size: null                    # null: maps at the networks' largest input size (one render per view), regions at each network's
    workers: 2                          # LocalCluster processes, when no --scheduler (leave out: one per GPU, or 2)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def default_notebooks() -> Path:
    """The report notebooks: inside the installed package (a wheel), else the checkout's notebooks/ folder."""
    package = Path(__file__).resolve().parents[1]  # semkit/
    for folder in (package / "notebooks", package.parent / "notebooks"):
        if (folder / "01_semantic_maps.ipynb").is_file():
            return folder
    return package / "notebooks"


class _Failure(Exception):
    """A command's error, printed as one line without a traceback (exit status 2)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="semkit", description="Semantic robustness of image classifiers.")
    commands = parser.add_subparsers(dest="command", required=True)
    rep = commands.add_parser("report", help="run the report notebooks on the built-in defaults (offline)")
    rep.add_argument("--out", type=Path, default=Path("reports"), help="executed notebooks, HTML and maps (default: reports)")
    rep.add_argument("--figures", type=Path, default=Path("figures"), help="figures (default: figures)")
    rep.add_argument("--notebooks", type=Path, default=None,
                     help="the notebooks folder (default: the installed package's, or the checkout's)")
    rep.add_argument("--shapenet", type=Path, help="a ShapeNetCore folder to use instead of the gallery shapes")
    rep.add_argument("--smoke", action="store_true", help="tiny settings: a quick check that everything runs")
    rep.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="a notebook parameter (YAML value, e.g. -p networks '[efficientnet_lite0]'); an unknown "
                          "name is an error")
    swp = commands.add_parser("sweep", help="maps or regions over shapes x networks on Dask")
    swp.add_argument("config", type=Path, help="a YAML file (see `semkit.app.cli` docs)")
    swp.add_argument("--scheduler", help="a dask.distributed scheduler address (default: a LocalCluster)")
    args, extra = parser.parse_known_args(argv)
    if extra:  # the subcommand's own usage, not the top level's
        {"report": rep, "sweep": swp}[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return _run(args, rep, swp)
    except _Failure as e:
        print(f"semkit {args.command}: error: {e}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, rep: argparse.ArgumentParser, swp: argparse.ArgumentParser) -> int:
    if args.command == "sweep":
        try:
            options = _sweep_options(args.config)
        except (OSError, ValueError) as e:
            swp.error(str(e))
        try:
            spec, store, workers = _sweep_spec(options)  # a study is checked when it is made, before any work
        except (ValueError, TypeError, KeyError) as e:
            raise _Failure(str(e).strip("'\"")) from None
        from ..store import StoreError
        from ..studies import study

        start = time.perf_counter()
        try:
            result = study(spec, store=store, scheduler=args.scheduler or "local", workers=workers)
        except (ValueError, TypeError, KeyError, OSError, StoreError, ConnectionError) as e:
            raise _Failure(str(e).strip("'\"")) from None
        done = int(result.done.sum())
        print(f"semkit sweep: {done} of {result.done.size} tasks done ({result.attrs['computed']} computed now) "
              f"in {options['store']} ({time.perf_counter() - start:.0f} s)")
        return 0 if done == result.done.size else 1

    if args.command == "report":
        from .reports import ReportError, check_parameters, run_reports

        notebooks = args.notebooks or default_notebooks()
        if not notebooks.is_dir():
            rep.error(f"no notebooks folder at {notebooks} (pass --notebooks)")
        if args.shapenet is not None and not args.shapenet.is_dir():
            rep.error(f"--shapenet {args.shapenet} is not a folder")
        parameters = _report_parameters(args.parameter, rep)
        parameters.update(smoke=args.smoke, out=str(args.out.resolve()), figures=str(args.figures.resolve()))
        if args.shapenet is not None:
            parameters["shapenet"] = str(args.shapenet.resolve())
        try:
            check_parameters(notebooks, parameters)
        except ReportError as e:
            rep.error(str(e))
        for folder, flag in ((args.out, "--out"), (args.figures, "--figures")):
            if not _writable(folder):
                rep.error(f"{flag} {folder} cannot be written (no permission, or a file is in the way); pick another "
                          "folder")
        start = time.perf_counter()
        try:
            done = run_reports(notebooks, args.out, parameters)
        except ReportError as e:
            print(f"semkit report: {e}", file=sys.stderr)
            return 1
        print(f"semkit report: {len(done)} reports in {args.out}/ (notebooks and HTML), figures in {args.figures}/ "
              f"({time.perf_counter() - start:.0f} s)")
    return 0


#: notebook parameters the CLI sets from its own flags (a -p for them would be overwritten)
FLAG_PARAMETERS = {"smoke": "--smoke", "out": "--out", "figures": "--figures", "shapenet": "--shapenet"}


def _report_parameters(pairs: list[list[str]], rep: argparse.ArgumentParser) -> dict:
    """The -p NAME VALUE pairs as notebook parameters (YAML values); the parser's error for a malformed value or
    a parameter that a flag sets."""
    import yaml

    parameters = {}
    for name, value in pairs:
        if name in FLAG_PARAMETERS:
            rep.error(f"-p {name} is set by the flag {FLAG_PARAMETERS[name]}: use {FLAG_PARAMETERS[name]}"
                      f"{'' if name == 'smoke' else ' ' + value} instead")
        try:
            parameters[name] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            problem = str(getattr(e, "problem", None) or e).splitlines()[0]
            rep.error(f"-p {name} {value!r} is not a YAML value ({problem}); quote lists, e.g. -p {name} '[a, b]'")
    return parameters


def _writable(folder: Path) -> bool:
    """Whether ``folder`` is or can be made a folder this process writes in: its nearest existing parent takes a
    file (tried, then removed: permission bits alone do not tell for root or read-only file systems)."""
    import tempfile

    existing = folder.resolve()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return False
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".semkit-write-check-"):
            return True
    except OSError:
        return False


SWEEP_KEYS = {"kind", "store", "networks", "shapes", "shapenet", "classes", "per_class", "space", "step", "starts",
              "algorithms", "iterations", "step_rule", "image_size", "adaptive", "max_error", "criterion", "workers"}
#: The keys of each kind of work.
KIND_KEYS = {"map": ("step", "adaptive", "max_error"), "regions": ("starts", "algorithms", "iterations", "step_rule", "criterion")}


def _sweep_spec(options: dict):
    """A sweep config's options as (StudySpec, store, workers)."""
    from ..studies import KINDS, StudySpec

    options = dict(options)
    kind = options.pop("kind", "map")
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose from {sorted(KINDS)}")
    wrong = [k for other, keys in KIND_KEYS.items() if other != kind for k in keys if k in options]
    if wrong:
        raise ValueError(f"options {wrong} are not for kind {kind!r}: it takes {list(KIND_KEYS[kind])}")
    work = KINDS[kind](**{k: options.pop(k) for k in KIND_KEYS[kind] if k in options})
    store, workers = options.pop("store"), options.pop("workers", None)
    return StudySpec(options.pop("shapes"), options.pop("networks"), work, **options), store, workers


def _sweep_options(config: Path) -> dict:
    """sweep() keyword arguments from a YAML config (paths relative to the config's folder)."""
    import yaml

    if not config.is_file():
        raise ValueError(f"no sweep config at {config}")
    try:
        options = yaml.safe_load(config.read_text()) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = str(getattr(e, "problem", None) or e).splitlines()[0]
        raise ValueError(f"{config} is not valid YAML{where}: {problem}") from None
    if not isinstance(options, dict):
        raise ValueError(f"{config} must hold a mapping of sweep options")
    unknown = set(options) - SWEEP_KEYS
    if unknown:
        raise ValueError(f"{config}: unknown options {sorted(unknown)}; known: {sorted(SWEEP_KEYS)}")
    for key in ("store", "networks"):
        if key not in options:
            raise ValueError(f"{config} needs `{key}`")
    _check_sweep_types(config, options)
    here = config.resolve().parent
    options["store"] = str(here / options["store"])
    shapenet, classes, per_class = options.pop("shapenet", None), options.pop("classes", None), options.pop("per_class", 10)
    if shapenet is not None:
        from ..scene import PAPER_CLASSES, ShapeNet

        data = ShapeNet(here / shapenet)
        chosen = classes or [c for c in data.classes if c in PAPER_CLASSES]
        options["shapes"] = [p for c in chosen for p in [str(e.path) for e in data.entries(c) if e.available][:per_class]]
    if not options.get("shapes"):
        raise ValueError(f"{config} needs `shapes` (gallery names or mesh files) or `shapenet`")
    space = options.pop("space", "paper")
    from ..space import Space

    presets = {"paper": Space.paper(), "paper_clipped": Space.paper(periodic=False), "paper_1d": Space.paper_1d()}
    if isinstance(space, str) and space not in presets:
        raise ValueError(f"{config}: space must be one of {sorted(presets)} or a mapping (Space.to_dict())")
    if isinstance(space, str):
        options["space"] = presets[space]
    else:
        if not isinstance(space, dict) or set(space) - {"parameters", "fixed"} or "parameters" not in space:
            keys = sorted(space) if isinstance(space, dict) else type(space).__name__
            raise ValueError(f"{config}: space must be one of {sorted(presets)} or a mapping with `parameters` (and "
                             f"`fixed`), as Space.to_dict() writes it; got {keys}")
        try:
            options["space"] = Space.from_dict(space)
        except (TypeError, KeyError, ValueError, AttributeError) as e:
            raise ValueError(f"{config}: space is not a valid Space mapping ({e}); write it as Space.to_dict() does, "
                             f"or name one of {sorted(presets)}") from None
    options["shapes"] = [s if s in _gallery_names() else str(here / s) for s in options["shapes"]]
    return options


#: The sweep options that name things, and what each must be: a text, or a list of texts (a single text is refused,
#: not taken as a one-item list, as StudySpec refuses it: write [name] for one).
SWEEP_TEXTS = {"store": "a .zarr folder path, e.g. study.zarr", "shapenet": "a ShapeNetCore folder path"}
SWEEP_LISTS = {"shapes": "gallery names or mesh files", "networks": "network names", "classes": "ShapeNet class names"}


def _check_sweep_types(config: Path, options: dict) -> None:
    """One-line errors for sweep options of the wrong type, naming the key and what it takes."""
    for key, what in SWEEP_TEXTS.items():
        if key in options and not isinstance(options[key], str):
            raise ValueError(f"{config}: `{key}` must be {what}, got {options[key]!r}")
    for key, what in SWEEP_LISTS.items():
        value = options.get(key)
        if value is None and key != "networks":  # no classes: the paper's; no shapes: those of `shapenet`
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            example = f"[{value}]" if isinstance(value, str) else "[a, b]"
            raise ValueError(f"{config}: `{key}` must be a list of {what}, e.g. {example} (a list even for one); "
                             f"got {value!r}")
    per_class = options.get("per_class", 10)
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ValueError(f"{config}: `per_class` must be a whole number of at least 1, got {per_class!r}")


def _gallery_names() -> list[str]:
    from ..scene import gallery

    return gallery.names()


if __name__ == "__main__":
    sys.exit(main())
