"""Secrets are compared in constant time: no `==` or `!=` between a signature, token, digest,
MAC or secret and another computed value anywhere in the source (hmac.compare_digest instead).

API keys are not compared at all: the database looks up the SHA-256 of the presented key, so
timing can at most reveal a prefix of a hash, which does not help to forge a 256-bit key."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("services", "shared", "leadflow")
SECRET_WORDS = frozenset(
    {
        "signature",
        "signatures",
        "sig",
        "token",
        "digest",
        "hash",
        "secret",
        "mac",
        "hmac",
        "password",
    }
)
# Comparisons that are safe for a stated reason, as "path:source".
ALLOWED = {
    # SQL, on the SHA-256 of a random 256-bit key (see the module docstring).
    "shared/auth.py:api_keys.c.key_hash == hash_key(key)",
}


def _name(node: ast.expr) -> str | None:
    """The identifier an operand ends in: `x`, `a.b.x`, `x(...)`, `x[...]`."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call | ast.Subscript):
        return _name(node.func if isinstance(node, ast.Call) else node.value)
    return None


def _secretish(node: ast.expr) -> bool:
    name = _name(node)
    if name is None or name.isupper():  # an UPPER_CASE constant is a public value
        return False
    return bool(SECRET_WORDS & set(name.lower().split("_")))


def timing_unsafe_comparisons(source: str, *, path: str) -> list[str]:
    """`path:source` of every == / != whose operands include a secret-looking computed value
    and no literal or constant."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        if not any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
            continue
        operands = [node.left, *node.comparators]
        if any(isinstance(o, ast.Constant) or (_name(o) or "x").isupper() for o in operands):
            continue
        if any(_secretish(o) for o in operands):
            found.append(f"{path}:{ast.unparse(node)}")
    return found


def test_the_checker_flags_a_signature_compared_with_equals() -> None:
    source = (
        "def ok(sig, body):\n    want_signature = mac(body)\n    return sig == want_signature\n"
    )
    assert timing_unsafe_comparisons(source, path="x.py") == ["x.py:sig == want_signature"]
    assert timing_unsafe_comparisons("a.token != b.token", path="y.py") == [
        "y.py:a.token != b.token"
    ]


def test_the_checker_leaves_constant_time_and_unrelated_comparisons_alone() -> None:
    source = (
        "hmac.compare_digest(sig, expected)\n"
        "token is None\n"
        "version != SIGNATURE_VERSION\n"
        "assignment_id == other_id\n"
        "len(token) == 3\n"
    )
    assert timing_unsafe_comparisons(source, path="z.py") == []


def test_no_secret_is_compared_with_equals_in_the_source() -> None:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            found += timing_unsafe_comparisons(path.read_text(), path=rel)
    assert [f for f in found if f not in ALLOWED] == []
    assert set(found) >= ALLOWED, "an allowed comparison is gone: drop it from ALLOWED"
