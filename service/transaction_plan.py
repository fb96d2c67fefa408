"""The transaction planner: what each entry of a transaction/batch Bundle will do, decided
before anything is written.

FHIR R4 (http.html, "Transaction Processing Rules" and "Conditional References") asks a server
to resolve conditional creates (`ifNoneExist`), conditional updates (`PUT Type?query`) and
conditional deletes first, then rewrite every `urn:uuid` fullUrl and conditional reference
(`Patient?identifier=sys|val`) to the id actually created or matched, and to refuse a Bundle
whose entries overlap. Doing that here, once, is what keeps a resent Bundle from pinning its
Conditions on a phantom Patient (a missed alert), and lets transactions, batches and the
`$evaluate` dry run share one resolution.

Pure: the stored data is consulted only through the `Resolver` the caller passes (the store in
a transaction, nothing at all in the dry run); privileges are checked by that resolver.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import parse_qsl

from service.errors import FHIRError, Issue, bad_request
from service.fhir.index import extract
from service.fhir.request_url import (
    RequestTarget,
    RequestUrlError,
    conditional_criteria,
    conditional_reference,
    parse_request_url,
    relative_to_base,
)
from service.fhir.search import Criterion, parse_search
from service.subscriptions.criteria import Criteria

Action = Literal["create", "match", "update", "delete", "noop", "read", "skip", "patch"]
METHODS = ("DELETE", "POST", "PUT", "PATCH", "GET", "HEAD")
# The spec's processing order: deletes, creates, updates/patches, then reads.
ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
_IN_MEMORY_KINDS = frozenset({"id", "token", "token-column"})


class Resolver(Protocol):
    """How the planner sees stored data; each method checks the caller's privileges first."""

    def create_match(self, resource_type: str, criteria: str) -> str | None:
        """The id an `ifNoneExist` matches (None: create); 412 on several."""
        ...

    def update_target(self, resource_type: str, criteria: str, body_id: str | None) -> str | None:
        """The id a conditional update writes (None: create with a new id)."""
        ...

    def delete_target(self, resource_type: str, criteria: str) -> str | None:
        """The id a conditional delete removes (None: nothing matches)."""
        ...

    def reference_matches(self, resource_type: str, criteria: str) -> list[str]:
        """Stored ids a conditional reference matches (at most two are needed)."""
        ...


@dataclass
class PlannedEntry:
    index: int
    method: str
    target: RequestTarget | None = None
    resource: dict[str, Any] | None = None
    full_url: str | None = None
    if_none_exist: str | None = None
    if_match: str | None = None
    action: Action = "read"
    resource_id: str | None = None
    error: FHIRError | None = None

    @property
    def where(self) -> str:
        return f"Bundle.entry[{self.index}]"

    @property
    def resource_type(self) -> str:
        assert self.target is not None
        return self.target.resource_type

    @property
    def writes(self) -> bool:
        return self.error is None and self.action in ("create", "update", "match", "delete")


@dataclass
class Plan:
    entries: list[PlannedEntry]
    atomic: bool
    mapping: dict[str, str] = field(default_factory=dict)

    @property
    def ordered(self) -> list[PlannedEntry]:
        return sorted(self.entries, key=lambda e: (ORDER[e.method], e.index))


def new_id() -> str:
    """The id the server gives a resource it creates: the one id assignment of the service
    (lone POSTs and conditional updates, transaction and batch entries, the dry run)."""
    return str(uuid.uuid4())


def target_id(found: str | None, body_id: str | None) -> str:
    """The id a conditional update writes: the one match, else the body's id, else a new one."""
    return found or body_id or new_id()


def entry_error(index: int, err: FHIRError) -> FHIRError:
    """The error, with every issue prefixed by and pointing at `Bundle.entry[i]`."""
    where = f"Bundle.entry[{index}]"
    issues = [
        Issue(
            i.severity,
            i.code,
            i.diagnostics if i.diagnostics.startswith(where) else f"{where}: {i.diagnostics}",
            i.expression if i.expression[:1] == (where,) else (where, *i.expression),
        )
        for i in err.issues
    ]
    return FHIRError(err.status, issues, err.headers)


