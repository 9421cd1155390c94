"""The public API's conventions (docs/glossary.md): a small top level, one word per concept, short signatures.

Every callable reachable from ``semkit`` and from each subpackage's ``__all__`` (classes' public methods
included) is read: at most 10 parameters, no ``**kwargs`` (except where the keywords are a Space's own
parameter names), none of the words the glossary retires; results' dims, coords, variables and attrs neither.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

import semkit

SUBPACKAGES = ("app", "classify", "function", "maps", "plot", "regions", "render", "scene", "store", "studies", "trust")
#: Words the glossary retires, with the word to use.
BANNED = {"seed": "random_state", "rng": "random_state", "threshold": "criterion or min_score", "budget": "max_queries",
          "delta": "radius", "tol": "min_motion / max_error", "resolution": "step", "map_step": "step",
          "radii": "radius", "samples": "n_samples", "audit_samples": "n_samples", "n_boot": "n_resamples",
          "tolerance": "max_error, min_motion or max_failure", "alpha_level": "confidence", "cache": "store",
          "method": "algorithm", "methods": "algorithms", "f_or_map": "f", "data": "f, semantic_map or result", "fn": "f",
          "model": "network (or module, for a torch module)", "net": "network", "final_samples": "final_n_samples",
          "classifiers": "networks", "meshes": "shapes"}
MAX_PARAMETERS = 10
#: Callables whose ``**kwargs`` are a Space's parameter names (render(mesh, azimuth=..., elevation=...)).
SPACE_KEYWORDS = {"Renderer.render", "Space.points", "Space.of", "Explorer.set"}
MAX_TOP_LEVEL = 30


def _public_callables():
    seen: dict[int, str] = {}
    modules = [("semkit", semkit, semkit.__all__)]
    for name in SUBPACKAGES:
        module = importlib.import_module(f"semkit.{name}")
        modules.append((f"semkit.{name}", module, getattr(module, "__all__", [])))
    for prefix, module, names in modules:
        for name in names:
            obj = getattr(module, name)
            if inspect.ismodule(obj) or id(obj) in seen:
                continue
            if inspect.isclass(obj) and getattr(obj, "_is_protocol", False):  # a Protocol: its methods are the rule
                seen[id(obj)] = f"{prefix}.{name}"
            elif inspect.isclass(obj):
                seen[id(obj)] = f"{prefix}.{name}"
                yield f"{prefix}.{name}", obj
                for attr, member in vars(obj).items():
                    if isinstance(member, (staticmethod, classmethod)):
                        member = member.__func__
                    if (attr.startswith("_") and attr != "__init__") or not callable(member):
                        continue
                    if inspect.isfunction(member):
                        yield f"{name}.{attr}", member
            elif callable(obj):
                seen[id(obj)] = f"{prefix}.{name}"
                yield f"{prefix}.{name}", obj


CALLABLES = dict(_public_callables())


def _parameters(obj) -> list[inspect.Parameter]:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):  # builtins, enums without a signature
        return []
    return [p for p in signature.parameters.values() if p.name not in ("self", "cls")]


def test_top_level_is_small():
    callables = [n for n in semkit.__all__ if not inspect.ismodule(getattr(semkit, n)) and callable(getattr(semkit, n))]
    assert len(callables) <= MAX_TOP_LEVEL, sorted(callables)


def test_no_deprecation_shims():
    assert not (Path(semkit.__file__).parent / "deprecation.py").exists()
    with pytest.raises(ImportError):
        importlib.import_module("semkit.deprecation")


@pytest.mark.parametrize("name", sorted(CALLABLES))
def test_signature_follows_the_glossary(name):
    params = _parameters(CALLABLES[name])
    names = [p.name for p in params]
    assert len(params) <= MAX_PARAMETERS, f"{name} takes {len(params)} parameters: {names}"
    if name.split(".", 1)[-1] not in SPACE_KEYWORDS and not name.endswith(tuple(SPACE_KEYWORDS)):
        assert not any(p.kind is p.VAR_KEYWORD for p in params), f"{name} takes **kwargs"
    wrong = {n: BANNED[n] for n in names if n in BANNED}
    assert not wrong, f"{name}: rename {wrong}"


@pytest.mark.parametrize("name", sorted(CALLABLES))
def test_every_public_name_is_documented(name):
    """Functions, classes and methods alike (a class's ``__init__`` is documented by the class)."""
    obj = CALLABLES[name]
    if name.endswith(".__init__"):
        return
    assert (inspect.getdoc(obj) or "").strip(), f"{name} has no docstring (an override inherits its base's)"


def _documented_parameters(obj) -> list[str]:
    """The names in the numpydoc ``Parameters`` section, parsed as the reference (mkdocstrings/griffe) parses it."""
    import griffe

    sections = griffe.Docstring(inspect.getdoc(obj) or "", parser="numpy").parse()
    return [p.name for s in sections if s.kind.value == "parameters" for p in s.value]


PARAMETERISED = sorted(n for n, obj in CALLABLES.items() if not n.endswith(".__init__")
                       and [p for p in _parameters(obj.__init__ if inspect.isclass(obj) else obj)
                            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)])


