"""Uploading the device's log to the server's prediction log, resumably and idempotently.

``POST /v1/edge/{deployment}/predictions`` takes up to ``batch_size`` records at a time with
the device's id and its count of dropped records. After each batch the server acknowledged,
the log's cursor moves past it (atomically, on disk): an interrupted sync resumes from there.
A batch whose answer was lost is sent again; the server keys predictions by their ids, so it
keeps one copy. No answer, or a 5xx/429, is retried ``retries`` times with doubling pauses;
any other refusal stops the sync with the server's message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from ._errors import SyncFailed
from ._http import request
from ._log import LocalLog

__all__ = ["SyncReport", "sync_log"]


@dataclass
class SyncReport:
    """What one sync did."""

    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    batches: int = 0
    retries: int = 0
    pending: int = 0


def sync_log(
    log: LocalLog,
    url: str,
    token: str | None,
    *,
    deployment: str,
    device: str,
    batch_size: int = 500,
    retries: int = 3,
    timeout_s: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> SyncReport:
    """Upload every record not yet acknowledged; returns what happened.

    Raises :class:`SyncFailed` when the server refuses a batch, or does not answer after the
    retries; what it acknowledged before stays acknowledged.
    """
    endpoint = f"{url.rstrip('/')}/v1/edge/{quote(deployment, safe='')}/predictions"
    report = SyncReport()
    while True:
        records, cursor = log.pending(batch_size)
        if not records:
            log.acknowledge(cursor)  # past damaged lines and finished segments
            break
        body = {"device": device, "dropped": log.dropped, "records": records}
        pause = 0.5
        for attempt in range(retries + 1):
            answer = request("POST", endpoint, token=token, body=body, timeout_s=timeout_s)
            if answer.status is not None and 200 <= answer.status < 300:
                break
            if not answer.retryable or attempt == retries:
                report.pending = log.pending_count()
                raise SyncFailed(
                    f"uploading {len(records)} predictions to {endpoint} failed "
                    f"({answer.message}); {report.accepted + report.duplicates} were synced, "
                    f"{report.pending} wait for the next sync"
                )
            report.retries += 1
            sleep(pause)
            pause *= 2
        payload = answer.json() or {}
        log.acknowledge(cursor)
        report.batches += 1
        report.sent += len(records)
        report.accepted += int(payload.get("accepted", 0))
        report.duplicates += int(payload.get("duplicates", 0))
    return report
