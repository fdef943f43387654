"""Headless Chromium for browser tests: Debian's package, installed with apt-get where missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

# Debian's build, driven by Playwright over CDP; Playwright's own browser download is never used.
DEBIAN_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_TIMEOUT_S = 600.0


class ChromiumUnavailable(RuntimeError):
    """Chromium is not on this machine and could not be installed."""


def find_chromium() -> str | None:
    """The Chromium executable on PATH (Debian's /usr/bin/chromium preferred), or None."""
    if Path(DEBIAN_CHROMIUM).is_file() and os.access(DEBIAN_CHROMIUM, os.X_OK):
        return DEBIAN_CHROMIUM
    return shutil.which("chromium")


def _run(command: list[str], deadline: float) -> None:
    """Run an apt command with its output shown, raising ChromiumUnavailable on failure."""
    print(f"[browser set-up] running: {' '.join(command)}", flush=True)
    remaining = max(1.0, deadline - time.monotonic())
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=remaining, check=False
        )
    except subprocess.TimeoutExpired as exc:
        what = " ".join(command[:2])
        raise ChromiumUnavailable(f"{what} timed out after {exc.timeout:.0f} s") from exc
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
        raise ChromiumUnavailable(
            f"`{' '.join(command)}` exited {result.returncode}:\n" + "\n".join(tail)
        )


def install_chromium(timeout_s: float = INSTALL_TIMEOUT_S) -> str:
    """Install Debian's chromium with apt-get (root only) and return its path."""
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        raise ChromiumUnavailable("apt-get is not available on this machine")
    if os.geteuid() != 0:
        raise ChromiumUnavailable("not running as root, so apt-get install is not possible")
    started = time.monotonic()
    deadline = started + timeout_s
    print("[browser set-up] chromium is missing: installing Debian's package", flush=True)
    _run([apt_get, "update"], deadline)
    _run([apt_get, "install", "-y", "--no-install-recommends", "chromium"], deadline)
    found = find_chromium()
    if found is None:
        raise ChromiumUnavailable("apt-get install chromium succeeded but no chromium is on PATH")
    print(
        f"[browser set-up] installed {found} in {time.monotonic() - started:.0f} s",
        flush=True,
    )
    return found


def ensure_chromium(timeout_s: float = INSTALL_TIMEOUT_S) -> str:
    """The path of a Chromium executable, installing Debian's package first if none is found."""
    return find_chromium() or install_chromium(timeout_s)
