"""FHIR R4 Subscriptions (rest-hook): push delivery of alert changes.

Importing the package serves the `Subscription` type through the generic FHIR routes (create,
read, update, delete, search) and puts its tables in the shared metadata. How it works:

- `accept` checks and normalises a Subscription as it is written (criteria, channel, secret)
  and sets `requested` -> `active`; `record` turns every stored version of a Flag or
  CommunicationRequest into one delivery row per matching subscription. Both run from the
  store's write hook (`hook.on_save`), inside the writer's transaction.
- `relay.DeliveryRelay` hands due deliveries to a dispatcher (Celery `deliver` queue, or the
  same task in-process); `workers/delivery` makes one HTTP attempt per hand-off.
- Topic-based subscriptions (Subscriptions R5 Backport IG, R4 shapes; README "Topic-based
  subscriptions"): `topic_subscription` reads one, `topic_events` says which topic event an
  alert-request version is, `topics` numbers and stores events (and handshakes, heartbeats)
  in the writer's transaction, `topic_payload` / `topic_notifications` shape the Bundles that
  the delivery attempt sends and `$status` / `$events` (service/api/subscription_ops.py) answer.
- Security (issue 10): `access` (a writer needs read scope on the criteria's type and becomes
  the owner that every delivery re-checks) and `endpoint_policy` (no loopback, link-local or
  private endpoints unless `ALERTS_SUBSCRIPTION_ALLOWED_HOSTS` allows them; checked on write
  and, after resolving the name, before every delivery).
"""

from __future__ import annotations

from service.fhir.registry import SearchParam, register
from service.subscriptions import models as models  # the tables, for Alembic and tests

SUBSCRIPTION_PARAMS: tuple[SearchParam, ...] = (
    SearchParam("_id", "id", "Logical id", "token"),
    SearchParam("_lastUpdated", "last-updated", "When the resource version was stored", "date"),
    SearchParam("status", "token-column", "Subscription.status", "token"),
)

register("Subscription", SUBSCRIPTION_PARAMS)
