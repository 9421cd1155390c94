"""The paper's released maps (its repository's ``checkpoint/`` folder) read as a map study.

The paper's code (github.com/ajhamdi/semantic-robustness) saves one
``<Network>/<class>/<object>/map.pt`` per network and shape: a torch-saved
dict of numpy arrays ``xx``, ``yy`` (``np.meshgrid`` of azimuth 0..357 and
elevation -10..89, step 3: rows are elevations) and ``z`` (the true class's
probability at each view), with ``class_nb`` (an index into the paper's 10
classes), ``shape_id`` (the ShapeNet id) and ``network_name``. They are read
with ``torch.load(weights_only=True)``, allowing numpy's array reconstruction
and nothing else, so no code in a file runs.

The ``optim.pt`` files beside the maps hold the paper's regions (`read_paper_regions`): per algorithm
(naive, OIR_B, OIR_W) the box grown from each of four initial points, pickled as the paper's own classes
(``scale_robustness.n_interval``, ``interval.interval``). They are read by a restricted unpickler that
rebuilds numpy arrays and, for those two classes, inert records of the state they pickled: no class of the
paper is imported and nothing in a file runs; any other name is refused.
"""

from __future__ import annotations

import codecs
import datetime
import json
import pickle
import re
import zipfile
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..space import Space
from ..version import VERSION
from .files import StoreError, fingerprint

#: The paper's 10 classes, by ``class_nb`` (its ``object_list``), and their ImageNet indices (its ``obj_class_list``).
PAPER_CLASSES = ("aeroplane", "bathtub", "bench", "bottle", "chair", "cup", "piano", "rifle", "vase", "toilet")
PAPER_LABELS = (404, 435, 703, 898, 559, 968, 579, 413, 883, 861)
#: The file of one map, and the keys it holds.
MAP_FILE = "map.pt"
MAP_KEYS = ("xx", "yy", "z", "class_nb")
#: The file of one shape's regions, and the paper's names of its algorithms with semkit's.
OPTIM_FILE = "optim.pt"
PAPER_ALGORITHMS = {"naive": "naive", "OIR_B": "oir_b", "OIR_W": "oir_w"}
#: The paper's classes an optim.pt pickles, read as inert records of their state.
PAPER_RECORDS = ("scale_robustness.n_interval", "interval.interval")
#: Where the numbers come from, in the attrs of every study read here.
ORIGIN = ("the paper's released maps (Hamdi & Ghanem, github.com/ajhamdi/semantic-robustness, checkpoint/): views "
          "rendered by the paper's renderer (neural_renderer, camera distance 2.732, 224 px) and classified by its "
          "networks (torchvision's ImageNet ResNet50, Inception v3, VGG-11 with batch norm, AlexNet), not by "
          "semkit's renderer or networks")
NO_TOP1 = "the maps hold the true class's probability only, no top-1 answer: judge them with criterion='score >= t'"


def holds_paper_maps(path: Path) -> bool:
    """Whether ``path`` is a folder (not a zarr store) laid out as the paper's ``checkpoint/``: ``*/*/*/map.pt``."""
    return path.is_dir() and path.suffix.lower() != ".zarr" and next(path.glob(f"*/*/*/{MAP_FILE}"), None) is not None


def holds_paper_regions(path: str | Path) -> bool:
    """Whether ``path`` holds the paper's regions beside its maps: ``*/*/*/optim.pt``."""
    path = Path(path)
    return path.is_dir() and next(path.glob(f"*/*/*/{OPTIM_FILE}"), None) is not None


