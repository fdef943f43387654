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
from enum import StrEnum
from functools import lru_cache
from typing import Any


class Seniority(StrEnum):
    """How senior a title is, from the C-suite down to individual contributors."""

    C_LEVEL = "c_level"
    VP = "vp"
    DIRECTOR = "director"
    MANAGER = "manager"
    INDIVIDUAL = "individual"


class JobFunction(StrEnum):
    """The part of the business a title works in."""

    EXECUTIVE = "executive"
    IT = "it"
    ENGINEERING = "engineering"
    OPERATIONS = "operations"
    FINANCE = "finance"
    PURCHASING = "purchasing"
    HR = "hr"
    EHS = "ehs"
    MAINTENANCE = "maintenance"
    MARKETING = "marketing"
    SALES = "sales"
    PRODUCT = "product"
    LEGAL = "legal"
    OTHER = "other"


SENIORITY_ORDER: tuple[Seniority, ...] = (
    Seniority.C_LEVEL,
    Seniority.VP,
    Seniority.DIRECTOR,
    Seniority.MANAGER,
    Seniority.INDIVIDUAL,
)

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

_S = Seniority
_F = JobFunction

# Phrases that say how senior someone is (and sometimes what they do). Deliberate choices:
# "Chief of Staff" runs the CEO's office without being an officer, so it ranks with the VPs;
# "Head X" is always a head, so "Head Chef" is a VP (of the kitchen, function OTHER);
# "Product Owner" and its kin own a backlog, not a business, so they carry no rank; titles
# with "manager" (Account Manager, Product Manager) are managers whether or not they lead a team.
_RANK_WORDS: tuple[tuple[Seniority | None, JobFunction | None, tuple[str, ...]], ...] = (
    (
        _S.C_LEVEL,
        _F.EXECUTIVE,
        (
            "ceo",
            "chief executive officer",
            "owner",
            "business owner",
            "founder",
            "cofounder",
            "president",
            "managing director",
            "managing partner",
            "chairman",
            "chairwoman",
            "chairperson",
            "proprietor",
            "director general",
            "directeur general",
            "directora general",
            "pdg",
            "geschaeftsfuehr*",
            "vorstand*",
            "inhaber*",
        ),
    ),
    (
        _S.C_LEVEL,
        _F.IT,
        ("cto", "cio", "ciso", "chief technology officer", "chief information officer"),
    ),
    (_S.C_LEVEL, _F.FINANCE, ("cfo",)),
    (_S.C_LEVEL, _F.OPERATIONS, ("coo", "chief operating officer")),
    (_S.C_LEVEL, _F.MARKETING, ("cmo",)),
    (_S.C_LEVEL, _F.PRODUCT, ("cpo",)),
    (_S.C_LEVEL, _F.SALES, ("cro",)),
    (_S.C_LEVEL, _F.HR, ("chro",)),
    (
        _S.VP,
        None,
        ("vp", "svp", "evp", "vice president", "vicepresidente", "vizepraesident*", "head"),
    ),
    (_S.VP, _F.EXECUTIVE, ("chief of staff",)),
    # The company's top lawyer reports to the CEO, like the VPs.
    (_S.VP, _F.LEGAL, ("general counsel",)),
    (
        _S.DIRECTOR,
        None,
        (
            "director",
            "directora",
            "directeur",
            "directrice",
            "avp",
            "assistant vice president",
            "associate vice president",
            "leiter",
            "leitung",
            "prokurist*",
        ),
    ),
    (_S.DIRECTOR, _F.EXECUTIVE, ("general manager", "gm", "gerente general")),
    (_S.DIRECTOR, _F.SALES, ("account director",)),
    (
        _S.MANAGER,
        None,
        (
            "manager",
            "gerente",
            "jefe",
            "jefa",
            "responsable",
            "chef de",
            "supervisor",
            "foreman",
            "superintendent",
            "team lead",
            "team leader",
            "team leiter",
            "group leader",
            "gruppen leiter",
            "shift leader",
            "schicht leiter",
            "projekt leiter",
            "assistant director",
            "associate director",
        ),
    ),
    (_S.MANAGER, _F.SALES, ("account manager", "key account manager")),
    (None, _F.SALES, ("account executive",)),
    (None, _F.PRODUCT, ("product owner",)),
    (None, _F.IT, ("system owner",)),
    (None, None, ("process owner", "service owner", "data owner", "risk owner")),
    (None, _F.HR, ("head hunter",)),
    (None, _F.EXECUTIVE, ("executive assistant", "personal assistant")),
    (None, _F.OTHER, ("administrative assistant", "director of first impressions")),
)

