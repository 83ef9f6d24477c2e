"""Check that the built wheel and sdist contain what they should and nothing stray.

Usage: ``python scripts/check_dist.py dist``
"""

from __future__ import annotations

import sys
import tarfile
import zipfile
from pathlib import Path

STRAY = ("__pycache__", ".pyc", ".venv", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".DS_Store")
SDIST_TOP = {
    "airflow_provider_spotfire",
    "tests",
    "example_dags",
    "docs",
    "README.md",
    "CHANGELOG.md",
    "LICENSE",
    "constraints",
    "pyproject.toml",
    "PKG-INFO",
    ".gitignore",
}
LICENSE_MARK = "Apache License\n                           Version 2.0, January 2004"
REQUIRED_IN_WHEEL = (
    "airflow_provider_spotfire/__init__.py",
    "airflow_provider_spotfire/py.typed",
    "airflow_provider_spotfire/hooks/spotfire.py",
    "airflow_provider_spotfire/emulator/app.py",
)


def wheel_license_problems(wheel: Path, names: list[str]) -> list[str]:
    """The Apache-2.0 text in ``*.dist-info/licenses/LICENSE``, named by ``License-File`` in METADATA."""
    archive = zipfile.ZipFile(wheel)
    licenses = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    metadata = [n for n in names if n.endswith(".dist-info/METADATA")]
    problems = []
    if not licenses or LICENSE_MARK not in archive.read(licenses[0]).decode():
        problems.append(f"{wheel.name}: no Apache-2.0 text at *.dist-info/licenses/LICENSE")
    meta = archive.read(metadata[0]).decode() if metadata else ""
    for line in ("License-Expression: Apache-2.0", "License-File: LICENSE"):
        if line not in meta.splitlines():
            problems.append(f"{wheel.name}: METADATA lacks '{line}'")
    return problems


def sdist_license_problems(sdist: Path, tar: tarfile.TarFile) -> list[str]:
    """The Apache-2.0 text at the sdist's top level (``<name>-<version>/LICENSE``)."""
    members = [m for m in tar.getmembers() if m.name.count("/") == 1 and m.name.endswith("/LICENSE")]
    handle = tar.extractfile(members[0]) if members else None
    if handle is None or LICENSE_MARK not in handle.read().decode():
        return [f"{sdist.name}: no Apache-2.0 text at <name>-<version>/LICENSE"]
    return []


def main(dist: Path) -> int:
    problems: list[str] = []
    wheels = list(dist.glob("*.whl"))
    sdists = list(dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        problems.append(f"expected one wheel and one sdist in {dist}, found {wheels + sdists}")
    for wheel in wheels:
        names = zipfile.ZipFile(wheel).namelist()
        for name in names:
            top = name.split("/", 1)[0]
            if not (top == "airflow_provider_spotfire" or top.endswith(".dist-info")):
                problems.append(f"{wheel.name}: unexpected {name}")
            if any(s in name for s in STRAY):
                problems.append(f"{wheel.name}: stray {name}")
        for required in REQUIRED_IN_WHEEL:
            if required not in names:
                problems.append(f"{wheel.name}: missing {required}")
        entry_points = [n for n in names if n.endswith("entry_points.txt")]
        text = zipfile.ZipFile(wheel).read(entry_points[0]).decode() if entry_points else ""
        for needed in ("apache_airflow_provider", "pytest11", "airflow-spotfire"):
            if needed not in text:
                problems.append(f"{wheel.name}: entry point group/script {needed} missing")
        problems += wheel_license_problems(wheel, names)
    for sdist in sdists:
        with tarfile.open(sdist) as tar:
            for member in tar.getnames():
                parts = member.split("/")
                if len(parts) > 1 and parts[1] not in SDIST_TOP:
                    problems.append(f"{sdist.name}: unexpected {member}")
                if any(s in member for s in STRAY):
                    problems.append(f"{sdist.name}: stray {member}")
            problems += sdist_license_problems(sdist, tar)
    for p in problems:
        print("DIST PROBLEM:", p)
    print(f"checked {len(wheels)} wheel(s), {len(sdists)} sdist(s): {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "dist")))
