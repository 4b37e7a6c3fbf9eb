"""Fixtures for tests against emulated boards running the real firmware."""

from collections.abc import Iterator

import pytest

from host_tools.emulator.runner import EmulatedBoard
from host_tools.profiles import load_profile


@pytest.fixture(scope="session")
def board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedBoard]:
    """The default emulated board (esp32s3), token on, shared by the session's tests."""
    with EmulatedBoard(load_profile("esp32s3"), workdir=tmp_path_factory.mktemp("esp32s3")) as b:
        yield b
