"""The REST service: predictions from the production (or staging) model over HTTP.

One process loads the production model once, verified by sha256, and looks
for a newly promoted version every ``serve.reload_seconds``; a swap replaces
one reference, so in-flight requests finish on the model they started with.
Request figures are buffered in memory and written to the metadata store
every ``serve.log_seconds`` (one writer, few transactions).

- :mod:`~conveyor.serve.api.app`: the app factory, the OpenAPI document, uvicorn;
- :mod:`~conveyor.serve.api.routes`: the routes, one router per group;
- :mod:`~conveyor.serve.api.deps`: what the routes share, as dependencies (the served
  models, the request log, the Prometheus figures, the admin token check);
- :mod:`~conveyor.serve.api.schemas`: request and answer models, the record's schema;
- :mod:`~conveyor.serve.api.checks`: checks on what a client sends;
- :mod:`~conveyor.serve.api.state`: the served models and the request log.
"""

from conveyor.serve.api.app import TOKEN_ENV, app_from_env, create_app, serve
from conveyor.serve.api.checks import tokens_match
from conveyor.serve.api.schemas import MAX_PROBLEMS, record_schema

__all__ = ["MAX_PROBLEMS", "TOKEN_ENV", "app_from_env", "create_app", "record_schema", "serve",
           "tokens_match"]
