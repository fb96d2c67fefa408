"""Integration-engineer tooling: replay FHIR files into a running server and judge the alerts.

`expectations` is pure (load, summarise, diff) and shared with the fixture end-to-end tests;
`uploads` turns files into Bundles; `client` talks HTTP; `render` draws; `runner` ties them
together for `fhir-alerts replay`.
"""

from service.replay.runner import ReplayOptions, ReplayResult, run

__all__ = ["ReplayOptions", "ReplayResult", "run"]
