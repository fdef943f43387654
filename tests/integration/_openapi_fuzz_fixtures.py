"""Shared by the OpenAPI fuzz tests: the settings with the vendors' secrets, the bounds of the
generated requests, the checks every response gets, and running cases into a report."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import hypothesis
import pytest
from hypothesis import HealthCheck, Phase
from hypothesis.strategies import SearchStrategy
from pydantic import SecretStr
from schemathesis import Case
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.schemas import APIOperation, BaseSchema

from shared.config import Settings
from tests.conftest import Broker, session_timeout_ms, unique_settings

# Generated requests per operation and generation mode (valid data, invalid data), and per
# operation aimed at the seeded resources: bounded, so the fuzz runs in well under 2 minutes.
# LEADFLOW_FUZZ_EXAMPLES=200 makes a deeper run by hand, drawing new requests each time; the
# suite's run sends the same ones every time, so a failure there reproduces.
DEEP = "LEADFLOW_FUZZ_EXAMPLES" in os.environ
FUZZ_EXAMPLES = int(os.environ.get("LEADFLOW_FUZZ_EXAMPLES", "12"))
SEEDED_EXAMPLES = max(6, FUZZ_EXAMPLES // 2)
AUTH_EXAMPLES = 3

HYPOTHESIS = hypothesis.settings(
    deadline=None,
    database=None,  # nothing saved between runs, nothing replayed from an earlier one
    derandomize=not DEEP,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: it can multiply the run time
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)

# What every response is checked against: no 5xx, and the status, content type, headers and
# body its operation documents, and (`ignored_auth`) that an operation declaring the ApiKey
# security scheme refuses a request without a key or with a bad one. Left out, as questions of
# API design rather than bugs:
# `negative_data_rejection` (FastAPI parses leniently: a time may be sent as Unix seconds, a
# boolean as "yes", an unknown query parameter is ignored; invalid data is still fuzzed and must
# get no 5xx and a documented answer), `positive_data_acceptance` (a valid request for a lead or
# team that does not exist is a 404, as it must be), and the stateful and method checks
# (`use_after_free`, `ensure_resource_availability`, `unsupported_method`): the schema declares
# no links, and the second pass tests authentication route by route.
CHECKS = [
    ignored_auth,
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

VENDOR_SECRETS = {
    "segment_shared_secret": "fuzz-segment-secret",
    "shopify_webhook_secret": "fuzz-shopify-secret",
    "hubspot_client_secret": "fuzz-hubspot-secret",
}
HUBSPOT_URL = "http://testserver/v1/sources/hubspot"


@pytest.fixture
def settings(broker: Broker, clean_db: str) -> Settings:
    """The suite's test settings, plus secrets for the vendor webhooks so the fuzz can sign."""
    return unique_settings(
        bootstrap=broker.bootstrap_servers,
        database_url=clean_db,
        kafka_session_timeout_ms=session_timeout_ms(broker.kind),
        hubspot_webhook_url=HUBSPOT_URL,
        **{name: SecretStr(value) for name, value in VENDOR_SECRETS.items()},
    )


def operations(schema: BaseSchema) -> list[APIOperation]:
    """Every operation of the schema; fails on one schemathesis cannot read."""
    return [result.ok() for result in schema.get_all_operations()]


@dataclass
class FuzzReport:
    """What a pass sent and what failed, per operation label."""

    examples: Counter[str] = field(default_factory=Counter)
    valid: set[str] = field(default_factory=set)  # operations sent at least one valid request
    failures: dict[str, list[str]] = field(default_factory=dict)

    def failed(self, label: str, error: BaseException) -> None:
        """Record a failure of the operation `label`."""
        notes = "".join(f"\n{note}" for note in getattr(error, "__notes__", ()))
        self.failures.setdefault(label, []).append(f"{type(error).__name__}: {error}{notes}")

    def summary(self) -> str:
        """Every failure, grouped by operation."""
        return "\n\n".join(
            f"== {label}\n" + "\n".join(errors) for label, errors in sorted(self.failures.items())
        )


def run_cases(
    strategy: SearchStrategy[Case],
    *,
    max_examples: int,
    label: str,
    report: FuzzReport,
    send: Callable[[Case], None],
) -> None:
    """Send up to `max_examples` cases drawn from `strategy`; failures go to `report`."""

    @hypothesis.settings(HYPOTHESIS, max_examples=max_examples)
    @hypothesis.given(case=strategy)
    def each(case: Case) -> None:
        report.examples[label] += 1
        if case.meta is None or case.meta.generation.mode.is_positive:
            report.valid.add(label)
        send(case)

    try:
        each()
    except hypothesis.errors.Unsatisfiable:
        pass  # nothing to generate (e.g. invalid data for a route without parameters)
    except (Exception, BaseExceptionGroup) as exc:  # schemathesis's failures are a group
        report.failed(label, exc)
