"""The rule engine's input for the patients of one evaluation (one or many) in one query.

Conditions are all loaded (eligibility looks at the whole history); Observations only from each
patient's own look-back (applied in Python, since replayed patients have their own clocks),
plus undated ones, so an evaluation's cost depends on its patients' recent data, not on the
size of the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from service.store.models import Resource

_T: Table = Resource.__table__  # type: ignore[assignment]
_R = _T.c


def load_records_many(
    session: Session,
    observations_since: Mapping[str, datetime | None],
    *,
    types: Iterable[str],
) -> dict[str, list[dict[str, Any]]]:
    """Per patient (the keys of `observations_since`): its current, non-deleted resources of
    `types`; Observations only from that patient's `observations_since` on, plus undated ones
    (None: all). Rows come in the patient/type index order."""
    ids = sorted(observations_since)
    out: dict[str, list[dict[str, Any]]] = {pid: [] for pid in ids}
    if not ids:
        return out
    stmt = select(_R.patient_id, _R.type, _R.date_end, _R.content).where(
        _R.patient_id.in_(ids), _R.type.in_(list(types)), _R.deleted.is_(False)
    )
    cutoffs = [s for s in observations_since.values() if s is not None]
    if cutoffs and len(cutoffs) == len(ids):
        earliest = min(cutoffs)
        stmt = stmt.where(
            (_R.type != "Observation") | (_R.date_end.is_(None)) | (_R.date_end >= earliest)
        )
    loads = orjson.loads
    for patient_id, rtype, date_end, content in session.connection().execute(stmt).all():
        since = observations_since[patient_id]
        if (
            rtype == "Observation"
            and since is not None
            and date_end is not None
            and date_end < since
        ):
            continue  # before this patient's look-back (the query used the batch's earliest)
        out[patient_id].append(loads(content))
    return out
