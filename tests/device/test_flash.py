"""`boardmcp flash` against esp32-mock-bootloader (the ROM bootloader's protocol over a socket):
the image lands at the chip's offset, read back from the mock's flash with esptool; every failure
says what happened and what to do. Images are local files: tests download nothing."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial
from esp32_mock_bootloader import mock_bootloader

from host_tools.device import DeviceError
from host_tools.device.firmware import fetch_image
from host_tools.profiles import load_profile

BOARDMCP = Path(sys.executable).with_name("boardmcp")


def fake_image(path: Path, size: int = 48 * 1024) -> Path:
    """Bytes shaped like a merged ESP32 image: the 0xE9 magic, then noise."""
    path.write_bytes(b"\xe9" + os.urandom(size - 1))
    return path


def boardmcp(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BOARDMCP), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def read_flash(chip: str, url: str, offset: int, size: int, out: Path) -> bytes:
    """The mock's flash, read back by esptool through the ROM's own read command (--no-stub): the
    mock's stub emulation stops streaming once the REPL probe's bytes have reached it."""
    argv = [sys.executable, "-m", "esptool", "--chip", chip, "--port", url, "--no-stub"]
    proc = subprocess.run(
        [*argv, "read-flash", hex(offset), str(size), str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out.read_bytes()


@pytest.mark.parametrize(("board", "offset"), [("esp32", 0x1000), ("esp32s3", 0x0), ("esp32c3", 0x0)])
def test_image_lands_at_the_chips_offset(tmp_path: Path, board: str, offset: int) -> None:
    profile = load_profile(board)
    image = fake_image(tmp_path / "micropython.bin")
    with mock_bootloader(chip=profile.chip) as mock:
        proc = boardmcp(
            "flash", "--board", board, "--port", mock.url(), "--firmware", str(image), "--repl-timeout", "2"
        )
        # The mock is only a bootloader: no MicroPython boots on it, and flash says so.
        assert proc.returncode == 1, proc.stderr
        assert "[2/6] erase and write the image at " + hex(offset) in proc.stderr
        assert "Hash of data verified" in proc.stderr  # esptool's progress, passed through
        assert "no MicroPython REPL" in proc.stderr and "what to do:" in proc.stderr
        flash = read_flash(profile.chip, mock.url(), 0, offset + len(image.read_bytes()), tmp_path / "back.bin")
    assert flash[offset:] == image.read_bytes()
    assert flash[:offset] == b"\xff" * offset  # erased, untouched


def test_wrong_chip_is_refused_before_writing(tmp_path: Path) -> None:
    image = fake_image(tmp_path / "micropython.bin")
    with mock_bootloader(chip="esp32c3") as mock:
        proc = boardmcp("flash", "--board", "esp32s3", "--port", mock.url(), "--firmware", str(image))
        assert proc.returncode == 1
        assert "wrong chip: the board on" in proc.stderr and "ESP32-C3" in proc.stderr
        assert "BOARD=esp32c3" in proc.stderr
        flash = read_flash("esp32c3", mock.url(), 0, 4096, tmp_path / "back.bin")
    assert flash == b"\xff" * 4096


def test_a_file_that_is_no_esp_image_is_refused(tmp_path: Path) -> None:
    uf2 = tmp_path / "firmware.uf2"
    uf2.write_bytes(b"UF2\n" + bytes(508))
    proc = boardmcp("flash", "--port", "/dev/null", "--firmware", str(uf2))
    assert proc.returncode == 1 and "is not an ESP32 firmware image" in proc.stderr


def test_missing_and_busy_ports(tmp_path: Path) -> None:
    image = fake_image(tmp_path / "micropython.bin")
    proc = boardmcp("flash", "--port", str(tmp_path / "ttyUSB9"), "--firmware", str(image))
    assert proc.returncode == 1 and "no serial port" in proc.stderr and "what to do:" in proc.stderr
    master, slave = os.openpty()
    try:
        path = os.ttyname(slave)
        with serial.Serial(path, exclusive=True):  # another program holds the port
            proc = boardmcp("deploy", "--port", path)
        assert proc.returncode == 1 and f"serial port {path} is busy" in proc.stderr
    finally:
        os.close(master)
        os.close(slave)


class _Server(http.server.ThreadingHTTPServer):
    hits: list[str]


@pytest.fixture
def image_server(tmp_path: Path) -> Iterator[tuple[str, Path, _Server]]:
    """A local HTTP server standing in for micropython.org, serving one image."""
    root = tmp_path / "www"
    root.mkdir()
    image = fake_image(root / "ESP32_GENERIC_S3-test.bin")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            server.hits.append(self.path)

    server = _Server(("127.0.0.1", 0), Handler)
    server.hits = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{image.name}", image, server
    finally:
        server.shutdown()
        server.server_close()


def _profile_with(tmp_path: Path, url: str, sha256: str) -> Path:
    raw = json.loads(load_profile("esp32s3").path.read_text())
    raw["firmware"] = {"url": url, "sha256": sha256}
    path = tmp_path / "esp32s3-local.json"
    path.write_text(json.dumps(raw))
    return path


def test_download_is_cached_and_checked(tmp_path: Path, image_server: tuple[str, Path, _Server]) -> None:
    url, image, server = image_server
    sha = hashlib.sha256(image.read_bytes()).hexdigest()
    profile = load_profile(_profile_with(tmp_path, url, sha))
    cache = tmp_path / "cache"
    said: list[str] = []
    first = fetch_image(profile, said.append, cache=cache)
    assert first.read_bytes() == image.read_bytes() and first.parent == cache
    assert any("100%" in line for line in said) and any("sha256 verified" in line for line in said)
    assert fetch_image(profile, said.append, cache=cache) == first
    assert len(server.hits) == 1  # the second call used the cache

    bad = load_profile(_profile_with(tmp_path, url, "0" * 64))
    with pytest.raises(DeviceError) as err:
        fetch_image(bad, said.append, cache=tmp_path / "cache2")
    assert "checksum mismatch" in err.value.what and "FIRMWARE=" in err.value.todo
    assert list((tmp_path / "cache2").iterdir()) == []  # nothing half-trusted is kept

    gone = load_profile(_profile_with(tmp_path, url.replace(".bin", "-missing.bin"), sha))
    with pytest.raises(DeviceError) as err:
        fetch_image(gone, said.append, cache=tmp_path / "cache3")
    assert "cannot download" in err.value.what
