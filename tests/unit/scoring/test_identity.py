"""Who a touch belongs to: merges of stand-ins, and two people never made one."""

from __future__ import annotations

from services.scoring.domain.identity import Known, Person, apart, resolve


def _lead(lead_id: str, email: str | None = None, *users: str) -> Known:
    return Known(lead_id, Person(email, frozenset(users)))


def test_two_platform_users_sharing_a_browser_are_two_people() -> None:
    first = _lead("L1", None, "segment:u1")
    decided = resolve(
        touch=Person(None, frozenset({"segment:u2"})), by_email=None, candidates=[first]
    )
    assert decided.target is None, "the second user gets a lead of their own"
    assert decided.merge == ()
    assert decided.refused == (
        ("L1", "each has its own platform user id (segment:u1, segment:u2)"),
    )


def test_a_stand_in_merges_into_the_user_it_turns_out_to_be() -> None:
    anonymous = _lead("A")
    user = _lead("U", None, "segment:u1")
    decided = resolve(
        touch=Person(None, frozenset({"segment:u1"})), by_email=None, candidates=[anonymous, user]
    )
    assert (decided.target, decided.merge, decided.refused) == ("U", ("A",), ())


def test_a_known_person_is_preferred_and_takes_the_stand_ins() -> None:
    known = _lead("K", "ana@acme.example")
    anonymous = _lead("A")
    decided = resolve(touch=Person(), by_email=None, candidates=[anonymous, known])
    assert (decided.target, decided.merge) == ("K", ("A",))


def test_an_email_lead_never_takes_in_a_stand_in_of_another_platform_user() -> None:
    by_email = _lead("E", "ana@acme.example", "segment:u1")
    other_user = _lead("O", None, "segment:u2")
    decided = resolve(touch=Person("ana@acme.example"), by_email=by_email, candidates=[other_user])
    assert decided.target == "E" and decided.merge == ()
    assert [lead for lead, _ in decided.refused] == ["O"]


def test_a_new_email_on_a_browser_someone_else_used_is_a_new_person() -> None:
    someone = _lead("S", "bo@acme.example")
    decided = resolve(touch=Person("ana@acme.example"), by_email=None, candidates=[someone])
    assert decided.target is None
    assert decided.refused == (("S", "each has its own email address"),)


def test_two_stand_ins_that_are_different_users_are_not_both_merged() -> None:
    u1, u2 = _lead("U1", None, "segment:u1"), _lead("U2", None, "segment:u2")
    decided = resolve(touch=Person("ana@acme.example"), by_email=None, candidates=[u1, u2])
    assert decided.target == "U1"
    assert decided.merge == () and [lead for lead, _ in decided.refused] == ["U2"]


def test_leads_sharing_a_user_id_or_lacking_ids_may_be_one() -> None:
    assert apart(Person(None, frozenset({"a", "b"})), Person(None, frozenset({"b"}))) is None
    assert apart(Person("x@y.example"), Person(None, frozenset({"u"}))) is None
