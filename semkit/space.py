"""The semantic parameter space: named, bounded, with units and periodicity.

A [`Space`][semkit.Space] is the box Omega of the paper. It turns user input (arrays,
dicts of named arrays, xarray objects) into validated point arrays [B, n] in
its own dimension order, so that grids, regions and plots carry names rather
than column numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

#: Units of the parameters the renderer understands.
KNOWN_UNITS = {
    "azimuth": "deg",
    "elevation": "deg",
    "distance": "scene units",
    "light_azimuth": "deg",
    "light_elevation": "deg",
    "roll": "deg",
    "light_intensity": "",
    "ambient": "",
}

#: The period of an angle in degrees (a periodic coordinate in degrees that records no range).
DEGREES_PER_TURN = 360.0
#: Grid spacing of a parameter in degrees unless given; other parameters take 1/DEFAULT_DIVISIONS of their range.
DEFAULT_ANGLE_STEP = 3.0
DEFAULT_DIVISIONS = 30
#: The most points a grid may have (about 1.6 GB per float64 variable): a larger one is a mistake.
MAX_GRID_POINTS = 2e8
#: Relative tolerance for coordinates of a Space: a grid point on a bound, a grid that closes its circle.
TOLERANCE = 1e-9

#: Natural bounds and periodicity of the renderer's parameters ([`Space.of`][semkit.Space.of]).
KNOWN_BOUNDS: dict[str, tuple[float, float, bool]] = {
    "azimuth": (0.0, 360.0, True),
    "elevation": (-10.0, 90.0, False),
    "distance": (1.5, 6.0, False),
    "light_azimuth": (0.0, 360.0, True),
    "light_elevation": (-90.0, 90.0, False),
    "roll": (-180.0, 180.0, True),
    "light_intensity": (0.0, 1.0, False),
    "ambient": (0.0, 1.0, False),
}


@dataclass(frozen=True)
class Parameter:
    """One semantic parameter: a name, a closed interval and its units.

    A periodic parameter (an angle such as azimuth) covers [low, high) and
    values outside wrap around instead of being rejected.
    """

    name: str
    low: float
    high: float
    units: str = ""
    periodic: bool = False

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"parameter name {self.name!r} must be a valid identifier")
        if not (np.isfinite(self.low) and np.isfinite(self.high) and self.low < self.high):
            raise ValueError(
                f"parameter {self.name!r}: bounds must be finite with low < high, got [{self.low}, {self.high}]"
            )

    @property
    def width(self) -> float:
        return float(self.high - self.low)


class Space:
    """A named box of semantic parameters, plus fixed values for the others.

    >>> space = Space.paper()
    >>> space.points([[370.0, 10.0]])
    array([[10., 10.]])

    Parameters
    ----------
    parameters : sequence of Parameter, or mapping of name to (low, high)
        The free parameters, in order: at least one, unique names, bounds finite with low < high (else ValueError).
        A mapping's units come from ``units`` or `KNOWN_UNITS`.
    periodic : iterable of str, default ()
        With a mapping: the names whose values wrap round (angles such as azimuth) instead of being rejected.
    units : mapping of str to str, optional
        With a mapping: units by name, over the renderer's.
    fixed : mapping of str to float, optional
        Values of renderer parameters held fixed (not part of the box; not also free), e.g. ``{"elevation": 35.0}``.
    """

    def __init__(
        self,
        parameters: Sequence[Parameter] | Mapping[str, tuple[float, float]],
        *,
        periodic: Iterable[str] = (),
        units: Mapping[str, str] | None = None,
        fixed: Mapping[str, float] | None = None,
    ) -> None:
        if isinstance(parameters, Mapping):
            periodic = set(periodic)
            units = dict(units or {})
            params = tuple(
                Parameter(
                    name,
                    float(low),
                    float(high),
                    units.get(name, KNOWN_UNITS.get(name, "")),
                    name in periodic,
                )
                for name, (low, high) in parameters.items()
            )
        else:
            params = tuple(parameters)
        if not params:
            raise ValueError("a Space needs at least one parameter")
        names = [p.name for p in params]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate parameter names in {names}")
        fixed = {str(k): float(v) for k, v in (fixed or {}).items()}
        clash = set(fixed) & set(names)
        if clash:
            raise ValueError(f"parameters {sorted(clash)} are both free and fixed")
        self.parameters: tuple[Parameter, ...] = params
        self.fixed: dict[str, float] = fixed

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Space) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple:
        return self.parameters, tuple(sorted(self.fixed.items()))

    # ----------------------------------------------------------------- presets
    @classmethod
    def paper(cls, periodic: bool = True) -> "Space":
        """The paper's 2-D space: azimuth [0, 360) and elevation [-10, 90] in degrees.

        Parameters
        ----------
        periodic : bool, default True
            Whether azimuth wraps round; False clips it at 0 and 360, as the reference code does.
        """
        return cls(
            [
                Parameter("azimuth", 0.0, 360.0, "deg", periodic),
                Parameter("elevation", -10.0, 90.0, "deg", False),
            ]
        )

    @classmethod
    def paper_1d(cls, elevation: float = 35.0, periodic: bool = True) -> "Space":
        """The paper's 1-D space: azimuth only, elevation fixed.

        Parameters
        ----------
        elevation : float, default 35.0
            The fixed elevation in degrees.
        periodic : bool, default True
            Whether azimuth wraps round (see `paper`).
        """
        return cls([Parameter("azimuth", 0.0, 360.0, "deg", periodic)], fixed={"elevation": elevation})

    @classmethod
    def of(cls, *names: str, fixed: Mapping[str, float] | None = None, **bounds: tuple[float, float]) -> "Space":
        """A Space of the renderer's parameters with their natural bounds (`KNOWN_BOUNDS`), units and periodicity.

        >>> Space.of("azimuth", "roll", light_intensity=(0.2, 1.0))
        Space(azimuth=[0, 360) deg, roll=[-180, 180) deg, light_intensity=[0.2, 1])

        Parameters
        ----------
        *names : str
            Renderer parameters to include, in order; an unknown one is a ValueError.
        fixed : mapping of str to float, optional
            Values of other renderer parameters held fixed.
        **bounds : (float, float)
            Parameters to add, or to narrow, by name; an angle stays periodic only while it spans its whole period.
        """
        params = []
        for name in (*names, *(n for n in bounds if n not in names)):
            if name not in KNOWN_BOUNDS:
                raise ValueError(f"unknown parameter {name!r}; Space.of knows {list(KNOWN_BOUNDS)}")
            low, high, periodic = KNOWN_BOUNDS[name]
            if name in bounds:
                period = high - low
                low, high = bounds[name]
                periodic = periodic and high - low == period
            params.append(Parameter(name, float(low), float(high), KNOWN_UNITS[name], periodic))
        return cls(params, fixed=fixed)

    # -------------------------------------------------------------- properties
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    @property
    def n(self) -> int:
        return len(self.parameters)

    @property
    def lower(self) -> np.ndarray:
        return np.array([p.low for p in self.parameters])

    @property
    def upper(self) -> np.ndarray:
        return np.array([p.high for p in self.parameters])

    @property
    def widths(self) -> np.ndarray:
        return self.upper - self.lower

    @property
    def periodic(self) -> np.ndarray:
        return np.array([p.periodic for p in self.parameters])

    @property
    def units(self) -> dict[str, str]:
        return {p.name: p.units for p in self.parameters}

    @property
    def volume(self) -> float:
        return float(np.prod(self.widths))

    def __getitem__(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(f"no parameter {name!r} in this Space; it has {list(self.names)}")

    def __repr__(self) -> str:
        parts = []
        for p in self.parameters:
            bracket = ")" if p.periodic else "]"
            unit = f" {p.units}" if p.units else ""
            parts.append(f"{p.name}=[{p.low:g}, {p.high:g}{bracket}{unit}")
        fixed = "".join(f", {k}={v:g}" for k, v in self.fixed.items())
        return f"Space({', '.join(parts)}{fixed})"

    def to_dict(self) -> dict[str, Any]:
        """A plain description (for dataset attrs and configs)."""
        return {
            "parameters": [
                {"name": p.name, "low": p.low, "high": p.high, "units": p.units, "periodic": p.periodic}
                for p in self.parameters
            ],
            "fixed": dict(self.fixed),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Space":
        """The Space a `to_dict` description holds (from dataset attrs and configs).

        Parameters
        ----------
        d : mapping
            ``{"parameters": [{"name", "low", "high", "units", "periodic"}, ...], "fixed": {...}}``.
        """
        return cls([Parameter(**p) for p in d["parameters"]], fixed=d.get("fixed", {}))

    # ------------------------------------------------------------------ points
    def wrap(self, points: np.ndarray) -> np.ndarray:
        """A copy of ``points`` with its periodic columns wrapped into [low, high).

        Parameters
        ----------
        points : array_like [..., n]
        """
        points = np.array(points, dtype=float, copy=True)
        for i, p in enumerate(self.parameters):
            if p.periodic:
                wrapped = p.low + np.mod(points[..., i] - p.low, p.width)
                points[..., i] = np.where(wrapped >= p.high, p.low, wrapped)  # mod can round up to the period
        return points

    def points(self, points: Any = None, /, **named: Any) -> np.ndarray:
        """Validate points and return them as a float array [B, n] in this Space's order; periodic values wrap.

        Parameters
        ----------
        points : array_like [B, n] or [n], mapping or xarray object, optional
            An array in this Space's order, or named arrays (scalars broadcast), here or as keywords (not both:
            TypeError). A wrong shape or names, NaN or infinite values, or values outside a non-periodic parameter's
            bounds raise ValueError naming the parameter.
        """
        if points is not None and named:
            raise TypeError("give points either as an array/mapping or as keywords, not both")
        if points is None:
            points = named
        if _is_named(points):
            arr = self._from_named(points)
        else:
            arr = np.asarray(points, dtype=float)
            if arr.ndim == 1 and arr.shape[0] == self.n:
                arr = arr[None, :]
            elif arr.ndim == 0 and self.n == 1:
                arr = arr.reshape(1, 1)
            elif arr.ndim == 1 and self.n == 1:
                arr = arr[:, None]
            if arr.ndim != 2 or arr.shape[1] != self.n:
                raise ValueError(
                    f"points must have shape [B, {self.n}] for parameters {list(self.names)}, got {arr.shape}"
                )
        self._check(arr)
        return self.wrap(arr)

    def _from_named(self, named: Any) -> np.ndarray:
        keys = set(named.keys()) if hasattr(named, "keys") else set()
        unknown = keys - set(self.names) - set(self.fixed)
        if unknown:
            raise ValueError(f"unknown parameters {sorted(unknown)}; this Space has {list(self.names)}")
        missing = [name for name in self.names if name not in keys]
        if missing:
            raise ValueError(f"missing values for parameters {missing}")
        cols = np.broadcast_arrays(*[np.asarray(named[name], dtype=float).ravel() for name in self.names])
        return np.stack(cols, axis=-1)

    def _check(self, arr: np.ndarray) -> None:
        for i, p in enumerate(self.parameters):
            col = arr[:, i]
            bad = ~np.isfinite(col)
            if bad.any():
                raise ValueError(
                    f"{p.name} has {int(bad.sum())} NaN or infinite value(s) (first at row {int(np.argmax(bad))})"
                )
            if not p.periodic:
                out = (col < p.low) | (col > p.high)
                if out.any():
                    j = int(np.argmax(out))
                    raise ValueError(
                        f"{p.name}={col[j]:g} is outside its range [{p.low:g}, {p.high:g}] {p.units}".rstrip()
                        + f" ({int(out.sum())} point(s) out of range)"
                    )

    def clip(self, points: Any) -> np.ndarray:
        """The nearest points of the Space: bounded parameters clipped to their range, periodic ones wrapped.

        Parameters
        ----------
        points : array_like [..., n]
        """
        points = np.asarray(points, dtype=float)
        return self.wrap(np.where(self.periodic, points, np.clip(points, self.lower, self.upper)))

    def contains(self, points: Any) -> np.ndarray:
        """Which points [...] lie in the Space: bounded parameters in range (up to the Space's tolerance), periodic any.

        Parameters
        ----------
        points : array_like [..., n]
        """
        points = np.asarray(points, dtype=float)
        tol = self.tolerances()
        ok = (points >= self.lower - tol) & (points <= self.upper + tol)
        return (ok | self.periodic).all(axis=-1)

    def in_box(self, points: Any, lower: Any, upper: Any) -> np.ndarray:
        """Which points [...] lie in the box [lower, upper], up to the Space's tolerance.

        Parameters
        ----------
        points : array_like [..., n]
        lower, upper : array_like [n]
            The box's corners; periodic parameters count modulo their period, so a box may cross it.
        """
        lower = np.asarray(lower, dtype=float)
        rel = np.asarray(points, dtype=float) - lower
        rel = np.where(self.periodic, np.mod(rel, self.widths), rel)
        tol = self.tolerances()
        return ((rel >= -tol) & (rel <= (np.asarray(upper, dtype=float) - lower) + tol)).all(axis=-1)

    def neighbourhood(self, centres: Any, radius: Any) -> tuple[np.ndarray, np.ndarray]:
        """The boxes (lower, upper) [..., n] of ``centres`` +- ``radius``, clipped at bounded parameters' bounds.

        Parameters
        ----------
        centres : array_like [..., n]
        radius : float or array_like [n]
            The half-width, one or one per parameter; on periodic parameters a box may cross the period (unwrapped).
        """
        centres = np.asarray(centres, dtype=float)
        r = np.broadcast_to(np.asarray(radius, dtype=float), (self.n,))
        a, b = centres - r, centres + r
        return np.where(self.periodic, a, np.maximum(a, self.lower)), np.where(self.periodic, b, np.minimum(b, self.upper))

    def sample(self, n: int, random_state: "int | np.random.Generator | None" = 0,
               lower: Any = None, upper: Any = None) -> np.ndarray:
        """``n`` uniform random points [n, self.n] of a box of the Space, unwrapped as the box's bounds are.

        Parameters
        ----------
        n : int
        random_state : int, numpy.random.Generator or None, default 0
            Draws the points (the same value, the same points); None: fresh entropy.
        lower, upper : array_like [n], optional
            The box's corners; None: the Space's bounds.
        """
        rng = np.random.default_rng(random_state)
        a = self.lower if lower is None else np.asarray(lower, dtype=float)
        b = self.upper if upper is None else np.asarray(upper, dtype=float)
        return a + rng.random((int(n), self.n)) * (b - a)

    def pieces(self, name: str, lower: float, upper: float) -> list[tuple[float, float]]:
        """The interval [lower, upper] of parameter ``name`` as a list of pieces inside [low, high).

        Parameters
        ----------
        name : str
            The parameter: a periodic interval that crosses its period splits in two, one a period wide covers it all.
        lower, upper : float
            The interval's ends, unwrapped (``upper`` may pass a periodic parameter's period).
        """
        p = self[name]
        if not p.periodic or (p.low <= lower and upper <= p.high):
            return [(lower, upper)]
        if upper - lower >= p.width:
            return [(p.low, p.high)]
        start = p.low + (lower - p.low) % p.width
        end = start + (upper - lower)
        return [(start, min(end, p.high))] + ([(p.low, end - p.width)] if end > p.high else [])

    def tolerances(self) -> np.ndarray:
        """The absolute tolerance per parameter (`TOLERANCE` of its magnitude, at least of 1)."""
        return TOLERANCE * np.maximum(1.0, np.abs(self.lower) + np.abs(self.upper))

    # -------------------------------------------------------------------- grids
    def default_step(self) -> np.ndarray:
        """The grid spacing per parameter unless given: 3 degrees for angles, 1/30 of the range otherwise."""
        return np.array([DEFAULT_ANGLE_STEP if p.units == "deg" else p.width / DEFAULT_DIVISIONS for p in self.parameters])

    def steps(self, step: "float | Sequence[float] | Mapping[str, float] | None" = None) -> np.ndarray:
        """The grid spacing per parameter [n] (errors: see `per_parameter`).

        Parameters
        ----------
        step : float, sequence of float or mapping of str to float, optional
            One, one per parameter, or a mapping by name (the others take the default); None: `default_step`.
        """
        if step is None:
            return self.default_step()
        return self.per_parameter(step, "step", self.default_step())

    def per_parameter(self, value: Any, what: str, default: np.ndarray | None = None) -> np.ndarray:
        """``value`` as one positive finite number per parameter [n]; otherwise an error naming ``what``.

        Parameters
        ----------
        value : float, sequence of float or mapping of str to float
            One number for all, one per parameter in the Space's order, or a mapping by name (bools are refused).
        what : str
            What the value is (e.g. ``"step"``), for error messages.
        default : numpy.ndarray [n], optional
            Values for parameters a mapping leaves out; None: each parameter needs a value."""
        given = value.values() if isinstance(value, Mapping) else np.ravel(np.asarray(value, dtype=object))
        if any(isinstance(v, (bool, np.bool_)) for v in given):
            raise TypeError(f"{what} takes numbers in the parameters' units, got {value!r}: True and False are no "
                            "numbers (True would count as 1)")
        if isinstance(value, Mapping):
            unknown = set(value) - set(self.names)
            missing = [name for name in self.names if name not in value] if default is None else []
            if unknown or missing:
                raise ValueError(f"{what} for unknown parameters {sorted(unknown)} or missing {missing}; the Space has "
                                 f"{list(self.names)}")
            values = np.array([float(value[name]) if name in value else float(default[i])
                               for i, name in enumerate(self.names)])
        elif np.ndim(value) == 0:
            values = np.full(self.n, float(value))
        else:
            values = np.asarray(value, dtype=float)
            if values.shape != (self.n,):
                raise ValueError(f"{what} needs one value or {self.n} (one per parameter {list(self.names)}), got {value!r}")
        if not (np.isfinite(values).all() and (values > 0).all()):
            raise ValueError(f"{what} must be positive and finite, got {value!r}")
        return values

    def grid(
        self,
        step: "float | Sequence[float] | Mapping[str, float] | None" = None,
        coords: Mapping[str, Sequence[float]] | None = None,
    ) -> dict[str, np.ndarray]:
        """The grid of the Space: coordinates per parameter, in order.

        Parameters
        ----------
        step : float, sequence of float or mapping of str to float, optional
            The spacing (see `steps`); None: `default_step`. A periodic parameter's grid covers [low, high)
            once, a bounded one's includes ``high`` when the steps land on it. A step wider than its parameter's range,
            or a grid of more than `MAX_GRID_POINTS` points, is a ValueError.
        coords : mapping of str to sequence of float, optional
            Explicit values for some or all parameters, instead of steps (checked as `points` checks).
        """
        coords = dict(coords or {})
        unknown = set(coords) - set(self.names)
        if unknown:
            raise ValueError(f"coords for unknown parameters {sorted(unknown)}; the Space has {list(self.names)}")
        steps = self.steps(step)
        for p, h in zip(self.parameters, steps):
            if p.name not in coords and h > p.width:
                raise ValueError(f"the step for {p.name} ({h:g}) is wider than its range [{p.low:g}, {p.high:g}]: the "
                                 f"grid would hold one value; pass a step of at most {p.width:g}, or fix {p.name} in the Space")
        counts = [len(coords[p.name]) if p.name in coords else _count(p, h) for p, h in zip(self.parameters, steps)]
        total = float(np.prod(np.asarray(counts, dtype=float)))
        if total > MAX_GRID_POINTS:
            raise ValueError(f"this grid has {total:.3g} points ({' x '.join(f'{c:,}' for c in counts)} over "
                             f"{list(self.names)}), more than the {MAX_GRID_POINTS:,.0f} a map may hold: use larger steps, "
                             "or adaptive=True on a coarser grid")
        out = {}
        for p, h, count in zip(self.parameters, steps, counts):
            if p.name in coords:
                values = np.asarray(coords[p.name], dtype=float).ravel()
                if values.size == 0:
                    raise ValueError(f"coords for {p.name} are empty")
                self.points({**{q.name: q.low for q in self.parameters}, p.name: values})  # range and NaN checks
            else:
                values = p.low + h * np.arange(count)
            out[p.name] = values
        return out

    def lattice(self, origin: Any, step: Any, offsets: Any) -> np.ndarray:
        """Points ``origin + offsets * step`` [m, n] of a lattice, as they are: test them with `contains`.

        Parameters
        ----------
        origin : array_like [n]
            A point the lattice passes through.
        step : float or array_like [n]
        offsets : array_like of int [m, n]
            Each point's lattice steps from ``origin``.
        """
        return np.asarray(origin, dtype=float) + np.asarray(offsets, dtype=float) * np.asarray(step, dtype=float)

    def closes_circle(self, name: str, values: Any) -> bool:
        """Whether a grid of one parameter goes round its period evenly (last value to first, one period on: one step).

        Parameters
        ----------
        name : str
            The parameter; False unless it is periodic.
        values : array_like
            Its grid values, increasing.
        """
        p = self[name]
        values = np.asarray(values, dtype=float)
        if not p.periodic or len(values) < 2:
            return False
        step = values[1] - values[0]
        return bool(abs(values[0] + p.width - values[-1] - step) <= self.tolerances()[self.names.index(name)])

    def named(self, points: np.ndarray) -> dict[str, np.ndarray]:
        """Split validated points (`points`) into named columns [B], fixed values broadcast.

        Parameters
        ----------
        points : array_like [B, n]
        """
        points = np.asarray(points, dtype=float)
        out = {name: points[:, i] for i, name in enumerate(self.names)}
        for name, value in self.fixed.items():
            out[name] = np.full(points.shape[0], value)
        return out


def recorded_space(data: Any, space: "Space | None" = None) -> "Space":
    """``space`` when given, else the Space a result records: in its attrs (maps, regions, studies), or, for a
    DataArray taken from a map, in its coordinates' attrs (``valid_range``, ``units``, ``periodic``)."""
    if space is not None:
        return space
    attrs = getattr(data, "attrs", {})
    if "space" in attrs:
        return Space.from_dict(json.loads(attrs["space"]))
    coords = getattr(data, "coords", {})
    parameters = [
        Parameter(str(d), *(float(v) for v in coords[d].attrs["valid_range"]), str(coords[d].attrs.get("units", "")),
                  bool(coords[d].attrs.get("periodic", False)))
        for d in getattr(data, "dims", ()) if d in coords and "valid_range" in coords[d].attrs
    ]
    if parameters:
        return Space(parameters)
    raise ValueError("these results record no Space (data made elsewhere, or by an older semkit): pass space=")


def _count(p: Parameter, step: float) -> int:
    """Grid values of a parameter with spacing ``step``: [low, high) for a periodic one, [low, high] otherwise."""
    if p.periodic:
        return int(np.ceil(p.width / step - TOLERANCE))
    return int(np.floor(p.width / step + TOLERANCE)) + 1


def _is_named(obj: Any) -> bool:
    """A mapping of named arrays (dict, xarray.Dataset) rather than a plain array."""
    return isinstance(obj, Mapping) or hasattr(obj, "data_vars")
