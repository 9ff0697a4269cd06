"""`import autometa.client` stays light (issue 16): a script or a third-party service that talks
to the API must not load the server, the web framework or the database layer with the client."""

from __future__ import annotations

import json
import subprocess
import sys

SERVER_SIDE = (
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "redis",
    "taskiq",
    "autometa.api.app",
    "autometa.store",
    "autometa.worker",
    "autometa.chain",
)


def test_the_client_imports_no_server_module() -> None:
    script = "import json, sys; import autometa.client; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    loaded = json.loads(done.stdout)
    heavy = [m for m in loaded if any(m == s or m.startswith(s + ".") for s in SERVER_SIDE)]
    assert heavy == []
    assert "autometa.api.schemas" in loaded  # the client speaks the API's own models


def test_the_api_package_still_offers_its_entry_points() -> None:
    from autometa import api

    assert callable(api.create_app)
    assert api.Services.__name__ == "Services"
