"""The pinned dependency set (requirements/*.txt) is complete, consistent and actually used.

pyproject.toml keeps ranges; requirements/ pins one tested set with hashes. These checks
fail when someone adds a dependency (say an optional `xgboost`) without re-running
``bash scripts/lock.sh``, or when an installer stops reading the lock.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
REQ = ROOT / "requirements"
LOCKS = ("dev", "runtime", "image")
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def _pins(name: str) -> dict[str, tuple[Version, int]]:
    """package -> (pinned version, number of hashes)."""
    pins: dict[str, tuple[Version, int]] = {}
    current = None
    for line in (REQ / f"{name}.txt").read_text(encoding="utf-8").splitlines():
        if m := PIN.match(line):
            current = canonicalize_name(m.group(1))
            pins[current] = (Version(m.group(2)), 0)
        elif current and re.search(r"--hash=sha256:[0-9a-f]{64}", line):
            version, count = pins[current]
            pins[current] = (version, count + 1)
        elif line.strip() and not line.lstrip().startswith("#"):
            raise AssertionError(f"{name}.txt: unexpected line {line!r}")
    return pins


@pytest.fixture(scope="module")
def locks() -> dict[str, dict[str, tuple[Version, int]]]:
    return {name: _pins(name) for name in LOCKS}


@pytest.fixture(scope="module")
def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_every_pin_has_hashes_and_no_torch(locks: dict) -> None:
    for name, pins in locks.items():
        assert len(pins) > 20, name
        for package, (_, hashes) in pins.items():
            assert hashes >= 1, f"{name}.txt: {package} has no --hash (pip --require-hashes would refuse)"
        # torch is installed first, CPU or CUDA by choice; a pin here would pull CUDA wheels.
        assert "torch" not in pins and not any(p.startswith(("nvidia-", "triton")) for p in pins), name
        text = (REQ / f"{name}.txt").read_text(encoding="utf-8")
        assert not re.search(r"(^|\s)(/[a-z]+)+/", text.replace("# ", "")), f"{name}.txt: local path"


def test_one_version_per_package_across_files(locks: dict) -> None:
    dev, runtime, image = locks["dev"], locks["runtime"], locks["image"]
    assert set(runtime) <= set(dev) and set(image) <= set(runtime)
    for package, (version, _) in {**runtime, **image}.items():
        assert dev[package][0] == version, f"{package}: {version} here, {dev[package][0]} in dev.txt"
    assert "ray" in runtime and "ray" not in image, "the image leaves flwr's simulation extra out"


def test_pyproject_ranges_are_satisfied_by_the_pins(locks: dict, project: dict) -> None:
    """Every dependency (and every extra, e.g. an optional xgboost) is pinned inside its range."""
    groups = {"runtime": project["dependencies"]}
    groups.update({f"extra {k}": v for k, v in project.get("optional-dependencies", {}).items()})
    for group, reqs in groups.items():
        for raw in reqs:
            req = Requirement(raw)
            name = canonicalize_name(req.name)
            if name == "torch" or (req.marker is not None and not req.marker.evaluate()):
                continue
            for lock in ("dev", "runtime") if group == "runtime" else ("dev",):
                assert name in locks[lock], (
                    f"{raw} ({group}) missing from {lock}.txt: run bash scripts/lock.sh"
                )
                version = locks[lock][name][0]
                assert req.specifier.contains(version, prereleases=True), (
                    f"{lock}.txt pins {name}=={version}, outside {raw!r}: run bash scripts/lock.sh"
                )


def test_installers_use_the_lock() -> None:
    setup = (ROOT / "scripts" / "setup.sh").read_text(encoding="utf-8")
    assert '--require-hashes --no-deps -r "$LOCK"' in setup
    assert "LOCK=requirements/runtime.txt" in setup and "LOCK=requirements/dev.txt" in setup
    assert "torch==${FEDLAB_TORCH_VERSION:-2.13.0}" in setup, "keep the local CPU torch pin"
    # pycanon/anjana stay --no-deps: their exact pins would break Flower's CLI.
    assert re.search(r"--no-deps \"pycanon==[\d.]+\" \"anjana==[\d.]+\"", setup)
    assert "bash scripts/setup.sh dev" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    build = (ROOT / "scripts" / "container-build.sh").read_text(encoding="utf-8")
    assert "--require-hashes --no-deps -r requirements/image.txt" in build
    assert "TORCH_VERSION=${FEDLAB_TORCH_VERSION:-2.13.0}" in build
    docker = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    assert "--no-index --find-links /wheels --require-hashes --no-deps" in docker
    assert "-r /tmp/image.txt" in docker
    lock = (ROOT / "scripts" / "lock.sh").read_text(encoding="utf-8")
    assert "TORCH_VERSION=${FEDLAB_TORCH_VERSION:-2.13.0}" in lock and "--generate-hashes" in lock
