"""Sign-in rate limit: failed attempts counted per user name and per client address, in the
database (table `sign_in_failures`, migration 0003) so every API process counts together.

A key that reaches its limit within the window is locked out for a while; the lockout expires
by itself (no administrator needed), and a locked key is refused before its password is even
checked, so guessing stops paying. A successful sign-in clears the user's count (not the
address's: one good password must not reset a spray from that address).

`decide` and `after_failure` are pure; the functions below them only read and write rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from service.store.models import SignInFailure


@dataclass(frozen=True, slots=True)
class Limit:
    max_failures: int
    window: timedelta
    lockout: timedelta


PER_USER = Limit(5, timedelta(minutes=15), timedelta(minutes=15))
PER_ADDRESS = Limit(20, timedelta(minutes=15), timedelta(minutes=15))


@dataclass(frozen=True, slots=True)
class Counter:
    failures: int
    window_start: datetime
    locked_until: datetime | None


def locked_seconds(counter: Counter | None, now: datetime) -> int:
    """Seconds left on a lockout (0 when none or expired)."""
    if counter is None or counter.locked_until is None or counter.locked_until <= now:
        return 0
    return max(1, math.ceil((counter.locked_until - now).total_seconds()))


def after_failure(counter: Counter | None, limit: Limit, now: datetime) -> Counter:
    """The counter after one more failure: a new window when the old one (or an expired
    lockout) is over; locked when the limit is reached."""
    expired_lock = (
        counter is not None and counter.locked_until is not None and (counter.locked_until <= now)
    )
    if counter is None or expired_lock or now - counter.window_start >= limit.window:
        counter = Counter(0, now, None)
    failures = counter.failures + 1
    locked = now + limit.lockout if failures >= limit.max_failures else counter.locked_until
    return Counter(failures, counter.window_start, locked)


def user_key(username: str) -> str:
    return "user:" + username[:200]


def address_key(address: str) -> str:
    return "addr:" + address[:200]


def _read(session: Session, key: str, *, lock: bool) -> Counter | None:
    stmt = select(SignInFailure).where(SignInFailure.key == key)
    if lock:
        stmt = stmt.with_for_update()
    row = session.scalars(stmt).first()
    if row is None:
        return None
    return Counter(row.failures, row.window_start, row.locked_until)


def retry_after(session: Session, keys: list[str], now: datetime) -> int:
    """The longest lockout left among these keys (0: sign-in may be tried)."""
    return max((locked_seconds(_read(session, k, lock=False), now) for k in keys), default=0)


def _locked_row(session: Session, key: str, now: datetime) -> SignInFailure:
    """The key's row, created if missing without racing another process, and locked until the
    transaction ends (so concurrent attempts on one key are counted one after the other)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(SignInFailure)
        .values(key=key, failures=0, window_start=now, locked_until=None)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    row = session.scalars(
        select(SignInFailure).where(SignInFailure.key == key).with_for_update()
    ).one()
    session.refresh(row)
    return row


def _count(row: SignInFailure, limit: Limit, now: datetime) -> int:
    current = Counter(row.failures, row.window_start, row.locked_until)
    counter = after_failure(current, limit, now)
    row.failures, row.window_start = counter.failures, counter.window_start
    row.locked_until = counter.locked_until
    return locked_seconds(counter, now)


def claim_attempt(session: Session, key: str, limit: Limit, now: datetime) -> int:
    """Before a password is checked: the seconds the key is locked for (then nothing is
    counted and the password must not be checked), or 0 after counting this attempt as a
    failure in advance (`clear` it on success). Counting first means a burst of parallel
    guesses gets `max_failures` password checks, not as many as arrive before the first
    failure is written."""
    row = _locked_row(session, key, now)
    wait = locked_seconds(Counter(row.failures, row.window_start, row.locked_until), now)
    if wait:
        return wait
    _count(row, limit, now)
    return 0


def record_failure(session: Session, limits: dict[str, Limit], now: datetime) -> int:
    """Count a failure against each key; the longest lockout now running, in seconds."""
    longest = 0
    for key, limit in sorted(limits.items()):
        longest = max(longest, _count(_locked_row(session, key, now), limit, now))
    purge(session, now, older_than=timedelta(days=1))
    return longest


def clear(session: Session, key: str) -> None:
    session.execute(delete(SignInFailure).where(SignInFailure.key == key))


def purge(session: Session, now: datetime, *, older_than: timedelta) -> None:
    """Forget counters whose window and lockout are long over."""
    cutoff = now - older_than
    session.execute(
        delete(SignInFailure).where(
            SignInFailure.window_start < cutoff,
            (SignInFailure.locked_until.is_(None)) | (SignInFailure.locked_until < now),
        )
    )
