"""One typed settings object shared by the API, the relay, the worker and the CLI.

Twelve-factor: everything comes from `ALERTS_*` environment variables with defaults that run a
complete service on one machine (SQLite file, in-process worker). Secrets are never defaulted to
a constant: an unset `ALERTS_JWT_SECRET` is generated once and kept in the data dir.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contract import Priority
from service.ack_deadlines import DEFAULT_ACK_DEADLINES_TEXT, parse_ack_deadlines
from service.auth import LOCAL_AUDIENCE, MIN_SECRET_BYTES, fhir_base
from service.files import make_private_dir, make_private_file

# A relative reference to a resource that can receive a CommunicationRequest.
_REFERENCE = re.compile(
    r"^(Practitioner|PractitionerRole|CareTeam|Organization|Group|Patient|RelatedPerson|Device)"
    r"/[A-Za-z0-9\-.]{1,64}$"
)


class Settings(BaseSettings):
    # hide_input_in_errors: a refused setting may be a secret (JWT key, database password);
    # the start-up error names the variable, never echoes its value.
    model_config = SettingsConfigDict(
        env_prefix="ALERTS_", extra="ignore", hide_input_in_errors=True
    )

    data_dir: Path = Path("./.fhir-alerts")
    database_url: str | None = None
    broker_url: str | None = None
    jwt_secret: str | None = None
    oncology_team: str = "CareTeam/oncology"
    # The rule-set JSON file the worker, `$evaluate` and `fhir-alerts evaluate` judge with (its
    # value sets are read relative to it). Unset = the shipped ruleset/data/ruleset-v1.json.
    ruleset: Path | None = None

    # Request limits and paging.
    max_body_bytes: int = 8 * 1024 * 1024
    default_page_size: int = 50
    max_page_size: int = 1000
    # A request body must have arrived this many seconds after the request began; a client
    # that stops sending gets 408 and its connection is closed (service/api/guard.py).
    body_timeout_seconds: float = Field(default=60.0, gt=0)

    # Search cost caps (beyond them a search is a 400 OperationOutcome, never a long query):
    # parameters per search, comma-separated values per parameter and in all parameters
    # together, `_offset`, and resources
    # `_include`/`_revinclude` may add to one page.
    search_max_params: int = 50
    search_max_values: int = 100
    search_max_total_values: int = 500
    search_max_offset: int = 100_000
    search_max_included: int = 1000

    # Pipeline: how often the relay looks for outbox rows, and when a dispatched evaluation
    # that never finished (a worker died) is handed out again.
    # The relays are woken by the commits that give them work (service/store/wakeups.py, and
    # PostgreSQL NOTIFY across processes), so this poll is only the safety net for a lost
    # wake-up (listener reconnecting) and sets how soon a broker that lost its queues is
    # noticed: 2 s (was 0.5 s, when it set the write-to-notification delay).
    relay_interval_seconds: float = 2.0
    redispatch_after_seconds: float = 300.0
    # Kombu's Redis visibility timeout: an unacknowledged task is redelivered after this.
    broker_visibility_timeout: int = 600
    # Static bearer token a Prometheus scraper may use for `GET /metrics` (besides any valid
    # JWT), as bearer tokens are capped at `token_max_lifetime_seconds`. Unset = JWT only.
    metrics_token: str | None = None
    # A Celery worker host with no API process beside it serves its own metrics (evaluations)
    # on this port; needs PROMETHEUS_MULTIPROC_DIR (its pool processes write there). Unset = off.
    worker_metrics_port: int | None = None
    worker_metrics_host: str = "127.0.0.1"

    # Fault injection for crash-safety tests only: the worker holds each evaluation open this
    # long (inside its transaction) so a test can kill it mid-evaluation. Keep 0 in production.
    evaluation_delay_seconds: float = 0.0

    # `asOf` on writes (replay of historical test data). None = allowed only on the embedded
    # default (no broker), never silently in production.
    allow_as_of: bool | None = None

    # Web sign-in for the nurse worklist: "user:password" pairs, comma separated.
    worklist_users: str = Field(default="")

    # --- Subscriptions and the worklist's browser session (issue 10) ---
    # Exceptions to the subscription endpoint policy (service/subscriptions/endpoint_policy.py):
    # comma-separated host names, addresses or CIDRs. Empty = only public http(s) endpoints.
    subscription_allowed_hosts: str = Field(default="")
    # The deployment is reached over HTTPS (e.g. behind a TLS proxy): cookies get `Secure`.
    secure_cookies: bool = False

    # --- Tokens and SMART Backend Services (service/auth.py, service/auth_clients.py) ---
    # The service's public URL (scheme://host[:port][/prefix], without /fhir). Tokens are for
    # its FHIR base (`<url>/fhir`) and client assertions for `<url>/auth/token`. Unset = the
    # URL each request reached (fine on one machine; set it behind a proxy or in production).
    public_base_url: str | None = None
    # JSON file of registered backend clients: {"clients": [{"client_id", "jwks" or
    # "jwks_uri", "scope"}]}. Unset = no clients, `POST /auth/token` refuses everyone.
    clients: Path | None = None
    # Longest lifetime (exp - iat) of any bearer token the API accepts or `token` mints.
    token_max_lifetime_seconds: int = Field(default=24 * 3600, ge=60)
    # Lifetime of the tokens `POST /auth/token` issues (SMART recommends five minutes).
    access_token_ttl_seconds: int = Field(default=300, ge=30)
    # A client's `jwks_uri` is fetched with this timeout and its keys kept this long.
    jwks_timeout_seconds: float = Field(default=5.0, gt=0)
    jwks_cache_seconds: float = Field(default=300.0, ge=0)

    # --- Closed-loop alerts (issue 13): deadlines, escalation, snooze expiry ---
    # Acknowledgement deadline per priority (service/ack_deadlines.py): an alert request still
    # `active` this long after it was authored gets one escalation.
    ack_deadlines: str = DEFAULT_ACK_DEADLINES_TEXT
    # Who escalations go to (a FHIR reference such as PractitionerRole/oncall). Unset = the
    # oncology team (its CareTeam members when that CareTeam is stored).
    escalation_recipient: str | None = None
    # How often the embedded deadline sweep looks for overdue and snoozed alerts (the Celery
    # beat schedule uses the same interval). 0 turns the embedded sweep off.
    escalation_interval_seconds: float = Field(default=30.0, ge=0)

    # --- Bundle size (issue 12): entries a transaction/batch Bundle (or `$evaluate`) may hold.
    # Counted right after the body is parsed, before any entry is validated or planned: more
    # is a 413 `too-costly`. With `max_body_bytes` (bytes read, refused while streaming) it
    # bounds the memory and work of one request: the parsed body, one planned entry and one
    # response entry per entry.
    max_bundle_entries: int = Field(default=5000, ge=1)

    @field_validator("jwt_secret")
    @classmethod
    def _secret_long_enough(cls, value: str | None) -> str | None:
        if value and len(value.encode()) < MIN_SECRET_BYTES:
            raise ValueError(
                f"ALERTS_JWT_SECRET is {len(value.encode())} bytes; HS256 needs at least "
                f"{MIN_SECRET_BYTES} (e.g. python3 -c 'import secrets; "
                "print(secrets.token_urlsafe(48))'), or unset it to use a generated one"
            )
        return value

    @field_validator("ruleset", mode="before")
    @classmethod
    def _ruleset_is_a_file(cls, value: object) -> object:
        if value in (None, ""):
            return None
        if not Path(str(value)).is_file():
            raise ValueError(f"ALERTS_RULESET: {value} is not a rule-set JSON file")
        return value

    @field_validator("ack_deadlines")
    @classmethod
    def _deadlines_parse(cls, value: str) -> str:
        try:
            parse_ack_deadlines(value)
        except ValueError as exc:
            raise ValueError(f"ALERTS_ACK_DEADLINES: {exc}") from None
        return value

    @field_validator("escalation_recipient", mode="before")
    @classmethod
    def _recipient_is_a_reference(cls, value: object) -> object:
        if value in (None, ""):
            return None
        if not isinstance(value, str) or not _REFERENCE.match(value):
            raise ValueError(
                "ALERTS_ESCALATION_RECIPIENT must be a relative FHIR reference such as "
                "PractitionerRole/oncall or CareTeam/oncology"
            )
        return value

    @field_validator("clients", mode="before")
    @classmethod
    def _empty_clients_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("public_base_url")
    @classmethod
    def _public_base_is_a_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError(
                "ALERTS_PUBLIC_BASE_URL must be the service's http(s) URL, without /fhir or a "
                "query, e.g. https://alerts.example.org"
            )
        return value.rstrip("/")

    @property
    def local_token_audience(self) -> str:
        """The audience of tokens minted from this configuration (`fhir-alerts token`)."""
        return fhir_base(self.public_base_url) if self.public_base_url else LOCAL_AUDIENCE

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
            elif url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url.removeprefix("postgres://")
            return url
        return f"sqlite:///{(self.data_dir / 'alerts.db').resolve()}"

    @property
    def ack_deadline_map(self) -> Mapping[Priority, timedelta]:
        """`ack_deadlines` parsed: every priority's deadline (defaults fill the gaps)."""
        return parse_ack_deadlines(self.ack_deadlines)

    @property
    def embedded(self) -> bool:
        """No broker configured: the serve process evaluates in-process."""
        return not self.broker_url

    @property
    def as_of_allowed(self) -> bool:
        return self.embedded if self.allow_as_of is None else self.allow_as_of

    def ensure_data_dir(self) -> Path:
        """The data dir, created (or tightened) to 0700: it holds the secret and the data."""
        return make_private_dir(self.data_dir)

    def signing_secret(self) -> str:
        """The JWT secret: configured, or generated once into the data dir (mode 0600)."""
        if self.jwt_secret:
            return self.jwt_secret
        path = self.ensure_data_dir() / "jwt-secret"
        if not path.exists():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process won the race; use its secret
                pass
            else:
                with os.fdopen(fd, "w") as fh:
                    fh.write(secrets.token_urlsafe(48))
        make_private_file(path)  # a secret file left readable by an older version
        secret = path.read_text().strip()
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(
                f"{path} holds a secret shorter than {MIN_SECRET_BYTES} bytes; delete it to "
                "have a new one generated (every token signed with the old one stops working)"
            )
        return secret


@lru_cache
def get_settings() -> Settings:
    return Settings()