def read_paper_maps(folder: str | Path) -> xr.Dataset:
    """The paper's released maps in ``folder`` as a map study: ``score`` over (network, shape, azimuth, elevation).

    Networks are the folder's first level (as the paper spells them: ``AlexNet``, ``Inceptionv3``, ``ResNet50``,
    ``VGG``); shapes are named ``<class>/<shape_id>`` (say ``aeroplane/4d0898c7...``), with ``label`` (the ImageNet
    index) and ``label_name`` along ``shape``. A shape that some network lacks is NaN there, with a warning naming
    the pairs.

    Parameters
    ----------
    folder : str or path
        The paper repository's ``checkpoint/`` folder, or one laid out the same way.

    Returns
    -------
    Dataset
        A map study without ``top1`` or ``correct``; attrs ``origin`` (the paper's renderer and networks), ``source``
        (the folder) and ``note`` (judge with ``score >= t``).

    Raises
    ------
    StoreError
        No ``map.pt`` in the folder, a file that is not a torch file or holds other objects, a map with another
        grid than the others, or a shape whose id differs between networks.
    """
    folder = Path(folder)
    files = _files(folder, MAP_FILE, "maps")
    maps = {path: _read_map(path) for path in files}
    azimuth, elevation = _grid(maps)
    networks = list(dict.fromkeys(p.parts[-4] for p in files))
    shapes: dict[tuple[str, str], dict[str, Any]] = {}
    for path, m in maps.items():
        key = (path.parts[-3], path.parts[-2])
        shape = {"name": f"{PAPER_CLASSES[m['class_nb']]}/{m.get('shape_id', path.parts[-2])}",
                 "label": PAPER_LABELS[m["class_nb"]]}
        if shapes.setdefault(key, shape) != shape:
            raise StoreError(f"{path} holds shape {shape['name']}, but another network's map of "
                             f"{key[0]}/{key[1]} holds {shapes[key]['name']}: the folder mixes two sets of shapes. "
                             "Use the paper's checkpoint/ folder as released.")
    order = {key: j for j, key in enumerate(shapes)}
    dtype = np.result_type(*(m["z"].dtype for m in maps.values()), np.float32)
    score = np.full((len(networks), len(shapes), len(azimuth), len(elevation)), np.nan, dtype=dtype)
    for path, m in maps.items():
        score[networks.index(path.parts[-4]), order[(path.parts[-3], path.parts[-2])]] = m["z"].T
    lacking = [f"{n}: {s['name']}" for i, n in enumerate(networks) for j, s in enumerate(shapes.values())
               if np.isnan(score[i, j]).all()]
    if lacking:
        warnings.warn(f"{len(lacking)} map(s) missing from {folder}, NaN in the study (a missing view fails every "
                      f"criterion): {'; '.join(lacking[:10])}{' ...' if len(lacking) > 10 else ''}", stacklevel=2)
    return _dataset(folder, networks, list(shapes.values()), azimuth, elevation, score, lacking)


def _files(folder: Path, name: str, what: str) -> list[Path]:
    """The folder's ``<Network>/<class>/<object>/<name>`` files, in the paper's order; an error naming the layout if none."""
    files = sorted(folder.glob(f"*/*/*/{name}"), key=lambda p: [_natural(part) for part in p.parts[-4:-1]])
    if not files:
        raise StoreError(f"{folder} holds no paper {what}: semkit reads the paper's checkpoint/ folder, laid out as "
                         f"<Network>/<class>/<object>/{name}. Pass that folder.")
    return files


def _natural(part: str) -> tuple[int, Any]:
    """Folder names in numeric order where they are numbers (the paper's class and object folders: 0, 1, ..., 10)."""
    return (0, int(part)) if part.isdigit() else (1, part)


