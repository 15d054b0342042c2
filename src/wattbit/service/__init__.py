"""The live control plane: an HTTP API over the controller, real executors and a database.

``create_app(settings)`` builds the FastAPI app; ``wattbit serve`` runs it. Needs the
``service`` extra: ``pip install 'wattbit[service]'``.
"""

from wattbit.errors import require_extra

require_extra("fastapi", "service")
require_extra("sqlalchemy", "service")

from wattbit.service.app import create_app, serve  # noqa: E402
from wattbit.service.settings import Settings  # noqa: E402

__all__ = ["create_app", "serve", "Settings"]
