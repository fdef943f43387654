"""What every `leadflow` command shares: the error a user can fix, and the checked settings."""

from __future__ import annotations

from pydantic import ValidationError

from shared.config import Settings


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment plus command-line overrides; exits clearly when invalid."""
    try:
        settings = Settings()
        return settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        lines = [
            f"  LEADFLOW_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        ]
        raise CliError("invalid settings:\n" + "\n".join(lines)) from exc


def safe_url(url: str) -> str:
    """The database URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