def _numpy_globals() -> list[Any]:
    """What a paper map's pickle may name besides plain containers: numpy's array and scalar reconstruction (under
    numpy 1's and 2's module names), the array and dtype classes. Nothing else can be called while loading."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1
        from numpy.core import multiarray
    out: list[Any] = [np.ndarray, np.dtype]
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        out += [(multiarray._reconstruct, f"{module}._reconstruct"), (multiarray.scalar, f"{module}.scalar")]
    out += [type(np.dtype(c)) for c in "?bhilqBHILQefdg"]
    return out


def _load(path: Path) -> Any:
    import torch

    if not hasattr(torch.serialization, "safe_globals"):
        raise StoreError(f"reading the paper's maps safely needs torch >= 2.5 (numpy arrays under weights_only=True); "
                         f"this is torch {torch.__version__}: upgrade torch")
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds on foreign or damaged files
        named = re.search(r"GLOBAL ([\w.]+)|global: GLOBAL ([\w.]+)|Unsupported global: ([\w.]+)", str(e))
        if named:
            why = (f"it names {next(g for g in named.groups() if g)}, and semkit runs no code from a file: a paper map "
                   "holds only arrays, numbers and strings")
        else:
            why = f"not a torch file, or a damaged one: {type(e).__name__}"
        raise StoreError(f"{path} is not a paper map semkit can read ({why}). Replace it with the paper's "
                         f"{MAP_FILE}, or remove it.") from None


def _array(value: Any) -> np.ndarray:
    """A tensor or array as a numpy array."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _read_map(path: Path) -> dict[str, Any]:
    """One map.pt, checked: the keys, a grid of xx, yy and z of one shape, a class of the paper's."""
    d = _load(path)
    missing = [k for k in MAP_KEYS if not isinstance(d, dict) or k not in d]
    if missing:
        held = sorted(map(str, d)) if isinstance(d, dict) else type(d).__name__
        raise StoreError(f"{path} is not a paper map: it lacks {', '.join(missing)} (it holds {held}). A paper map is "
                         "a dict of xx, yy, z, class_nb, shape_id, network_name.")
    out = {k: _array(d[k]) for k in ("xx", "yy", "z")}
    shapes = {k: v.shape for k, v in out.items()}
    if len(set(shapes.values())) != 1 or out["z"].ndim != 2:
        raise StoreError(f"{path} holds a map whose xx, yy and z differ in shape or are not 2-D grids "
                         f"({', '.join(f'{k} {list(s)}' for k, s in shapes.items())}): a paper map holds three "
                         "[elevations, azimuths] grids (34 x 120)")
    if not np.issubdtype(out["z"].dtype, np.floating):
        raise StoreError(f"{path}: z holds {out['z'].dtype} values, not probabilities")
    z = out["z"][np.isfinite(out["z"])]
    if z.size and (z.min() < 0 or z.max() > 1):
        raise StoreError(f"{path}: z holds values outside [0, 1] ({z.min():g} to {z.max():g}), not the true class's "
                         "probability")
    try:
        out["class_nb"] = int(_array(d["class_nb"]))
    except (TypeError, ValueError):
        out["class_nb"] = -1
    if not 0 <= out["class_nb"] < len(PAPER_CLASSES):
        raise StoreError(f"{path}: class_nb is {d['class_nb']!r}, not one of the paper's {len(PAPER_CLASSES)} classes "
                         f"(0 to {len(PAPER_CLASSES) - 1}: {', '.join(PAPER_CLASSES)})")
    if "shape_id" in d:
        out["shape_id"] = str(d["shape_id"])
    return out


