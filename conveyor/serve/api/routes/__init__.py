"""The API's routes, one router per group, included by the app in this order:

- :mod:`~conveyor.serve.api.routes.health`: ``GET /health``;
- :mod:`~conveyor.serve.api.routes.predict`: ``POST /predict``;
- :mod:`~conveyor.serve.api.routes.views`: ``GET /models``, ``GET /metrics``;
- :mod:`~conveyor.serve.api.routes.admin`: ``POST /update``, ``/promote/{version}``,
  ``/rollback`` (admin token);
- :mod:`~conveyor.serve.api.routes.dashboard`: ``GET /dashboard`` (the summary, live).
"""

from conveyor.serve.api.routes import admin, dashboard, health, predict, views

ROUTERS = (health.router, predict.router, views.router, admin.router, dashboard.router)

__all__ = ["ROUTERS"]