@pytest.mark.parametrize("name", PARAMETERISED)
def test_every_parameter_is_in_a_parameters_table(name):
    """Each public callable and method documents its parameters in a numpydoc section the reference renders as a
    table; a class documents its constructor's parameters."""
    obj = CALLABLES[name]
    target = obj.__init__ if inspect.isclass(obj) else obj
    wanted = [p.name for p in _parameters(target) if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    documented = _documented_parameters(obj)
    missing = [n for n in wanted if n not in documented]
    assert not missing, f"{name}: no 'Parameters' entry for {missing} (numpydoc: 'name : type' then an indented line)"
    unknown = [n for n in documented if n not in wanted and not n.startswith("*")]
    assert not unknown, f"{name}: documents {unknown}, which it does not take"


@pytest.mark.parametrize("name", sorted(n for n in CALLABLES if "random_state" in [p.name for p in _parameters(CALLABLES[n])]))
def test_random_state_defaults_to_zero(name):
    """One default (docs/glossary.md): the same call gives the same numbers; None asks for fresh randomness."""
    default = next(p.default for p in _parameters(CALLABLES[name]) if p.name == "random_state")
    assert default is not inspect.Parameter.empty and default == 0 and not isinstance(default, bool), \
        f"{name}: random_state defaults to {default!r}, not 0"


def _result_names(result) -> set[str]:
    names = set(result.dims) | set(result.coords) | set(result.attrs)
    return names | set(getattr(result, "data_vars", ()))


def test_results_name_nothing_with_a_retired_word():
    """A region result (the paper's algorithms and a lattice-verified box), robust accuracy over criteria and a
    radius result use the glossary's words for their dims, coords, variables and attrs."""
    import warnings

    import numpy as np

    from semkit.trust import Verified

    space = semkit.Space.paper()
    f = lambda p: np.where(np.abs(np.atleast_2d(p)[:, 0] - 180) < 60, 0.9, 0.1)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        paper = semkit.find_regions(f, [[180, 30]], ("naive", "oir_b"), space=space, iterations=5, progress=False)
        lattice = semkit.find_regions(f, [[180, 30]], Verified(step=20, certificate="lattice"), space=space,
                                      criterion="score >= 0.5", progress=False)
    grid = semkit.semantic_map(f, space=space, step=30, progress=False)
    surface = semkit.robust_accuracy(grid, [0, 30], criterion=["score >= 0.5", "score >= 0.7"])
    radius = semkit.robustness_radius(f, [[180, 30]], space=space, criterion="score >= 0.5", certificate="lattice",
                                      step=20, progress=False)
    assert "algorithm" in paper.dims and "audit_n_samples" in lattice.data_vars and "min_score" in surface.coords
    for name, result in {"regions": paper, "verified": lattice, "robust_accuracy": surface, "radius": radius}.items():
        wrong = {n: BANNED[n] for n in _result_names(result) if n in BANNED}
        assert not wrong, f"{name} result: rename {wrong}"
