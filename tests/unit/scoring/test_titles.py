"""Job-title normalisation: seniority and function from real-world titles in four languages."""

from __future__ import annotations

import pytest

from services.scoring.domain.titles import (
    SENIORITY_ORDER,
    JobFunction,
    Seniority,
    Title,
    normalize_title,
)

C = Seniority.C_LEVEL
VP = Seniority.VP
DIR = Seniority.DIRECTOR
MGR = Seniority.MANAGER
IC = Seniority.INDIVIDUAL

F = JobFunction

TITLES: list[tuple[str, Seniority, JobFunction | None]] = [
    # C-suite acronyms, each with its own function.
    ("CEO", C, F.EXECUTIVE),
    ("CTO", C, F.IT),
    ("CIO", C, F.IT),
    ("CISO", C, F.IT),
    ("CFO", C, F.FINANCE),
    ("COO", C, F.OPERATIONS),
    ("CMO", C, F.MARKETING),
    ("CPO", C, F.PRODUCT),
    ("CRO", C, F.SALES),
    ("CHRO", C, F.HR),
    # Spelled-out chiefs.
    ("Chief Executive Officer", C, F.EXECUTIVE),
    ("Chief Technology Officer", C, F.IT),
    ("Chief Information Security Officer", C, F.IT),
    ("Chief Procurement Officer", C, F.PURCHASING),
    ("Chief Product Officer", C, F.PRODUCT),
    ("Chief Revenue Officer", C, F.SALES),
    ("Chief Happiness Officer", C, None),
    ("EVP & CFO", C, F.FINANCE),
    ("Co-Founder & CTO", C, F.IT),
    # Owners, founders and managing directors run the company; backlog owners do not.
    ("Owner", C, F.EXECUTIVE),
    ("Business Owner", C, F.EXECUTIVE),
    ("Founder", C, F.EXECUTIVE),
    ("Co-Founder", C, F.EXECUTIVE),
    ("President", C, F.EXECUTIVE),
    ("Managing Director", C, F.EXECUTIVE),
    ("Product Owner", IC, F.PRODUCT),
    ("Process Owner", IC, None),
    # Vice presidents and heads.
    ("Vice President of Sales", VP, F.SALES),
    ("Senior Vice President, Marketing", VP, F.MARKETING),
    ("SVP Finance", VP, F.FINANCE),
    ("VP, Ops", VP, F.OPERATIONS),
    ("VP Operations", VP, F.OPERATIONS),
    ("Head of IT", VP, F.IT),
    ("Head of R&D", VP, F.ENGINEERING),
    ("Head of People", VP, F.HR),
    ("Head of Maintenance Engineering", VP, F.MAINTENANCE),
    ("Head Chef", VP, F.OTHER),
    ("Chief of Staff", VP, F.EXECUTIVE),
    ("General Counsel", VP, F.LEGAL),
    # Directors.
    ("Director of First Impressions", IC, F.OTHER),
    ("IT Director", DIR, F.IT),
    ("Director of Information Technology", DIR, F.IT),
    ("VP of Technology", VP, F.ENGINEERING),
    ("Senior Director, Supply Chain", DIR, F.OPERATIONS),
    ("Environment, Health & Safety Director", DIR, F.EHS),
    ("General Manager", DIR, F.EXECUTIVE),
    ("Assistant Vice President, Treasury", DIR, F.FINANCE),
    ("Account Director", DIR, F.SALES),
    # Managers.
    ("Sr. Procurement Manager", MGR, F.PURCHASING),
    ("IT Procurement Manager", MGR, F.PURCHASING),
    ("Engineering Manager", MGR, F.ENGINEERING),
    ("Plant Manager", MGR, F.OPERATIONS),
    ("Facilities Manager", MGR, F.MAINTENANCE),
    ("HSE Manager", MGR, F.EHS),
    ("Product Marketing Manager", MGR, F.MARKETING),
    ("Account Manager", MGR, F.SALES),
    ("Key Account Manager", MGR, F.SALES),
    ("Assistant Manager", MGR, None),
    ("Assistant Director of Finance", MGR, F.FINANCE),
    ("Team Lead", MGR, None),
    ("Team Leader, Customer Support", MGR, F.OTHER),
    ("Production Supervisor", MGR, F.OPERATIONS),
    ("Compliance Manager", MGR, F.LEGAL),
    # Individual contributors, including senior-sounding ones.
    ("Senior Software Engineer", IC, F.ENGINEERING),
    ("Sr. Engineer", IC, F.ENGINEERING),
    ("Lead Engineer", IC, F.ENGINEERING),
    ("Principal Engineer", IC, F.ENGINEERING),
    ("Site Reliability Engineer", IC, F.IT),
    ("Reliability Engineer", IC, F.MAINTENANCE),
    ("Network Engineer", IC, F.IT),
    ("Sales Engineer", IC, F.SALES),
    ("Purchasing Agent", IC, F.PURCHASING),
    ("Buyer", IC, F.PURCHASING),
    ("Account Executive", IC, F.SALES),
    ("Business Development Representative", IC, F.SALES),
    ("Financial Controller", IC, F.FINANCE),
    ("Recruiter", IC, F.HR),
    ("Safety Officer", IC, F.EHS),
    ("Maintenance Technician", IC, F.MAINTENANCE),
    ("Paralegal", IC, F.LEGAL),
    ("Executive Assistant", IC, F.EXECUTIVE),
    ("Assistant to the CEO", IC, F.EXECUTIVE),
    ("Executive Assistant to the Managing Director", IC, F.EXECUTIVE),
    ("Assistant to the CFO", IC, F.FINANCE),
    ("Intern", IC, None),
    # German.
    ("Geschäftsführer", C, F.EXECUTIVE),
    ("Geschäftsführerin", C, F.EXECUTIVE),
    ("Kaufmännischer Geschäftsführer", C, F.FINANCE),
    ("Vorstand", C, F.EXECUTIVE),
    ("Inhaber", C, F.EXECUTIVE),
    ("Einkaufsleiter", DIR, F.PURCHASING),
    ("Leiterin Einkauf", DIR, F.PURCHASING),
    ("Abteilungsleiter", DIR, None),
    ("IT-Leiter", DIR, F.IT),
    ("Personalleiter", DIR, F.HR),
    ("Werkleiter", DIR, F.OPERATIONS),
    ("Werksleiter", DIR, F.OPERATIONS),
    ("Leiter Instandhaltung", DIR, F.MAINTENANCE),
    ("Vertriebsleiterin", DIR, F.SALES),
    ("Teamleiter", MGR, None),
    ("Teamleiterin Instandhaltung", MGR, F.MAINTENANCE),
    ("Einkäufer", IC, F.PURCHASING),
    ("Strategischer Einkäufer", IC, F.PURCHASING),
    ("Fachkraft für Arbeitssicherheit", IC, F.EHS),
    ("Sicherheitsfachkraft", IC, F.EHS),
    ("Assistentin der Geschäftsführung", IC, F.EXECUTIVE),
    ("Werkstudent", IC, None),
    # Spanish and French.
    ("Director de Compras", DIR, F.PURCHASING),
    ("Directora de Recursos Humanos", DIR, F.HR),
    ("Directeur Informatique", DIR, F.IT),
    ("Directeur Général", C, F.EXECUTIVE),
    ("Responsable achats", MGR, F.PURCHASING),
    ("Jefe de mantenimiento", MGR, F.MAINTENANCE),
    ("Gerente de Ventas", MGR, F.SALES),
    ("Ingeniero de Producción", IC, F.ENGINEERING),
]