def _fail(e: PlannedEntry, err: FHIRError, atomic: bool) -> None:
    err = entry_error(e.index, err)
    if atomic:
        raise err
    e.error = err


def _parse_entry(i: int, raw: Any, base: str | None) -> PlannedEntry:
    where = f"Bundle.entry[{i}]"
    if not isinstance(raw, Mapping):
        raise bad_request(f"{where} must be an object", (where,))
    req = raw.get("request")
    if not isinstance(req, Mapping) or not req.get("method") or not req.get("url"):
        raise bad_request(f"{where}.request needs method and url", (f"{where}.request",))
    method = str(req["method"]).upper()
    if method not in ORDER:
        raise bad_request(f"{where}.request.method is not supported", (f"{where}.request",))
    full_url = raw.get("fullUrl")
    resource = raw.get("resource")
    e = PlannedEntry(
        i,
        method,
        full_url=full_url if isinstance(full_url, str) else None,
        resource=dict(resource) if isinstance(resource, Mapping) else None,
        if_none_exist=req.get("ifNoneExist") or None,
        if_match=req.get("ifMatch") or None,
    )
    try:
        e.target = parse_request_url(req["url"], base)
    except RequestUrlError as exc:
        raise bad_request(f"request.url: {exc}", (f"{where}.request.url",)) from None
    _check_shape(e, resource)
    return e


def _check_shape(e: PlannedEntry, raw_resource: Any) -> None:
    """The url shape the method allows, and a body that agrees with the url."""
    t = e.target
    assert t is not None
    url = f"{e.where}.request.url"
    if e.method == "PATCH":
        raise FHIRError.of(400, "not-supported", "PATCH entries are not supported in Bundles")
    if e.method in ("GET", "HEAD"):
        e.action = "read"
        return
    if e.method == "POST" and t.shape != "type":
        raise FHIRError.of(
            400,
            "not-supported",
            "POST entries take url Type (operations are not supported)",
            (url,),
        )
    if e.method in ("PUT", "DELETE") and t.shape not in ("instance", "search"):
        raise bad_request(f"{e.method} entries take url Type/id or Type?criteria", (url,))
    if e.if_none_exist is not None and (e.method != "POST" or not isinstance(e.if_none_exist, str)):
        raise bad_request("ifNoneExist is only for POST, as a query string", (url,))
    if e.method == "DELETE":
        e.action = "delete" if t.shape == "instance" else "noop"
        e.resource_id = t.resource_id
    else:
        if not isinstance(raw_resource, Mapping):
            raise bad_request(f"{e.method} entries need a resource", (f"{e.where}.resource",))
        rtype = raw_resource.get("resourceType")
        if rtype != t.resource_type:
            raise bad_request(
                "resource.resourceType does not match the type of request.url",
                (f"{e.where}.resource.resourceType",),
            )
        body_id = raw_resource.get("id")
        if t.shape == "instance" and body_id != t.resource_id:
            raise bad_request(
                "resource.id does not match the id of request.url", (f"{e.where}.resource.id",)
            )
        e.action = "create" if e.method == "POST" else "update"
        e.resource_id = t.resource_id
    if not t.served:
        e.action = "skip"


def _criteria(e: PlannedEntry, text: str) -> str:
    try:
        return conditional_criteria(e.resource_type, text)
    except RequestUrlError as exc:
        raise bad_request(f"ifNoneExist: {exc}", (f"{e.where}.request.ifNoneExist",)) from None


def _resolve_targets(plan: Plan, resolver: Resolver) -> None:
    for e in plan.ordered:
        if e.error is not None or e.target is None:
            continue
        try:
            _resolve_target(e, resolver)
        except FHIRError as err:
            _fail(e, err, plan.atomic)


