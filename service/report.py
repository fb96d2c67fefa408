"""Alert burden, as a chief medical information officer asks about it (issue 13).

`GET /ops/report` and `fhir-alerts report` both return `load_report`: alerts (concern
episodes) per priority and per finding, time to acknowledge (median and 90th percentile, in
seconds) per priority, escalations, dismiss reasons, and alerts per 1,000 patients evaluated.

Definitions, so the figures can be checked by hand:
- An alert is a concern episode (one Flag); its priority is the episode's current (or last)
  priority, its findings the finding codes it carries (an alert with two findings counts for
  both).
- Time to acknowledge: for each alert request the episode made (escalations excluded), from its
  `authoredOn` to the first stored version in which it is `completed`; grouped by the request's
  priority. Requests never completed (open, revoked, superseded) are counted as unacknowledged.
  The median is the usual one; p90 is the nearest-rank 90th percentile.
- Escalations: the escalation requests made (workers/alerts/escalation.py), by their priority.
- Dismiss reasons: completed requests carrying a dismiss-reason `statusReason` code.
- Patients evaluated: patients the worker has evaluated at least once.

`build_report` is pure (tests check it against a seeded data set); `load_report` reads the
store. No patient data: counts and durations only.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contract import DISMISS_REASONS, ESCALATION_IDENTIFIER_SYSTEM, FINDING_CODES, PRIORITY_ORDER
from contract.deadlines import instant
from service.alert_changes import dismiss_reason
from service.store.models import Episode, PatientLock, Resource, ResourceToken, ResourceVersion


def _p90(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def build_report(
    episodes: Iterable[Mapping[str, Any]],
    requests: Mapping[str, tuple[Mapping[str, Any], datetime | None]],
    escalations: Iterable[Mapping[str, Any]],
    patients_evaluated: int,
) -> dict[str, Any]:
    """`episodes`: stored episode states; `requests`: alert request id → (current body, when it
    was first stored as completed, or None); `escalations`: escalation request bodies."""
    states = list(episodes)
    by_priority = Counter(str(s.get("priority")) for s in states)
    by_finding = Counter(code for s in states for code in s.get("finding_codes") or ())
    waits: dict[str, list[float]] = {p: [] for p in PRIORITY_ORDER}
    unacknowledged: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for state in states:
        for record in state.get("communications") or ():
            found = requests.get(str(record.get("id")))
            priority = str(record.get("priority"))
            if found is None:
                continue
            body, completed_at = found
            authored = instant(body.get("authoredOn"))
            if completed_at is None or authored is None:
                unacknowledged[priority] += 1
                continue
            waits.setdefault(priority, []).append(
                max(0.0, (completed_at - authored).total_seconds())
            )
            reason = dismiss_reason(body)
            if reason:
                reasons[reason] += 1
    escalated = Counter(str(e.get("priority")) for e in escalations)
    alerts = len(states)
    return {
        "alerts": {
            "total": alerts,
            "open": sum(1 for s in states if s.get("status") == "open"),
            "by_priority": {p: by_priority.get(p, 0) for p in PRIORITY_ORDER},
            "by_finding": {f: by_finding.get(f, 0) for f in FINDING_CODES},
        },
        "time_to_acknowledge_seconds": {
            p: {
                "acknowledged": len(waits[p]),
                "unacknowledged": unacknowledged.get(p, 0),
                "median": statistics.median(waits[p]) if waits[p] else None,
                "p90": _p90(waits[p]) if waits[p] else None,
            }
            for p in PRIORITY_ORDER
        },
        "escalations": {
            "total": sum(escalated.values()),
            "by_priority": {p: escalated.get(p, 0) for p in PRIORITY_ORDER},
        },
        "dismiss_reasons": {r: reasons.get(r, 0) for r in DISMISS_REASONS},
        "patients_evaluated": patients_evaluated,
        "alerts_per_1000_patients_evaluated": (
            round(1000 * alerts / patients_evaluated, 1) if patients_evaluated else None
        ),
    }


def _first_completed(session: Session, ids: Sequence[str]) -> dict[str, datetime]:
    """When each request was first stored as completed (naive UTC in the store → aware)."""
    from datetime import UTC

    found: dict[str, datetime] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        rows = session.execute(
            select(ResourceVersion.id, ResourceVersion.last_updated, ResourceVersion.content)
            .where(
                ResourceVersion.type == "CommunicationRequest",
                ResourceVersion.id.in_(chunk),
                ResourceVersion.deleted.is_(False),
            )
            .order_by(ResourceVersion.id, ResourceVersion.version_id)
        )
        for rid, when, content in rows:
            if rid in found or content is None:
                continue
            if orjson.loads(content).get("status") == "completed":
                found[rid] = when.replace(tzinfo=UTC) if when.tzinfo is None else when
    return found


def load_report(session: Session) -> dict[str, Any]:
    states = [orjson.loads(s) for s in session.scalars(select(Episode.state))]
    ids = sorted({str(c["id"]) for s in states for c in s.get("communications") or ()})
    current: dict[str, Mapping[str, Any]] = {}
    for start in range(0, len(ids), 500):
        rows = session.execute(
            select(Resource.id, Resource.content).where(
                Resource.type == "CommunicationRequest",
                Resource.id.in_(ids[start : start + 500]),
                Resource.deleted.is_(False),
            )
        )
        current.update({rid: orjson.loads(content) for rid, content in rows})
    completed = _first_completed(session, sorted(current))
    requests = {rid: (body, completed.get(rid)) for rid, body in current.items()}
    escalation_ids = session.scalars(
        select(ResourceToken.id)
        .where(
            ResourceToken.type == "CommunicationRequest",
            ResourceToken.param == "identifier",
            ResourceToken.system == ESCALATION_IDENTIFIER_SYSTEM,
        )
        .distinct()
    )
    escalations = [
        orjson.loads(content)
        for content in session.scalars(
            select(Resource.content).where(
                Resource.type == "CommunicationRequest",
                Resource.id.in_(list(escalation_ids)),
                Resource.deleted.is_(False),
            )
        )
    ]
    evaluated = session.scalar(
        select(func.count()).select_from(PatientLock).where(PatientLock.evaluated_at.is_not(None))
    )
    return build_report(states, requests, escalations, int(evaluated or 0))
