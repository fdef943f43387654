"""Lengths of time as settings and config files write them: `90`, `90s`, `15m`, `1h`, `1d`,
`250ms`. Pure, so domains may use it as well as the settings."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

__all__ = ["Duration", "parse_duration"]

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: object) -> object:
    """Seconds from `90`, `90s`, `15m`, `1h`, `1d` or `250ms`; other types pass to pydantic."""
    if isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match is None:
            raise ValueError("must be seconds or a number with ms, s, m, h or d (e.g. 90s, 15m)")
        return float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    return value


# A length of time in seconds that also reads `15m`-style values from the environment.
Duration = Annotated[float, BeforeValidator(parse_duration)]
