"""The lead list's `trait=key:value` filters, as the query string gives them."""

from __future__ import annotations

import pytest

from views.leads import MAX_TRAIT_FILTERS, trait_filters


def test_trait_filters_split_at_the_first_colon() -> None:
    assert trait_filters(["plan:enterprise", "Seats Requested:25", "url:https://a.example"]) == (
        ("plan", "enterprise"),
        ("Seats Requested", "25"),
        ("url", "https://a.example"),
    )


def test_an_empty_value_is_a_filter_on_an_empty_text() -> None:
    assert trait_filters(["nickname:"]) == (("nickname", ""),)


@pytest.mark.parametrize("raw", ["plan", ":pro", "a/b:1", "plan:" + "x" * 501, "plan:a\x00b"])
def test_a_bad_trait_filter_is_refused_saying_what_is_wrong(raw: str) -> None:
    with pytest.raises(ValueError, match=r"key:value|characters|NUL"):
        trait_filters([raw])


def test_at_most_max_trait_filters() -> None:
    with pytest.raises(ValueError, match=f"at most {MAX_TRAIT_FILTERS} trait filters"):
        trait_filters([f"t{i}:1" for i in range(MAX_TRAIT_FILTERS + 1)])
