"""Which fedlab code is running: version + a hash of its source, and a loud check against the
fedlab installed beside a SuperNode.

Why: a deployed SuperNode executes the apps shipped by ``flwr run`` (the submitter's checkout,
the FAB), not the fedlab baked into its image (issue #27). When the two differ, the numbers a
site produces come from code its operator never installed. `check_code_identity` compares the
running package with the installed distribution and says so naming both (version and source
hash); with ``FEDLAB_REQUIRE_SAME_CODE=1`` in the SuperNode's environment it refuses to run.
"""

from __future__ import annotations

import hashlib
import logging
import os
from functools import lru_cache
from pathlib import Path

from fedlab.core.errors import FedlabError

log = logging.getLogger("fedlab.identity")
STRICT_ENV = "FEDLAB_REQUIRE_SAME_CODE"


def source_hash(package_dir: Path) -> str:
    """sha256 (16 hex) over the package's ``.py`` files: relative path and content, sorted."""
    digest = hashlib.sha256()
    for path in sorted(Path(package_dir).rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(package_dir).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _installed() -> tuple[str, Path | None]:
    """The installed fedlab distribution's version and package folder (None: editable/absent)."""
    from importlib import metadata

    try:
        dist = metadata.distribution("fedlab")
    except metadata.PackageNotFoundError:
        return "", None
    folder = Path(str(dist.locate_file("fedlab")))
    return dist.version, folder if (folder / "__init__.py").is_file() else None


def identity_message(running: tuple[str, Path], installed: tuple[str, Path | None]) -> str:
    """'' when the running fedlab is the installed one (or none is installed), else the warning."""
    version, folder = running
    inst_version, inst_folder = installed
    if inst_folder is None or Path(inst_folder).resolve() == Path(folder).resolve():
        return ""
    run_hash, inst_hash = source_hash(folder), source_hash(inst_folder)
    if (version, run_hash) == (inst_version, inst_hash):
        return ""
    return (
        f"the submitted fedlab {version} (source {run_hash}, {folder}) differs from the fedlab "
        f"{inst_version} installed beside this SuperNode (source {inst_hash}, {inst_folder})"
    )


@lru_cache(maxsize=1)
def check_code_identity() -> str:
    """Warn (once per process) or, with FEDLAB_REQUIRE_SAME_CODE=1, refuse when the code differs."""
    import fedlab

    message = identity_message((fedlab.__version__, Path(fedlab.__file__).parent), _installed())
    if message and os.environ.get(STRICT_ENV) == "1":
        raise FedlabError(f"{message}; refusing to run ({STRICT_ENV}=1)")
    if message:
        log.warning("WARNING: %s", message)
    return message
