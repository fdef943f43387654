"""The browser tests' plumbing: headless Chromium (Debian's, apt-installed where missing), a page
log, tabs, and a `leadflow up` to point them at."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from leadflow.embedded import free_port
from tests.e2e.test_leadflow_up import LEADFLOW, Output, clean_env, wait_ready

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
# What Chromium logs for a page's first, keyless request; expected in the no-key tests.
EXPECTED_401 = "Failed to load resource: the server responded with a status of 401"


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


@contextmanager
def launch_browser() -> Iterator[Browser]:
    """One headless Debian Chromium driven by Playwright's sync API (a loud skip where missing)."""
    try:
        executable = ensure_chromium()
    except ChromiumUnavailable as exc:
        pytest.skip(f"BROWSER TESTS SKIPPED, NOT PASSED: chromium could not be installed: {exc}")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class PageLog:
    """What the page reported: console errors and warnings, uncaught errors, request URLs."""

    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        """Start recording `page`'s console, uncaught errors and requests."""

        def on_console(message: ConsoleMessage) -> None:
            if message.type in ("error", "warning"):
                self.console.append(f"{message.type}: {message.text} @ {message.location}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("request", lambda request: self.requests.append(request.url))

    def problems(self, *, allowed: tuple[str, ...] = ()) -> list[str]:
        """Console errors/warnings (minus those containing an `allowed` text) and page errors."""
        console = [line for line in self.console if not any(a in line for a in allowed)]
        return console + [f"pageerror: {e}" for e in self.errors]


@contextmanager
def open_tab(browser: Browser, **context_options: Any) -> Iterator[tuple[Page, PageLog]]:
    """A fresh browser context and page, recording what the page reports; closed after."""
    context = browser.new_context(**context_options)
    try:
        page = context.new_page()
        log = PageLog()
        log.attach(page)
        yield page, log
    finally:
        context.close()


@dataclass
class System:
    """A running `leadflow up`: its base URL and the dev key it printed."""

    base: str
    key: str


@contextmanager
def leadflow_system(workdir: Path, **env: str) -> Iterator[System]:
    """`leadflow up` on a free port over SQLite in `workdir`, with `env`; Ctrl-C'd at the end."""
    port = free_port()
    process = subprocess.Popen(
        [LEADFLOW, "up", "--port", str(port)],
        cwd=workdir,
        env=clean_env(LEADFLOW_DATABASE_URL=f"sqlite:///{workdir / 'lf.db'}", **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = Output(process)
    try:
        wait_ready(port, process)
        yield System(base=f"http://127.0.0.1:{port}", key=output.dev_key())
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        assert process.returncode in (0, 130), "".join(output.lines[-30:])
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
