"""No module of leadflow is past 500 lines: past that it is two modules (the developers' guide)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("leadflow", "operations", "views", "services", "shared", "migrations", "bench")
LIMIT = 500


def test_no_module_is_past_five_hundred_lines() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
    }
    assert len(sizes) > 50, "the packages were not found"
    assert {p: n for p, n in sizes.items() if n > LIMIT} == {}