@pytest.mark.parametrize(("raw", "seniority", "function"), TITLES)
def test_title_reads_as_the_expected_seniority_and_function(
    raw: str, seniority: Seniority, function: JobFunction | None
) -> None:
    title = normalize_title(raw)
    assert (title.seniority, title.function) == (seniority, function)


def test_the_title_table_is_large_and_has_no_duplicates() -> None:
    raws = [raw for raw, _, _ in TITLES]
    assert len(raws) >= 60
    assert len(set(raws)) == len(raws)


@pytest.mark.parametrize("raw", [None, "", "   ", "--", " . "])
def test_no_title_has_no_seniority_and_no_function(raw: str | None) -> None:
    assert normalize_title(raw) == Title(raw=raw or "", seniority=None, function=None)


def test_an_unrecognised_title_is_an_individual_with_no_function() -> None:
    assert normalize_title("Wizard") == Title(raw="Wizard", seniority=IC, function=None)


def test_the_raw_title_is_kept_as_written() -> None:
    assert normalize_title("  VP, Sales!  ").raw == "  VP, Sales!  "


@pytest.mark.parametrize(
    ("raw", "seniority"),
    [
        ("Director", DIR),  # holds "cto"
        ("Doctor", IC),  # holds "cto"
        ("Coordinator", IC),  # starts with "coo"
        ("Headquarters Receptionist", IC),  # starts with "head"
        ("Co-Ownership Analyst", IC),  # holds "owner"
        ("Presidential Scholar", IC),  # starts with "president"
    ],
)
def test_rank_words_only_match_whole_words(raw: str, seniority: Seniority) -> None:
    title = normalize_title(raw)
    assert title.seniority == seniority
    assert title.function not in {F.IT, F.OPERATIONS, F.EXECUTIVE}


