"""What a run needs, checked before anything starts: one line per missing piece, with its fix.

Debian tools come from apt, Python packages from the project's ``bench`` extra;
``bench/setup`` installs both.
"""

from __future__ import annotations

import os
import subprocess

from .procs import VBIN, VENV, tool

SETUP = "bench/setup"

# Tools on PATH (or /usr/sbin) -> the Debian package that brings them.
DEBIAN = {
    "nginx": "nginx",
    "wrk": "wrk",
    "curl": "curl",
    "taskset": "util-linux",
    "psql": "postgresql-client",
}
# Executables in the venv, and modules the venv's python must import.
VENV_EXES = {"mailbeacon", "granian", "gunicorn", "py-spy"}
VENV_MODULES = {"flask", "pytracking"}


def _venv_fix() -> str:
    if not (VBIN / "python").exists():
        return (
            f"run {SETUP} (or: python3 -m venv {VENV} && {VBIN}/pip install -e '.[bench]'; "
            "another venv: MAILBEACON_VENV=/path/to/venv)"
        )
    return f"run {SETUP} (or: {VBIN}/pip install -e '.[bench]')"


def _missing_modules(names: list[str]) -> set[str]:
    if not names or not (VBIN / "python").exists():
        return set(names)
    code = (
        "import importlib.util, sys\n"
        "print(' '.join(n for n in sys.argv[1:] if importlib.util.find_spec(n) is None))"
    )
    try:
        r = subprocess.run(
            [str(VBIN / "python"), "-c", code, *names], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return set(names)
    return set(r.stdout.split()) if r.returncode == 0 else set(names)


def problems(needs: set[str]) -> list[str]:
    """One line per missing requirement among ``needs``, saying how to get it."""
    out = []
    if (os.cpu_count() or 1) < 2:
        out.append("needs 2 cores (server on core 0, wrk on core 1); this machine has 1")
    for name in sorted(needs & DEBIAN.keys()):
        if tool(name) is None:
            out.append(f"missing {name}: run {SETUP} (or: sudo apt-get install {DEBIAN[name]})")
    for name in sorted(needs & VENV_EXES):
        if not (VBIN / name).exists():
            out.append(f"missing {name} in {VENV}: {_venv_fix()}")
    for name in sorted(_missing_modules(sorted(needs & VENV_MODULES))):
        out.append(f"missing Python package {name} in {VENV}: {_venv_fix()}")
    return out
