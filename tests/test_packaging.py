"""The conda environment and the package metadata stay in step."""

import re
import tomllib

import yaml

from conftest import ROOT


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {_name(d) for d in env["dependencies"] if isinstance(d, str)}
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    pip_reqs = {_name(r): r for r in pip if not r.startswith("-e")}
    for requirement in project["dependencies"]:
        name = _name(requirement)
        if name in ("torch", "torchvision"):
            assert {"torch": "pytorch"}.get(name, name) in conda, name
        else:
            assert pip_reqs.get(name) == requirement, f"environment.yml pins {pip_reqs.get(name)!r}, pyproject {requirement!r}"
    assert "pytorch3d" in conda and "-e ." in pip
