"""The control plane's HTTP API: :func:`create_app` builds it (nothing happens at import)."""

from __future__ import annotations

import logging
import re
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from wattbit import __version__
from wattbit.errors import (
    ExecutorError,
    Infeasible,
    InvalidInput,
    ResidencyViolation,
    SolverError,
    WattbitError,
)
from wattbit.service.metrics import CONTENT_TYPE
from wattbit.service.plane import Conflict, ControlPlane, Forbidden, NotFound
from wattbit.service.routes import admin, grid, operators, tenants
from wattbit.service.settings import Settings

__all__ = ["create_app", "serve"]

log = logging.getLogger("wattbit.service")

DESCRIPTION = """\
One API for Japan's distributed AI data centers run as one virtual data center.

* **Tenants** submit jobs and see where each runs and why.
* **The grid side** posts curtailment forecasts and notices and demand-response requests (上げ/下げ),
  and reads the fleet's flexibility envelope.
* **Operators** see the fleet, the plan and the decision log, and take sites in and out of service.

Every call but `/healthz` and `/metrics` (Prometheus's scrape, which shows fleet-wide power and
GPUs and no job or tenant: keep it on the operators' network) needs a bearer token; a token's role
decides what it may do. Times are UTC (ISO 8601 with an offset); power is in MW, energy in MWh,
data in GB.
"""

# the HTTP status of each error kind; the first match wins (subclasses come first)
_STATUS: tuple[tuple[type[WattbitError], int], ...] = (
    (NotFound, 404),
    (Forbidden, 403),
    (Conflict, 409),
    (ResidencyViolation, 409),
    (Infeasible, 409),
    (InvalidInput, 422),
    (ExecutorError, 502),
    (SolverError, 503),
    (WattbitError, 400),
)
_FIELD = re.compile(r"^([a-z_]+): ")


def _problem(exc: WattbitError) -> JSONResponse:
    code = next(c for kind, c in _STATUS if isinstance(exc, kind))
    msg = str(exc)
    if code == 422:  # the same shape as FastAPI's own validation errors, naming the field
        m = _FIELD.match(msg)
        loc = ["body", m.group(1)] if m else ["body"]
        return JSONResponse({"detail": [{"loc": loc, "msg": msg, "type": "value_error"}]}, status_code=422)
    return JSONResponse({"detail": msg}, status_code=code)


def create_app(settings: Settings | None = None, plane: ControlPlane | None = None) -> FastAPI:
    """Build the API.

    settings : configuration (default: from ``WATTBIT_*`` environment variables);
    plane : an already built control plane (tests); default: built from ``settings``.
    """
    if plane is None:
        plane = ControlPlane.build(settings or Settings.from_env())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        plane.start()
        try:
            yield
        finally:
            plane.stop()

    app = FastAPI(title="wattbit control plane", version=__version__, description=DESCRIPTION,
                  lifespan=lifespan)
    app.state.plane = plane
    for router in (tenants, grid, operators, admin):
        app.include_router(router)

    @app.exception_handler(WattbitError)
    async def _wattbit_error(request: Request, exc: WattbitError) -> JSONResponse:
        return _problem(exc)

    @app.get("/healthz", tags=["meta"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/metrics", tags=["meta"], response_class=Response,
             responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}})
    def metrics() -> Response:
        """Prometheus metrics: site power, GPUs busy, curtailment absorbed, pending decisions."""
        return Response(plane.metrics.render(), media_type=CONTENT_TYPE)

    return app


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the API with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