def _resolve_target(e: PlannedEntry, resolver: Resolver) -> None:
    t = e.target
    assert t is not None
    if e.action == "skip":  # not stored; its id only serves the rewriting of references
        if e.method != "DELETE" and e.resource_id is None:
            e.resource_id = new_id()
        return
    if e.method == "POST":
        found = None
        if e.if_none_exist:
            found = resolver.create_match(t.resource_type, _criteria(e, e.if_none_exist))
        e.action, e.resource_id = ("match", found) if found else ("create", new_id())
    elif e.method == "PUT" and t.shape == "search":
        body_id = (e.resource or {}).get("id")
        found = resolver.update_target(
            t.resource_type, t.query, body_id if isinstance(body_id, str) else None
        )
        e.resource_id = target_id(found, body_id if isinstance(body_id, str) else None)
    elif e.method == "DELETE" and t.shape == "search":
        found = resolver.delete_target(t.resource_type, t.query)
        e.action, e.resource_id = ("delete", found) if found else ("noop", None)
    if e.resource is not None and e.resource_id and e.action in ("create", "update"):
        e.resource = {**e.resource, "id": e.resource_id}


def _check_overlaps(plan: Plan) -> None:
    """No two writes may target one resource (spec: "If any resource identities (including
    resolved identities from conditional update/delete) overlap ... the transaction SHALL
    fail")."""
    seen: dict[tuple[str, str], int] = {}
    for e in plan.entries:
        if not e.writes or e.resource_id is None:
            continue
        keys = [(e.resource_type, e.resource_id)]
        criteria = e.target.query if e.target is not None else ""
        if e.method == "POST" and e.if_none_exist:
            criteria = _criteria(e, e.if_none_exist)
        if criteria and e.method in ("POST", "PUT"):  # two creates for one set of criteria
            keys.append((e.resource_type, "?" + _canonical(criteria)))
        for key in keys:
            if key in seen:
                raise entry_error(
                    e.index,
                    bad_request(
                        f"targets the same resource as Bundle.entry[{seen[key]}]; a "
                        "transaction may write each resource once",
                        (f"{e.where}.request",),
                    ),
                )
            seen[key] = e.index


def _canonical(criteria: str) -> str:
    return "&".join(sorted(f"{k}={v}" for k, v in parse_qsl(criteria, keep_blank_values=True)))


def _build_mapping(plan: Plan, base: str | None) -> None:
    """fullUrl (urn:uuid, or an absolute url on this base) → `Type/id` of each written entry."""
    seen: dict[str, int] = {}
    for e in plan.entries:
        if e.full_url is None:
            continue
        if e.full_url in seen:
            raise entry_error(
                e.index,
                bad_request(
                    f"fullUrl repeats Bundle.entry[{seen[e.full_url]}]'s; each entry needs its own",
                    (f"{e.where}.fullUrl",),
                ),
            )
        seen[e.full_url] = e.index
    for e in plan.entries:
        if e.full_url is None or e.target is None or e.method not in ("POST", "PUT"):
            continue
        ref = f"{e.resource_type}/{e.resource_id}" if e.resource_id and e.error is None else ""
        plan.mapping[e.full_url] = ref  # "" marks an entry that failed (batch)
        if base is not None and e.full_url.startswith(base.rstrip("/") + "/"):
            with contextlib.suppress(RequestUrlError):
                plan.mapping.setdefault(relative_to_base(e.full_url, base), ref)


