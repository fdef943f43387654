"""Job-title normalisation: a free-text title becomes a seniority level and a job function.

Pure and rule-based. The title is folded to lower-case ASCII words (umlauts become ae/oe/ue,
accents and punctuation are dropped) and matched word by word, never inside a word, against a
small English, German, Spanish and French lexicon; longer phrases win over the words in them
("vice president" over "president"). German compounds are the one exception: they are split
off a known ending ("Einkaufsleiter" is "einkauf" + "leiter") or matched by a known stem
("einkauf*").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from services.scoring.domain.title_words import (
    BOSS_CONNECTORS,
    COMPOUND_ENDINGS,
    FUNCTION_PRIORITY,
    FUNCTION_WORDS,
    RANK_WORDS,
    SENIORITY_ORDER,
    SUPPORT_ROLES,
    JobFunction,
    Seniority,
)

__all__ = ["SENIORITY_ORDER", "JobFunction", "Seniority", "Title", "normalize_title"]


_DECISION_MAKERS = frozenset({Seniority.C_LEVEL, Seniority.VP, Seniority.DIRECTOR})


@dataclass(frozen=True)
class Title:
    """A job title as written, with the seniority and function read from it."""

    raw: str
    seniority: Seniority | None
    function: JobFunction | None

    @property
    def decision_maker(self) -> bool:
        """Whether the title usually signs off a purchase: C-level, VP or director."""
        return self.seniority in _DECISION_MAKERS


_Signal = tuple[Seniority | None, JobFunction | None]

_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue"})
_NON_WORD = re.compile(r"[^a-z0-9]+")


def _build_lexicon() -> tuple[dict[tuple[str, ...], _Signal], dict[str, _Signal]]:
    groups = list(RANK_WORDS) + [(None, f, words) for f, words in FUNCTION_WORDS.items()]
    exact: dict[tuple[str, ...], _Signal] = {}
    stems: dict[str, _Signal] = {}
    for seniority, function, phrases in groups:
        for phrase in phrases:
            stem = phrase.removesuffix("*")
            key: str | tuple[str, ...] = stem if stem != phrase else tuple(phrase.split())
            table: dict[Any, _Signal] = stems if stem != phrase else exact
            # A phrase listed twice would silently take whichever signal came last.
            if key in table:
                raise ValueError(f"title phrase {phrase!r} is listed twice")
            table[key] = (seniority, function)
    return exact, stems


_EXACT, _STEMS = _build_lexicon()
_LONGEST_PHRASE = max(len(key) for key in _EXACT)
_STEMS_LONGEST_FIRST = sorted(_STEMS.items(), key=lambda item: -len(item[0]))


@lru_cache(maxsize=4096)
def normalize_title(title: str | None) -> Title:
    """Read the seniority and job function from a free-text job title (the same few titles
    recur across a batch, so they are read once)."""
    raw = title or ""
    words = _words(raw)
    if not words:
        return Title(raw=raw, seniority=None, function=None)
    own, boss = _split_off_boss(words)
    own_signals = _signals(own)
    ranks = [s for s, _ in own_signals if s is not None]
    seniority = min(ranks, key=SENIORITY_ORDER.index) if ranks else Seniority.INDIVIDUAL
    function = _best_function(own_signals) or _best_function(_signals(boss))
    return Title(raw=raw, seniority=seniority, function=function)


def _words(text: str) -> list[str]:
    folded = text.casefold().translate(_UMLAUTS)
    ascii_text = "".join(
        ch for ch in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(ch)
    )
    words: list[str] = []
    for word in _join_initials(_NON_WORD.sub(" ", ascii_text).split()):
        words.extend(_split_compound(word))
    return words


def _join_initials(words: list[str]) -> list[str]:
    # Dotted or ampersanded acronyms ("C.E.O.", "V.P.", "R&D") arrive as single letters.
    joined: list[str] = []
    run: list[str] = []
    for word in [*words, ""]:
        if len(word) == 1 and word.isalpha():
            run.append(word)
            continue
        if len(run) > 1:
            joined.append("".join(run))
        else:
            joined.extend(run)
        run = []
        if word:
            joined.append(word)
    return joined


def _split_compound(word: str) -> list[str]:
    for ending, canonical in COMPOUND_ENDINGS.items():
        if word == ending:
            return [canonical]
        if word.endswith(ending):
            stem = word[: -len(ending)]
            # German joins compounds with an "s" ("Abteilungs-leiter"), never with "ss".
            if stem.endswith("s") and not stem.endswith("ss") and len(stem) > 3:
                stem = stem[:-1]
            return [stem, canonical]
    return [word]


def _split_off_boss(words: list[str]) -> tuple[list[str], list[str]]:
    for i in range(1, len(words)):
        after_support_role = words[i - 1] in SUPPORT_ROLES and words[i] in BOSS_CONNECTORS
        to_the = words[i] == "to" and words[i + 1 : i + 2] == ["the"]
        if after_support_role or to_the:
            return words[:i], words[i + 1 :]
    return words, []


def _signals(words: list[str]) -> list[_Signal]:
    signals: list[_Signal] = []
    unmatched: list[str] = []
    i = 0
    while i < len(words):
        hit = _match_at(words, i)
        if hit is None:
            unmatched.append(words[i])
            i += 1
        else:
            length, signal = hit
            signals.append(signal)
            i += length
    # "Chief <anything> Officer" is C-suite even when the middle is not in the lexicon.
    if "chief" in unmatched and "officer" in unmatched[unmatched.index("chief") + 1 :]:
        signals.append((Seniority.C_LEVEL, None))
    return signals


def _match_at(words: list[str], i: int) -> tuple[int, _Signal] | None:
    for length in range(min(_LONGEST_PHRASE, len(words) - i), 0, -1):
        signal = _EXACT.get(tuple(words[i : i + length]))
        if signal is not None:
            return length, signal
    for stem, signal in _STEMS_LONGEST_FIRST:
        if words[i].startswith(stem):
            return 1, signal
    return None


def _best_function(signals: list[_Signal]) -> JobFunction | None:
    functions = {f for _, f in signals if f is not None}
    return next((f for f in FUNCTION_PRIORITY if f in functions), None)