def test_vice_president_is_a_vp_not_a_president() -> None:
    assert normalize_title("Vice-President").seniority == VP
    assert normalize_title("President").seniority == C


@pytest.mark.parametrize(
    "variant",
    [
        "vice president sales",
        "VICE PRESIDENT SALES",
        "Vice-President, Sales.",
        "  vICE   pReSiDeNt / SALES!! ",
        "V.P. Sales",
        "VP - Sales",
    ],
)
def test_matching_ignores_case_and_punctuation(variant: str) -> None:
    title = normalize_title(variant)
    assert (title.seniority, title.function) == (VP, F.SALES)


@pytest.mark.parametrize("variant", ["C.E.O.", "c-e-o", "ceo", "Ceo"])
def test_dotted_acronyms_read_like_plain_ones(variant: str) -> None:
    title = normalize_title(variant)
    assert (title.seniority, title.function) == (C, F.EXECUTIVE)


@pytest.mark.parametrize("variant", ["Geschaeftsfuehrer", "GESCHÄFTSFÜHRER", "geschäftsführer"])
def test_umlauts_and_their_ascii_spelling_read_the_same(variant: str) -> None:
    assert normalize_title(variant).seniority == C


def test_information_technology_is_it_while_technology_alone_is_engineering() -> None:
    assert normalize_title("Information Technology Manager").function == F.IT
    assert normalize_title("Technology Manager").function == F.ENGINEERING


def test_the_more_specific_function_wins_whatever_the_word_order() -> None:
    assert normalize_title("Procurement IT Manager").function == F.PURCHASING
    assert normalize_title("IT Procurement Manager").function == F.PURCHASING
    assert normalize_title("Engineering Maintenance Lead").function == F.MAINTENANCE


def test_a_support_role_takes_its_function_from_the_boss_but_not_its_rank() -> None:
    title = normalize_title("Advisor to the VP of Sales")
    assert (title.seniority, title.function) == (IC, F.SALES)


def test_go_to_market_is_not_read_as_reporting_to_someone() -> None:
    assert normalize_title("Head of Go-To-Market").seniority == VP


@pytest.mark.parametrize("seniority", list(Seniority))
def test_decision_makers_are_c_level_vp_and_director_only(seniority: Seniority) -> None:
    title = Title(raw="x", seniority=seniority, function=None)
    assert title.decision_maker is (seniority in {C, VP, DIR})


def test_no_title_is_not_a_decision_maker() -> None:
    assert normalize_title(None).decision_maker is False


def test_decision_maker_follows_the_normalised_title() -> None:
    assert normalize_title("Einkaufsleiter").decision_maker is True
    assert normalize_title("Senior Buyer").decision_maker is False


def test_seniority_order_runs_from_highest_to_lowest() -> None:
    assert [s.value for s in SENIORITY_ORDER] == [
        "c_level",
        "vp",
        "director",
        "manager",
        "individual",
    ]


def test_enum_values_are_the_stable_strings_other_services_store() -> None:
    assert {f.value for f in JobFunction} == {
        "executive",
        "it",
        "engineering",
        "operations",
        "finance",
        "purchasing",
        "hr",
        "ehs",
        "maintenance",
        "marketing",
        "sales",
        "product",
        "legal",
        "other",
    }


def test_title_is_immutable() -> None:
    title = normalize_title("CEO")
    with pytest.raises(AttributeError):
        title.seniority = IC  # type: ignore[misc]
