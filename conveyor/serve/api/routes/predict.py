"""``POST /predict``: records checked against the served model's schema, enriched,
predicted (champion or fallback per row), counted and logged."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, HTTPException

from conveyor.errors import InputError, SourceError
from conveyor.serve.api.checks import as_of_column, check_times, records_frame
from conveyor.serve.api.deps import State
from conveyor.serve.api.schemas import PredictRequest, PredictResponse, answers
from conveyor.serve.api.state import Served, choose_variant
from conveyor.serve.bundle import LoadedModel
from conveyor.serve.predict import features_frame, predict_rows
from conveyor.serve.routing import answered_by, route_counts

router = APIRouter()


def _predict_records(served: Served, model: LoadedModel, records: list[dict[str, Any]]
                     ) -> tuple[int, Any, Any, Any]:
    """Rows predicted, predictions, which rows the fallback answered and the route
    reasons; a 422 names the problem."""
    enricher = served.enrichers.get(model.version)
    schema = model.manifest["schema"]
    frame = records_frame(records, schema, enricher.added if enricher else frozenset())
    check_times(frame, [c for c, spec in schema.items() if spec["kind"] == "datetime"],
                as_of_column(enricher, frame))
    try:
        if enricher is not None:
            frame = enricher(frame)
        features = features_frame(frame, schema, "request")
        predictions, to_fallback, reasons = predict_rows(model, features, "request")
    except (InputError, SourceError) as exc:  # the message names the column or the row
        raise HTTPException(status_code=422, detail=[{
            "loc": ["body", "records"], "type": "value_error", "msg": str(exc)}]) from None
    return len(frame), predictions, to_fallback, reasons


@router.post("/predict", response_model=PredictResponse, responses=answers(
    _400="The body is not text in any encoding JSON allows.",
    _413="The body is over serve.max_body_bytes or holds over serve.max_records records.",
    _503="No model is in production yet."))
def predict(body: PredictRequest, state: State) -> PredictResponse:
    config = state.config
    served = state.holder.refresh()
    if served is None:
        raise HTTPException(status_code=503, detail="no production model yet")
    if len(body.records) > config.serve.max_records:
        raise HTTPException(status_code=413, detail=f"{len(body.records)} records, over "
                            f"{config.serve.max_records} (serve.max_records)")
    model, variant = choose_variant(served, body.key, config.serve.challenger_share)
    start = time.perf_counter()
    rows, predictions, to_fallback, reasons = _predict_records(served, model, body.records)
    seconds = time.perf_counter() - start
    counts = route_counts(to_fallback, reasons)
    state.metrics.record(model.version, variant, rows, seconds, counts)
    state.requests.add(model.version, variant, rows, seconds, counts)
    values = [p.item() if hasattr(p, "item") else p for p in predictions]
    return PredictResponse(predictions=values, model_version=model.version, variant=variant,
                           routes=answered_by(to_fallback).tolist(),
                           route_reasons=[str(r) for r in reasons])
