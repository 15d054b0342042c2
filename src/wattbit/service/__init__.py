"""The live control plane: an HTTP API over the controller, real executors and a database.

``create_app(settings)`` builds the FastAPI app; ``wattbit serve`` runs it. Needs the
``service`` extra: ``pip install 'wattbit[service]'``.
"""

from wattbit.errors import require_extra

require_extra("fastapi", "service")
require_extra("sqlalchemy", "service")

from wattbit.service.app import create_app, serve
from wattbit.service.settings import Settings

__all__ = ["Settings", "create_app", "serve"]
