"""`boardmcp deploy`, `provision` and `discover` with the real mpremote and zeroconf against emulated
boards (their console pty stands in for the USB serial port), and the setup page in headless
Chromium: after each, the board restarts and serves with its new firmware or configuration."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from wire import open_session, post

from host_tools.device.ports import restart_and_watch
from host_tools.emulator.runner import DEFAULT_WIFI, EmulatedBoard
from host_tools.profiles import load_profile, repo_root

BOARDMCP = Path(sys.executable).with_name("boardmcp")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def boardmcp(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, XDG_CONFIG_HOME=str(home / "config"), XDG_CACHE_HOME=str(home / "cache"))
    return subprocess.run(
        [str(BOARDMCP), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def serves_with(board: EmulatedBoard, token: str | None) -> int:
    """HTTP status of an initialize sent with `token`."""
    board.token = token
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    return post(board, init)[0]


@pytest.fixture
def own_board(tmp_path: Path) -> Iterator[EmulatedBoard]:
    with EmulatedBoard(load_profile("esp32c3"), workdir=tmp_path / "board") as b:
        yield b


def test_deploy_replaces_the_firmware_and_keeps_the_config(tmp_path: Path, own_board: EmulatedBoard) -> None:
    fw = tmp_path / "firmware"
    shutil.copytree(repo_root() / "firmware", fw, ignore=shutil.ignore_patterns("pyrightconfig.json"))
    init = fw / "boardmcp" / "__init__.py"
    init.write_text(init.read_text().replace('VERSION = "0.1.0"', 'VERSION = "0.1.0+deployed"'))
    stale = own_board.workdir / "fs" / "boardmcp" / "gone.mpy"
    stale.write_bytes(b"M")  # a module the new firmware no longer has
    config = (own_board.workdir / "fs" / "config.json").read_text()

    proc = boardmcp("deploy", "--board", "esp32c3", "--port", own_board.console, "--firmware", str(fw), home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "[1/2] compile and copy" in proc.stderr and "mpy-cross -march=rv32imc" in proc.stderr
    assert f"MCP endpoint:  {own_board.url}" in proc.stdout
    assert "board: boardmcp 0.1.0+deployed on esp32c3" in proc.stderr  # the restarted board's console
    assert not stale.exists()
    assert (own_board.workdir / "fs" / "config.json").read_text() == config
    assert open_session(own_board)


def test_deploy_brings_mqtt_only_to_a_board_configured_for_it(tmp_path: Path, own_board: EmulatedBoard) -> None:
    mqtt = own_board.workdir / "fs" / "boardmcp" / "transport" / "mqtt.mpy"
    assert not mqtt.exists()  # the emulator stages what deploy copies
    config_file = own_board.workdir / "fs" / "config.json"
    config = json.loads(config_file.read_text())
    config["mqtt"] = {"broker": "127.0.0.1", "port": 9}  # nothing listens: the board retries, and serves on
    config_file.write_text(json.dumps(config))
    restart_and_watch(own_board.console, 30, lambda _msg: None)
    assert "mqtt: configured, but its transport is not on the board" in own_board.console_log
    assert open_session(own_board)

    proc = boardmcp("deploy", "--board", "esp32c3", "--port", own_board.console, home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "uses-mqtt True" in proc.stderr and mqtt.exists()
    assert "password" not in proc.stderr  # only that line of config.json is shown
    assert open_session(own_board)


def test_provision_writes_wifi_and_a_new_token(tmp_path: Path, own_board: EmulatedBoard) -> None:
    old = own_board.token
    password = DEFAULT_WIFI["password"]
    proc = boardmcp(
        "provision", "--board", "esp32c3", "--port", own_board.console,
        "--ssid", DEFAULT_WIFI["ssid"], "--password", password, home=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    saved = json.loads((tmp_path / "config" / "boardmcp" / "boards.json").read_text())
    assert oct((tmp_path / "config" / "boardmcp" / "boards.json").stat().st_mode & 0o777) == "0o600"
    (hostname, entry), *_ = saved.items()
    assert re.fullmatch(r"boardmcp-[0-9a-f]{4}", hostname) and entry["url"] == own_board.url
    assert f"Authorization: Bearer {entry['token']}" in proc.stdout
    assert entry["token"] != old
    assert serves_with(own_board, entry["token"]) == 200
    assert serves_with(own_board, old) == 401
    # The password is in config.json on the board and nowhere else.
    assert password not in proc.stdout + proc.stderr + own_board.console_log
    assert json.loads((own_board.workdir / "fs" / "config.json").read_text())["wifi"]["password"] == password
    assert not (own_board.workdir / "fs" / ".provision.json").exists()


def test_provision_with_a_wrong_password_says_so(tmp_path: Path, own_board: EmulatedBoard) -> None:
    proc = boardmcp(
        "provision", "--board", "esp32c3", "--port", own_board.console,
        "--ssid", DEFAULT_WIFI["ssid"], "--password", "not-the-password", home=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "could not join 'boardmcp-lab'" in proc.stderr and "what to do:" in proc.stderr
    assert "not-the-password" not in proc.stdout + proc.stderr + own_board.console_log


def test_setup_page_in_chromium(tmp_path: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed (.ci/run installs Debian's chromium)")
    with EmulatedBoard(load_profile("esp32s3"), workdir=tmp_path / "board", provisioned=False) as board:
        assert "setup: join the Wi-Fi network" in board.console_log
        with playwright.sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                ],
            )
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{board.port}/")
            assert page.locator("h1").inner_text().startswith("boardmcp-")
            # The networks in range are offered; a short password is refused with a reason.
            assert page.locator("#nets option").first.get_attribute("value") == DEFAULT_WIFI["ssid"]
            page.fill("#ssid", DEFAULT_WIFI["ssid"])
            page.fill("#password", "short")
            page.click("button[type=submit]")
            assert "8 to 63 characters" in page.locator(".err").inner_text()
            page.fill("#ssid", DEFAULT_WIFI["ssid"])
            page.fill("#password", DEFAULT_WIFI["password"])
            page.click("button[type=submit]")
            token = page.locator("#token").inner_text()
            page.screenshot(path=str(tmp_path / "setup-done.png"))
            browser.close()
        assert re.fullmatch(r"[A-Za-z0-9_-]{24}", token)
        # The board resets, joins the network and serves MCP with the token the page showed.
        assert _wait_serving(board, token)
        assert DEFAULT_WIFI["password"] not in board.console_log


def _wait_serving(board: EmulatedBoard, token: str) -> bool:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if serves_with(board, token) == 200:
                return True
        except (OSError, ValueError):
            pass  # still the setup page (HTML), or restarting
        time.sleep(0.2)
    return False


def test_discover_finds_emulated_boards(tmp_path: Path) -> None:
    with (
        EmulatedBoard(load_profile("esp32s3"), workdir=tmp_path / "a", announce=True) as a,
        EmulatedBoard(load_profile("esp32c3"), workdir=tmp_path / "b", announce=True, token=None) as b,
    ):
        proc = boardmcp("discover", "--interface", "127.0.0.1", "--timeout", "2", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines()}
    urls = {url for url, *_ in rows.values()}
    assert {a.url, b.url} <= urls
    assert any(url == b.url and "auth=none" in rest for url, *rest in rows.values())
    assert all(name.startswith("boardmcp-") for name in rows)
