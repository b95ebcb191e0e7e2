"""The lock file CI installs from (requirements-dev.txt, by pip-compile) pins what pyproject.toml asks for."""

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements-dev.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==([^\s;]+)", line)
        if match:
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def test_every_dependency_of_pyproject_is_pinned_at_a_version_it_allows():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["dev"]]]
    pins = _pins()
    missing = [str(r) for r in wanted if canonicalize_name(r.name) not in pins]
    outside = [
        f"{r} (locked {pins[canonicalize_name(r.name)]})"
        for r in wanted
        if canonicalize_name(r.name) in pins and not r.specifier.contains(pins[canonicalize_name(r.name)])
    ]
    assert not missing and not outside, (
        f"requirements-dev.txt is out of date (missing: {missing}, outside the range: {outside}); "
        "regenerate it with: pip-compile --extra dev --strip-extras --no-emit-index-url --no-emit-find-links "
        "-o requirements-dev.txt pyproject.toml"
    )