class _Rewriter:
    """Rewrites the references of one resource; the first one that cannot be resolved is an
    error whose expression is its path (`Bundle.entry[i].resource`, `Condition.subject…`)."""

    def __init__(self, plan: Plan, resolver: Resolver) -> None:
        self.plan = plan
        self.resolver = resolver
        self.cache: dict[tuple[str, str], str] = {}

    def resource(self, e: PlannedEntry) -> None:
        assert e.resource is not None
        e.resource = self._walk(e.resource, e.resource_type, e)

    def _walk(self, value: Any, path: str, e: PlannedEntry) -> Any:
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if k == "reference" and isinstance(v, str):
                    out[k] = self._reference(v, f"{path}.reference", e)
                else:
                    out[k] = self._walk(v, f"{path}.{k}", e)
            return out
        if isinstance(value, list):
            return [self._walk(v, f"{path}[{i}]", e) for i, v in enumerate(value)]
        return value

    def _reference(self, ref: str, path: str, e: PlannedEntry) -> str:
        where = (f"{e.where}.resource", path)
        if ref in self.plan.mapping:
            if not self.plan.mapping[ref]:
                raise bad_request("the reference names an entry of this batch that failed", where)
            return self.plan.mapping[ref]
        if ref.startswith(("urn:uuid:", "urn:oid:")):
            raise bad_request("the reference names no entry of this Bundle (unresolved urn)", where)
        try:
            cond = conditional_reference(ref)
        except RequestUrlError as exc:
            raise bad_request(f"conditional reference: {exc}", where) from None
        if cond is None or not cond.served:  # unserved: like a skipped entry, nothing to match
            return ref
        key = (cond.resource_type, _canonical(cond.query))
        if key not in self.cache:
            self.cache[key] = self._resolve(cond, where)
        return self.cache[key]

    def _resolve(self, cond: RequestTarget, where: tuple[str, ...]) -> str:
        deleted = {
            x.resource_id
            for x in self.plan.entries
            if x.writes and x.action == "delete" and x.resource_type == cond.resource_type
        }
        ids = [i for i in self.resolver.reference_matches(cond.resource_type, cond.query)]
        ids = [i for i in ids if i not in deleted]
        ids += [i for i in _in_bundle_matches(self.plan, cond) if i not in ids]
        if len(ids) > 1:
            raise FHIRError.of(
                412,
                "multiple-matches",
                "the conditional reference matches several resources",
                where,
            )
        if not ids:
            raise bad_request("the conditional reference matches no resource", where)
        return f"{cond.resource_type}/{ids[0]}"


def _in_bundle_matches(plan: Plan, cond: RequestTarget) -> list[str]:
    """Ids of this Bundle's own creates/updates that the criteria match (the way search would
    once they are stored), so a first Bundle may refer to the Patient it creates."""
    items = parse_qsl(cond.query, keep_blank_values=True)
    criteria: tuple[Criterion, ...] = parse_search(cond.resource_type, items).criteria
    if not criteria or any(c.param.kind not in _IN_MEMORY_KINDS for c in criteria):
        return []
    matcher = Criteria(cond.resource_type, criteria)
    out = []
    for e in plan.entries:
        if (
            e.writes
            and e.action in ("create", "update")
            and e.resource is not None
            and e.resource_id
            and e.resource_type == cond.resource_type
            and matcher.matches(
                e.resource_type, e.resource_id, extract(e.resource_type, e.resource_id, e.resource)
            )
        ):
            out.append(e.resource_id)
    return out


def plan_bundle(
    bundle: Mapping[str, Any],
    resolver: Resolver,
    *,
    base: str | None,
    atomic: bool,
) -> Plan:
    """Plan a transaction (`atomic`: the first problem raises, naming its entry) or a batch
    (problems are attached to their entries). Bundle-level problems always raise."""
    raw = bundle.get("entry") or []
    if not isinstance(raw, list):
        raise bad_request("Bundle.entry must be an array", ("Bundle.entry",))
    plan = Plan([], atomic)
    for i, item in enumerate(raw):
        try:
            plan.entries.append(_parse_entry(i, item, base))
        except FHIRError as err:
            if atomic or not isinstance(item, Mapping):
                raise entry_error(i, err) from None
            req = item.get("request")
            method = str(req.get("method", "GET") if isinstance(req, Mapping) else "GET").upper()
            plan.entries.append(
                PlannedEntry(i, method if method in ORDER else "GET", error=entry_error(i, err))
            )
    _resolve_targets(plan, resolver)
    if atomic:
        _check_overlaps(plan)
    _build_mapping(plan, base)
    rewriter = _Rewriter(plan, resolver)
    for e in plan.ordered:
        if e.error is None and e.resource is not None and e.action in ("create", "update", "skip"):
            try:
                rewriter.resource(e)
            except FHIRError as err:
                if e.action == "skip":
                    continue  # not stored: its references do not matter
                _fail(e, err, atomic)
    return plan


class NoStore:
    """The dry run's resolver: nothing is stored, so nothing is matched and nobody is asked."""

    def create_match(self, resource_type: str, criteria: str) -> str | None:
        return None

    def update_target(self, resource_type: str, criteria: str, body_id: str | None) -> str | None:
        return None

    def delete_target(self, resource_type: str, criteria: str) -> str | None:
        return None

    def reference_matches(self, resource_type: str, criteria: str) -> list[str]:
        return []
