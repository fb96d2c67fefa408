"""The API without a relay, for the ingest benchmark: writes are validated, stored and their
evaluations queued (outbox rows), but not run, so the figure is the ingest path alone."""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn

from service.api.app import create_app
from service.config import Settings

if __name__ == "__main__":
    data_dir, port = Path(sys.argv[1]), int(sys.argv[2])
    settings = Settings(data_dir=data_dir, jwt_secret="bench-secret-" + "0" * 32)  # >= 32 bytes
    app = create_app(settings, dispatcher=None, start_relay=False)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
