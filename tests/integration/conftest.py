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


@pytest.fixture(scope="session")
def conformance_board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedBoard]:
    """A board with the conformance fixtures (tools that stream, ask the client, change lists)."""
    with EmulatedBoard(load_profile("conformance"), workdir=tmp_path_factory.mktemp("conformance")) as b:
        yield b
