"""`leadflow dlq list|replay`: the parked messages of the dead-letter topics, and their replay."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from leadflow.admin import migrated_sessions
from leadflow.clicommon import CliError, JsonOption, load_settings
from leadflow.output import print_json, print_table
from leadflow.progress import progress_bar, stderr_is_terminal
from shared.config import Settings

dlq_app = typer.Typer(
    help="Dead-letter queues: list parked messages, replay them.", no_args_is_help=True
)

TopicOption = Annotated[
    str | None,
    typer.Option(help="a DLQ topic, or the topic whose DLQ to use (default: all)"),
]


@contextlib.contextmanager
def _dlq_context() -> Iterator[tuple[Settings, Any]]:
    """The settings and a session factory, with the DLQ's and the broker's errors made CLI
    errors naming what to fix."""
    from kafka.errors import KafkaError

    from operations.service import DlqError
    from shared.faults import PublishError

    settings = load_settings()
    if settings.kafka_bootstrap_servers is None:
        raise CliError(
            "`leadflow dlq` needs LEADFLOW_KAFKA_BOOTSTRAP_SERVERS: the broker the services use "
            "(`leadflow up` prints its embedded broker's address at start)"
        )
    try:
        with migrated_sessions(settings) as sessions:
            yield settings, sessions
    except DlqError as exc:
        raise CliError(str(exc)) from exc
    except (KafkaError, PublishError) as exc:
        raise CliError(
            f"the broker at {settings.kafka_bootstrap_servers} could not be used: {exc}"
        ) from exc


@dlq_app.command("list")
def dlq_list(
    topic: TopicOption = None,
    limit: Annotated[int, typer.Option(help="messages per page")] = 100,
    cursor: Annotated[str | None, typer.Option(help="the position printed after `more:`")] = None,
    as_json: JsonOption = False,
) -> None:
    """Parked messages with their error and origin."""
    from operations import service

    with _dlq_context() as (settings, sessions):
        page = service.list_dlq(
            settings=settings, sessions=sessions, topic=topic, limit=limit, cursor=cursor
        )
    if as_json:
        print_json(page)
        return
    if not page["items"]:
        print("no parked messages")
    else:
        print_table(
            ["id", "state", "from", "offset", "event id", "error"],
            [
                (
                    item["id"],
                    f"replayed {item['replayed_at']}" if item["replayed_at"] else "parked",
                    f"{item['origin']['topic']}[{item['origin']['partition']}]",
                    item["origin"]["offset"],
                    item["event_id"],
                    item["error"],
                )
                for item in page["items"]
            ],
        )
    if page["next_cursor"]:
        print(f"more: --cursor {page['next_cursor']}")


@dlq_app.command("replay")
def dlq_replay(
    ids: Annotated[
        list[str] | None,
        typer.Argument(help="message ids as `leadflow dlq list` prints them"),
    ] = None,
    replay_all: Annotated[
        bool, typer.Option("--all", help="every message not replayed yet")
    ] = False,
    topic: TopicOption = None,
    as_json: JsonOption = False,
) -> None:
    """Re-publish parked messages to the topic they came from (each once)."""
    from operations import service
    from shared.events import utcnow
    from shared.kafka import AsyncProducer

    if not ids and not replay_all:
        raise CliError("`leadflow dlq replay` needs message ids or --all")
    with _dlq_context() as (settings, sessions):
        producer = AsyncProducer(settings=settings)
        try:
            with progress_bar(
                "replay", unit="messages", enabled=not as_json or stderr_is_terminal()
            ) as advance:
                report = service.replay_dlq(
                    settings=settings,
                    sessions=sessions,
                    producer=producer,
                    topic=topic,
                    ids=ids or None,
                    now=utcnow,
                    progress=advance,
                )
        finally:
            producer.close()
    if as_json:
        print_json(report.as_dict())
        return
    for skipped in report.skipped:
        print(f"skipped {skipped['id']}: {skipped['reason']}")
    print(f"replayed {len(report.replayed)} message(s)")