_FUNCTION_WORDS: dict[JobFunction, tuple[str, ...]] = {
    _F.EXECUTIVE: ("general management",),
    _F.IT: (
        "it",
        "information technology",
        "information systems",
        "information security",
        "infrastructure",
        "security",
        "cybersecurity",
        "cyber security",
        "infosec",
        "systems",
        "system",
        "network",
        "networks",
        "site reliability",
        "edv",
        "informatique",
        "informatica",
        "sistemas",
    ),
    _F.ENGINEERING: (
        "engineer",
        "engineers",
        "engineering",
        "software",
        "developer",
        "rd",
        "research and development",
        "technology",
        "tech",
        "technical",
        "architect",
        "programmer",
        "devops",
        "technik",
        "technischer",
        "technische",
        "ingenieur*",
        "entwickler*",
        "entwicklung*",
        "ingeniero",
        "ingeniera",
        "ingenierie",
    ),
    _F.OPERATIONS: (
        "operations",
        "operation",
        "ops",
        "operating",
        "supply chain",
        "logistics",
        "plant",
        "production",
        "manufacturing",
        "werk",
        "betrieb",
        "produktion*",
        "fertigung*",
        "logistik*",
        "operaciones",
        "produccion",
        "planta",
        "logistica",
        "logistique",
        "usine",
    ),
    _F.FINANCE: (
        "finance",
        "finances",
        "financial",
        "controller",
        "controlling",
        "accounting",
        "accountant",
        "treasurer",
        "treasury",
        "accounts payable",
        "accounts receivable",
        "finanz*",
        "buchhalt*",
        "rechnungswesen",
        "kaufmaennisch*",
        "finanzas",
        "financiero",
        "financiera",
        "financier",
        "financiere",
        "comptabilite",
        "comptable",
        "contabilidad",
    ),
    _F.PURCHASING: (
        "procurement",
        "purchasing",
        "purchaser",
        "buyer",
        "buying",
        "sourcing",
        "einkauf*",
        "einkaeuf*",
        "beschaffung*",
        "compras",
        "comprador",
        "compradora",
        "adquisiciones",
        "achats",
        "achat",
        "acheteur",
        "acheteuse",
        "approvisionnement*",
    ),
    _F.HR: (
        "hr",
        "human resources",
        "human resource",
        "people",
        "talent",
        "recruiting",
        "recruiter",
        "recruitment",
        "personnel",
        "personal*",
        "rrhh",
        "rh",
        "recursos humanos",
        "ressources humaines",
    ),
    _F.EHS: (
        "ehs",
        "hse",
        "hs",
        "safety",
        "environment",
        "environmental",
        "sifa",
        "arbeitssicherheit*",
        "arbeitsschutz*",
        "sicherheitsfachkraft*",
        "umweltschutz*",
    ),
    _F.MAINTENANCE: (
        "maintenance",
        "facilities",
        "facility",
        "reliability",
        "instandhalt*",
        "wartung*",
        "mantenimiento",
        "entretien",
    ),
    _F.MARKETING: ("marketing", "brand", "branding", "growth", "demand generation", "demand gen"),
    _F.SALES: (
        "sales",
        "revenue",
        "business development",
        "bdr",
        "sdr",
        "commercial",
        "comercial",
        "vertrieb*",
        "verkauf*",
        "ventas",
        "ventes",
    ),
    _F.PRODUCT: ("product", "products", "produkt", "produit", "producto"),
    _F.LEGAL: (
        "legal",
        "counsel",
        "compliance",
        "attorney",
        "lawyer",
        "paralegal",
        "justiziar*",
        "juridique",
        "juridico",
        "juridica",
    ),
    _F.OTHER: (
        "chef",
        "cook",
        "nurse",
        "teacher",
        "professor",
        "student",
        "consultant",
        "customer service",
        "customer support",
        "customer success",
        "support",
        "administration",
        "administrative",
        "admin",
        "office",
        "receptionist",
        "reception",
    ),
}

# When a title names several functions the most specific wins, in this order: a specialist
# area (EHS, maintenance, purchasing, legal, HR, finance, IT) beats the broad line functions
# (marketing, product, sales, engineering, operations), which beat executive and other; so
# "IT Procurement Manager" buys and "Head of Maintenance Engineering" maintains.
_FUNCTION_PRIORITY: tuple[JobFunction, ...] = (
    _F.EHS,
    _F.MAINTENANCE,
    _F.PURCHASING,
    _F.LEGAL,
    _F.HR,
    _F.FINANCE,
    _F.IT,
    _F.MARKETING,
    _F.PRODUCT,
    _F.SALES,
    _F.ENGINEERING,
    _F.OPERATIONS,
    _F.EXECUTIVE,
    _F.OTHER,
)

# German compounds end in the rank word ("Einkaufsleiter", "Produktmanagerin").
_COMPOUND_ENDINGS: dict[str, str] = {
    "leiterin": "leiter",
    "leiter": "leiter",
    "leitung": "leitung",
    "managerin": "manager",
    "manager": "manager",
}

# After these words, "to"/"of"/"der"... names the boss, whose rank is not the holder's.
_SUPPORT_ROLES = frozenset(
    {
        "assistant",
        "assistante",
        "assistent",
        "assistentin",
        "asistente",
        "pa",
        "secretary",
        "sekretaer",
        "sekretaerin",
        "secretaria",
        "secretaire",
        "advisor",
        "adviser",
    }
)
_BOSS_CONNECTORS = frozenset({"to", "of", "for", "der", "des", "de", "del", "du"})

_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue"})
_NON_WORD = re.compile(r"[^a-z0-9]+")


def _build_lexicon() -> tuple[dict[tuple[str, ...], _Signal], dict[str, _Signal]]:
    groups = list(_RANK_WORDS) + [(None, f, words) for f, words in _FUNCTION_WORDS.items()]
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
    for ending, canonical in _COMPOUND_ENDINGS.items():
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
        after_support_role = words[i - 1] in _SUPPORT_ROLES and words[i] in _BOSS_CONNECTORS
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
    return next((f for f in _FUNCTION_PRIORITY if f in functions), None)