def _grid(maps: dict[Path, dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """The azimuths and elevations all maps share (xx's first row, yy's first column); an error naming a map with
    another grid or a grid that is not a meshgrid in the paper's Space."""
    first, m = next(iter(maps.items()))
    azimuth, elevation = m["xx"][0].astype(float), m["yy"][:, 0].astype(float)
    if not (np.array_equal(m["xx"], np.broadcast_to(m["xx"][0], m["xx"].shape))
            and np.array_equal(m["yy"], np.broadcast_to(m["yy"][:, :1], m["yy"].shape))):
        raise StoreError(f"{first}: xx and yy are not a meshgrid of azimuths (along rows) and elevations (down "
                         "columns), as the paper writes them")
    space = Space.paper()
    for name, values in (("azimuth", azimuth), ("elevation", elevation)):
        p = space[name]
        if len(values) > 1 and not (np.all(np.diff(values) > 0) and p.low <= values[0] and values[-1] <= p.high):
            raise StoreError(f"{first}: its {name}s ({values[0]:g} to {values[-1]:g}) are not increasing within "
                             f"[{p.low:g}, {p.high:g}] degrees, the paper's Space")
    for path, other in maps.items():
        if not (np.array_equal(other["xx"], m["xx"]) and np.array_equal(other["yy"], m["yy"])):
            raise StoreError(f"{path} holds another grid ({other['xx'].shape[1]} azimuths x {other['yy'].shape[0]} "
                             f"elevations, from ({other['xx'].flat[0]:g}, {other['yy'].flat[0]:g})) than {first} "
                             f"({len(azimuth)} x {len(elevation)}, from ({azimuth[0]:g}, {elevation[0]:g})): a study "
                             "holds one grid. Remove the maps of the other grid.")
    return azimuth, elevation


def _label_names() -> list[str]:
    text = resources.files("semkit").joinpath("data/imagenet_classes.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def _dataset(folder: Path, networks: list[str], shapes: list[dict[str, Any]], azimuth: np.ndarray,
             elevation: np.ndarray, score: np.ndarray, lacking: list[str]) -> xr.Dataset:
    """The study as semkit's map studies lay it out: the grid's coords with units, range and periodicity, the Space
    and grid step in the attrs, labels along ``shape``."""
    space = Space.paper()
    names = _label_names()
    grid = {"azimuth": azimuth, "elevation": elevation}
    coords: dict[str, Any] = {
        name: (name, values, {"units": space.units[name], "periodic": int(space[name].periodic),
                              "valid_range": [space[name].low, space[name].high]}) for name, values in grid.items()}
    coords.update(network=("network", networks), shape=("shape", [s["name"] for s in shapes]),
                  label=("shape", [s["label"] for s in shapes]),
                  label_name=("shape", [names[s["label"]] for s in shapes]))
    settings = {"kind": "map", "source": "the paper's released maps", "networks": networks,
                "shape_names": [s["name"] for s in shapes], "grid": {k: v.tolist() for k, v in grid.items()}}
    attrs = {
        "title": "The paper's semantic maps",
        "origin": ORIGIN,
        "note": NO_TOP1,
        "source": str(folder.resolve()),
        "semkit_version": VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "fingerprint": fingerprint(settings),
        "settings": json.dumps(settings),
        "space": json.dumps(space.to_dict()),
        "grid_step": json.dumps({k: float(v[1] - v[0]) if len(v) > 1 else None for k, v in grid.items()}),
    }
    if lacking:
        attrs["missing_maps"] = "; ".join(lacking)
    score_attrs = {"long_name": "P(true class)", "units": "1"}
    return xr.Dataset({"score": (("network", "shape", "azimuth", "elevation"), score, score_attrs)},
                      coords=coords, attrs=attrs)


# ---------------------------------------------------------------------------------------------- the paper's regions
def read_paper_regions(folder: str | Path) -> xr.Dataset:
    """The paper's released regions in ``folder`` (its ``optim.pt`` files) as a region study.

    ``lower`` and ``upper`` over (network, shape, start, algorithm, param): the final box each of the paper's
    algorithms (naive, OIR_B, OIR_W, named ``naive``, ``oir_b``, ``oir_w`` as semkit's) grew from each initial
    point, with ``start_point`` and ``iterations``; networks and shapes named as `read_paper_maps` names them
    (the map beside each file names its folder's shape), so
    [`compare_networks`][semkit.compare_networks] matches them to the paper's maps and
    [`srvr`][semkit.srvr] gives the paper's SRVR. Nothing in a file runs (see the module docstring).

    Parameters
    ----------
    folder : str or path
        The paper repository's ``checkpoint/`` folder, or one laid out the same way.

    Returns
    -------
    Dataset
        A region study; attrs ``origin``, ``source`` and the paper's Space.

    Raises
    ------
    StoreError
        No ``optim.pt`` in the folder, a file that names anything but numpy arrays and the paper's two classes, or
        one that holds no regions of the paper's algorithms.
    """
    folder = Path(folder)
    files = _files(folder, OPTIM_FILE, "regions")
    found = {path: _read_optim(path) for path in files}
    relabelled = []
    for path, r in found.items():  # the map beside names the folder's shape (some optim.pt name another one)
        beside = path.with_name(MAP_FILE)
        if beside.exists():
            m = _read_map(beside)
            name = f"{PAPER_CLASSES[m['class_nb']]}/{m.get('shape_id', path.parts[-2])}"
            if name != r["shape"]:
                relabelled.append(f"{'/'.join(path.parts[-4:-1])}: {r['shape']} -> {name}")
                r["shape"] = name
    if relabelled:
        warnings.warn(f"{len(relabelled)} optim.pt file(s) name another shape than the map.pt beside them; their "
                      f"regions are the folder's shape, as its map says: {'; '.join(relabelled[:5])}"
                      f"{' ...' if len(relabelled) > 5 else ''}", stacklevel=2)
    networks = list(dict.fromkeys(p.parts[-4] for p in files))
    shapes = list(dict.fromkeys(r["shape"] for r in found.values()))
    algorithms = [a for a in PAPER_ALGORITHMS.values() if any(a in r["boxes"] for r in found.values())]
    starts = max(len(r["starts"]) for r in found.values())
    shape = (len(networks), len(shapes), starts, len(algorithms))
    lower, upper = np.full((*shape, 2), np.nan), np.full((*shape, 2), np.nan)
    iterations = np.zeros(shape, np.int64)
    start_point = np.full((len(networks), len(shapes), starts, 2), np.nan)
    seen: dict[tuple[int, int], Path] = {}
    for path, r in found.items():
        i, j = networks.index(path.parts[-4]), shapes.index(r["shape"])
        if (i, j) in seen:
            raise StoreError(f"{path} and {seen[i, j]} both hold {networks[i]}'s regions of {r['shape']}: keep one")
        seen[i, j] = path
        start_point[i, j, : len(r["starts"])] = r["starts"]
        for a, (low, high, steps) in r["boxes"].items():
            k = algorithms.index(a)
            lower[i, j, : len(low), k], upper[i, j, : len(high), k], iterations[i, j, : len(steps), k] = low, high, steps
    dims = ("network", "shape", "start", "algorithm", "param")
    space = Space.paper()
    clipped_lower, clipped_upper = _clipped(lower, upper, space)
    boxes = np.isfinite(lower).all(axis=-1)  # the boxes there are (NaN: a start, algorithm or file missing)
    beyond = int(np.sum(boxes & np.any((clipped_lower != lower) | (clipped_upper != upper), axis=-1)))
    return xr.Dataset(
        {"lower": (dims, clipped_lower, {"long_name": "the box's lower corner, within the Space"}),
         "upper": (dims, clipped_upper, {"long_name": "the box's upper corner, within the Space"}),
         "paper_lower": (dims, lower, {"long_name": "the box's lower corner as the paper saved it"}),
         "paper_upper": (dims, upper, {"long_name": "the box's upper corner as the paper saved it"}),
         "start_point": (("network", "shape", "start", "param"), start_point, {"long_name": "the paper's initial point"}),
         "iterations": (dims[:-1], iterations, {"long_name": "steps the paper's optimisation recorded"})},
        coords={"network": networks, "shape": shapes, "start": np.arange(starts), "algorithm": algorithms,
                "param": list(space.names)},
        attrs={"title": "The paper's robust regions", "origin": ORIGIN.replace("released maps", "released regions"),
               "source": str(folder.resolve()), "space": json.dumps(space.to_dict()), "semkit_version": VERSION,
               "note": (f"the paper's boxes as its code grew them (final bounds a, b of each n_interval; no criterion), "
                        f"clipped to its Space: {beyond} of {int(boxes.sum())} reached past it (the paper bounds no "
                        "box; paper_lower and paper_upper hold them as saved)"),
               "relabelled": "; ".join(relabelled)},
    )


def _clipped(lower: np.ndarray, upper: np.ndarray, space: Space) -> tuple[np.ndarray, np.ndarray]:
    """Boxes within the Space: a bounded parameter clipped to its range, a periodic one at most one period wide."""
    lower, upper = lower.copy(), upper.copy()
    for i, p in enumerate(space.parameters):
        if p.periodic:
            upper[..., i] = np.minimum(upper[..., i], lower[..., i] + p.width)
        else:
            lower[..., i] = np.clip(lower[..., i], p.low, p.high)
            upper[..., i] = np.clip(upper[..., i], p.low, p.high)
    return lower, upper


class _Record:
    """The state one of the paper's classes pickled, as plain data: none of the paper's code is imported or run."""

    def __init__(self, *args: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _RegionUnpickler(pickle.Unpickler):
    """numpy arrays, numbers, text and containers; the paper's two classes as `_Record`; nothing else."""

    def __init__(self, file: Any, path: Path) -> None:
        super().__init__(file, encoding="latin1")
        self.path = path
        self.allowed = {"_codecs.encode": _latin1}
        for item in _numpy_globals():
            obj, name = item if isinstance(item, tuple) else (item, f"{item.__module__}.{item.__name__}")
            self.allowed[name] = obj

    def find_class(self, module: str, name: str) -> Any:
        key = f"{module}.{name}"
        if key in self.allowed:
            return self.allowed[key]
        if key in PAPER_RECORDS:
            return _Record
        raise StoreError(f"{self.path} names {key}, and semkit runs no code from a file: a paper optim.pt holds only "
                         f"arrays, numbers and the paper's {' and '.join(PAPER_RECORDS)} records. Replace it with the "
                         f"paper's {OPTIM_FILE}, or remove it.")

    def persistent_load(self, pid: Any) -> Any:
        raise StoreError(f"{self.path} holds torch tensors: a paper optim.pt holds numpy arrays only")


def _latin1(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as numpy's pickles use it (array bytes kept as latin-1 text), and no other codec."""
    if encoding.replace("-", "").lower() != "latin1":
        raise StoreError(f"a paper optim.pt asks for the codec {encoding!r}: numpy's arrays are kept as latin-1 only")
    return codecs.encode(text, "latin1")


#: torch's legacy format begins with this number, pickled.
TORCH_MAGIC = 0x1950A86A20F9469CFC6C


def _unpickled(path: Path) -> Any:
    """The object an optim.pt holds: torch's legacy format (a magic number, its version, system info, the object)
    or its zip format, read with the restricted unpickler."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                name = next(n for n in z.namelist() if n.endswith("data.pkl"))
                with z.open(name) as f:
                    return _RegionUnpickler(f, path).load()
        with open(path, "rb") as f:
            if _RegionUnpickler(f, path).load() != TORCH_MAGIC:
                raise ValueError("no torch file (its magic number is missing)")
            for _ in range(2):  # torch's protocol version and system info
                _RegionUnpickler(f, path).load()
            return _RegionUnpickler(f, path).load()
    except StoreError:
        raise
    except Exception as e:  # a damaged or foreign file
        raise StoreError(f"{path} is not a paper optim.pt semkit can read ({type(e).__name__}: {e}). Replace it with "
                         f"the paper's {OPTIM_FILE}, or remove it.") from None


def _read_optim(path: Path) -> dict[str, Any]:
    """One optim.pt: the shape's name, the initial points [S, 2] and, per algorithm, the final boxes and step counts."""
    d = _unpickled(path)
    if not isinstance(d, dict) or "initial_point" not in d or not set(PAPER_ALGORITHMS) & set(d):
        held = sorted(map(str, d)) if isinstance(d, dict) else type(d).__name__
        raise StoreError(f"{path} is not a paper optim.pt: it holds {held}, not initial_point and the regions of "
                         f"{', '.join(PAPER_ALGORITHMS)}")
    try:
        class_nb = int(d["class_nb"])
        if not 0 <= class_nb < len(PAPER_CLASSES):
            raise ValueError(f"class_nb {class_nb} is not one of the paper's classes (0 to {len(PAPER_CLASSES) - 1})")
        shape = f"{PAPER_CLASSES[class_nb]}/{d.get('shape_id', path.parts[-2])}"
        starts = np.asarray(d["initial_point"], dtype=float).reshape(-1, 2)
        boxes = {}
        for paper_name, name in PAPER_ALGORITHMS.items():
            if paper_name in d:
                records = d[paper_name]["regions"]
                low = np.array([np.asarray(r.state["a"], float) for r in records])
                high = np.array([np.asarray(r.state["b"], float) for r in records])
                steps = np.array([len(t) for t in d[paper_name].get("loss_trace", [[]] * len(records))])
                if not (low.shape == high.shape == (len(starts), 2) and steps.shape == (len(starts),)):
                    raise ValueError(f"{paper_name} holds {len(records)} boxes of bounds {low.shape[1:]} and "
                                     f"{len(steps)} traces for {len(starts)} initial points")
                boxes[name] = (low, high, steps)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        raise StoreError(f"{path} is not a paper optim.pt semkit can read: {type(e).__name__} {e} (a paper optim.pt "
                         "holds class_nb, shape_id, initial_point and per algorithm regions of n_interval records "
                         "with bounds a and b)") from None
    return {"shape": shape, "starts": starts, "boxes": boxes}

