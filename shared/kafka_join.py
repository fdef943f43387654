"""A fix for kafka-python 3.0.12's group join, applied once on import (by `shared.group`).

`BaseCoordinator.join_group_async` runs the JoinGroup/SyncGroup round trip as a task on the
client's IO thread and awaits it for the poll's own timeout only. When that task finishes
between two polls (the loop handled a batch, slept out an outage's backoff, or was simply not
scheduled on a loaded machine), the next poll finds it done, *throws its result away* and sends
a fresh JoinGroup. From the group's leader that starts another rebalance, so a consumer whose
join takes longer than one poll can rebalance for good: reproduced on an idle Apache Kafka 4.1
with 5 ms polls 200 ms apart (never joined in 20 s), and seen in CI as a one-member group
"rebalancing" for the whole of a test.

The first fix is one condition: a finished task is awaited (its result or error is taken up at
once) instead of replaced.

The second: a join is only taken up by a poll that sees `need_rejoin()`. When a metadata
change starts the rejoin (the leader's assignment snapshot no longer matches the metadata),
`rejoin_needed` stays False, and the leader's new assignment makes the snapshots match again
while the task runs; the next poll then sees nothing to rejoin, the finished join is never taken
up, and the member stays REBALANCING with its heartbeat off until the group expels it (seen in
CI as a group "rebalancing" for a whole test, its commits refused, and LeaveGroup answered
UnknownMemberId). So a join in flight sets `rejoin_needed` until it is taken up, as the Java
client does: its `rejoinNeededOrPending()` counts a pending join, and KAFKA-9815
(apache/kafka#8420) made a metadata-triggered rebalance set `rejoinNeeded`.

Every other line is 3.0.12's. The patch applies only to the version it was
written against; another version is left alone and logged, so an upgrade is a conscious step
(`tests/integration/shared/test_group_join.py` fails on both brokers without the fix).
"""

from __future__ import annotations

import logging
from typing import Any

import kafka
from kafka import errors as Errors
from kafka.coordinator.base import BaseCoordinator
from kafka.structs import MemberState
from kafka.util import Timer

log = logging.getLogger(__name__)

PATCHED_VERSION = "3.0.12"
_kafka_log = logging.getLogger("kafka.coordinator")


async def _join_group_async(self: Any, timeout_ms: float | None = None) -> bool:
    """kafka-python 3.0.12's `join_group_async`, awaiting a join task that already finished
    instead of sending a new JoinGroup."""
    if not self._use_group_apis:
        raise Errors.UnsupportedVersionError("Group Coordinator APIs require 0.9+ broker")
    timer = Timer(timeout_ms)
    while self.need_rejoin():
        if not await self.ensure_coordinator_ready_async(timeout_ms=timer.timeout_ms):
            return False
        # The fix: 3.0.12 tests `self._join_task is None or self._join_task.is_done` here.
        if self._join_task is None:
            if not self.rejoining:
                await self._on_join_prepare_async(
                    self._generation.generation_id,
                    self._generation.member_id,
                    timeout_ms=timer.timeout_ms,
                )
                self.rejoining = True
                _kafka_log.debug("Disabling heartbeat during join-group")
                self._disable_heartbeat()
            self.rejoin_needed = True  # the second fix (docstring): taken up by the next poll
            self._join_task = self._manager.call_soon(self._do_join_and_sync_async)
        try:
            assignment_bytes = await self._manager.wait_for(self._join_task, timer.timeout_ms)
        except Errors.KafkaTimeoutError:
            return False  # the task stays in flight; the next poll awaits it
        except (
            Errors.UnknownMemberIdError,
            Errors.RebalanceInProgressError,
            Errors.IllegalGenerationError,
            Errors.MemberIdRequiredError,
        ):
            self._join_task = None
            continue
        except Errors.RetriableError:
            self._join_task = None
            if timer.expired:
                return False
            backoff_ms = self.config["retry_backoff_ms"]
            if timer.timeout_ms is not None:
                backoff_ms = min(backoff_ms, timer.timeout_ms)
            if backoff_ms > 0:
                await self._manager._net.sleep(backoff_ms / 1000)
            continue
        except Errors.KafkaError:
            self._join_task = None
            raise
        self._join_task = None
        with self._lock:
            self.rejoining = False
            self.rejoin_needed = False
            self.state = MemberState.STABLE
            self._enable_heartbeat()
        await self._on_join_complete_async(
            self._generation.generation_id,
            self._generation.member_id,
            self._generation.protocol,
            assignment_bytes,
        )
        return True
    return True


def apply() -> bool:
    """Install the fixed join on kafka-python's coordinator (once); True when it is in place."""
    if getattr(BaseCoordinator.join_group_async, "_leadflow_fix", False):
        return True
    if kafka.__version__ != PATCHED_VERSION:
        log.warning(
            "kafka-python %s, not %s: its group join is used unpatched",
            kafka.__version__,
            PATCHED_VERSION,
        )
        return False
    _join_group_async._leadflow_fix = True  # type: ignore[attr-defined]
    BaseCoordinator.join_group_async = _join_group_async
    return True
