"""The lexicon job titles are read with (titles.py): the seniority levels and job functions,
and the English, German, Spanish and French words and phrases that signal them. Data only."""

from __future__ import annotations

from enum import StrEnum


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


_S = Seniority
_F = JobFunction

# Phrases that say how senior someone is (and sometimes what they do). Deliberate choices:
# "Chief of Staff" runs the CEO's office without being an officer, so it ranks with the VPs;
# "Head X" is always a head, so "Head Chef" is a VP (of the kitchen, function OTHER);
# "Product Owner" and its kin own a backlog, not a business, so they carry no rank; titles
# with "manager" (Account Manager, Product Manager) are managers whether or not they lead a team.
RANK_WORDS: tuple[tuple[Seniority | None, JobFunction | None, tuple[str, ...]], ...] = (
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

FUNCTION_WORDS: dict[JobFunction, tuple[str, ...]] = {
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
FUNCTION_PRIORITY: tuple[JobFunction, ...] = (
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
COMPOUND_ENDINGS: dict[str, str] = {
    "leiterin": "leiter",
    "leiter": "leiter",
    "leitung": "leitung",
    "managerin": "manager",
    "manager": "manager",
}

# After these words, "to"/"of"/"der"... names the boss, whose rank is not the holder's.
SUPPORT_ROLES = frozenset(
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
BOSS_CONNECTORS = frozenset({"to", "of", "for", "der", "des", "de", "del", "du"})
