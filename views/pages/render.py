"""Rendering the pages: one Jinja2 environment (everything autoescaped), the few filters the
templates use, and the headers every page and fragment carries (CSP: no inline script)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader

TEMPLATES = Path(__file__).resolve().parent / "templates"

# Scripts and styles only from this origin: no inline script, no inline style, no CDN.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'; "
    "object-src 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def when(value: Any) -> str:
    """An ISO time as `2026-11-22 10:15:00 UTC` (as it came for anything else; '' for None)."""
    if value is None or value == "":
        return ""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    zone = moment.strftime("%Z") or ""
    return moment.strftime("%Y-%m-%d %H:%M:%S") + (" " + zone if zone else "")


def duration(seconds: Any) -> str:
    """Seconds as `3d 4h`, `2h 5m`, `40s` ('' for None)."""
    if seconds is None:
        return ""
    total = int(float(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def words(value: Any) -> str:
    """`requirements_building` as `requirements building` ('' for None)."""
    return "" if value is None else str(value).replace("_", " ")


ENV = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=True,  # every template, whatever its name: lead names come from the internet
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters.update(when=when, duration=duration, words=words)


def render(template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    """`template` rendered with `context`, as HTML with the pages' security headers."""
    body = ENV.get_template(template).render(**context)
    return HTMLResponse(body, status_code=status_code, headers=HEADERS)
