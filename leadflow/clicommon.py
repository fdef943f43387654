"""What every `leadflow` command shares: the error a user can fix, the checked settings and
the `--json` option."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from pydantic import ValidationError

from shared.config import Settings

# Every command that prints a report or a list takes it; its output is then JSON alone.
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON (only JSON on stdout)")]


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""


def utc_option(text: str | None, *, option: str) -> datetime | None:
    """A date or ISO time option as an aware datetime (UTC when it names no zone); CliError
    naming the option when it is not one."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CliError(f"{option} {text!r} is not a date (YYYY-MM-DD)") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def settings_errors(exc: ValidationError) -> list[str]:
    """`LEADFLOW_X: what is wrong` for each invalid setting (never the value: it may be a
    secret)."""
    return [
        f"LEADFLOW_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
        for err in exc.errors()
    ]


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment plus command-line overrides; exits clearly when invalid."""
    try:
        settings = Settings()
        return settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        lines = [f"  {line}" for line in settings_errors(exc)]
        raise CliError("invalid settings:\n" + "\n".join(lines)) from exc


def safe_url(url: str) -> str:
    """The database URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
