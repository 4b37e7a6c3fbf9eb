"""The MicroPython image a board profile names: downloaded once, cached, and checked by sha256.

A profile's "firmware" object gives the image's URL (micropython.org) and sha256; the offset it
is written at is the profile's "flash_offset".

    image = fetch_image(load_profile("esp32s3"), progress=print)   # ~/.cache/boardmcp/firmware/...
    image = fetch_image(profile, progress=print, local=Path("my.bin"))  # a file of your own

The cache is $XDG_CACHE_HOME/boardmcp/firmware (default ~/.cache/boardmcp/firmware).
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from host_tools.device import DeviceError, Progress
from host_tools.profiles import Profile

ESP_IMAGE_MAGIC = 0xE9  # first byte of an ESP32 bootloader/app image (a merged .bin starts with one)
_CHUNK = 64 * 1024


def cache_dir() -> Path:
    """Where downloaded images are kept."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "boardmcp" / "firmware"


def image_spec(profile: Profile) -> tuple[str, str]:
    """(url, sha256) of the profile's MicroPython image."""
    spec = profile.raw.get("firmware")
    if not isinstance(spec, dict) or not isinstance(spec.get("url"), str) or not isinstance(spec.get("sha256"), str):
        raise DeviceError(
            f"board profile {profile.name} names no MicroPython image (firmware.url, firmware.sha256)",
            "pass an image yourself: FIRMWARE=path/to/micropython.bin (from micropython.org/download)",
        )
    return spec["url"], spec["sha256"].lower()


def fetch_image(profile: Profile, progress: Progress, *, local: Path | None = None, cache: Path | None = None) -> Path:
    """The image to flash: `local` if given (checked to look like an ESP image), else the profile's,
    from the cache or downloaded into it, its sha256 checked either way."""
    if local is not None:
        if not local.is_file():
            raise DeviceError(f"firmware image {local} does not exist", "check the FIRMWARE= path")
        _check_magic(local)
        progress(f"using the image {local} ({local.stat().st_size} bytes)")
        return local
    url, sha256 = image_spec(profile)
    name = Path(urlparse(url).path).name or "firmware.bin"
    target = (cache or cache_dir()) / name
    if target.is_file() and _sha256(target) == sha256:
        progress(f"using the cached image {target}")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    progress(f"downloading {url}")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=30) as resp, part.open("wb") as out:
            total = int(resp.headers.get("Content-Length") or 0)
            done = shown = 0
            while chunk := resp.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if total and done * 10 // total > shown:
                    shown = done * 10 // total
                    progress(f"  {done * 100 // total:3d}%  {done // 1024} of {total // 1024} KiB")
    except (urllib.error.URLError, OSError) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise DeviceError(
            f"cannot download {url}: {reason}",
            f"check the internet connection and retry, or download the image yourself and pass FIRMWARE=path "
            f"(it is cached in {target.parent})",
        ) from None
    got = digest.hexdigest()
    if got != sha256:
        part.unlink(missing_ok=True)
        raise DeviceError(
            f"checksum mismatch for {url}: got sha256 {got}, the profile {profile.name} expects {sha256}",
            "retry (the download may have been corrupted); if it persists, the profile's image entry is out of "
            "date: pass an image you trust with FIRMWARE=path",
        )
    _check_magic(part)
    part.replace(target)
    progress(f"saved {target} (sha256 verified)")
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check_magic(path: Path) -> None:
    with path.open("rb") as f:
        first = f.read(1)
    if first != bytes([ESP_IMAGE_MAGIC]):
        raise DeviceError(
            f"{path} is not an ESP32 firmware image (it does not start with byte 0x{ESP_IMAGE_MAGIC:02X})",
            "use the .bin from micropython.org/download for your board (not a .uf2 or .hex)",
        )
