"""``POST /predict``: records checked against the served model's schema in the event loop,
then predicted together with the other requests in flight (:mod:`..batching`): enriched,
routed per row (champion or fallback), counted and logged per request."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import APIRouter, HTTPException

from conveyor.collect.enrich import Enricher
from conveyor.errors import InputError, SourceError
from conveyor.serve.api.batching import Job
from conveyor.serve.api.checks import as_of_column, check_records, check_times, records_frame
from conveyor.serve.api.deps import ApiState, State
from conveyor.serve.api.schemas import PredictRequest, PredictResponse, answers
from conveyor.serve.api.state import choose_variant
from conveyor.serve.bundle import LoadedModel
from conveyor.serve.inputs import features_frame, records_features
from conveyor.serve.predict import predict_rows
from conveyor.serve.routing import answered_by, route_counts

router = APIRouter()


@dataclass(frozen=True)
class Answer:
    """One request's share of a batch's predictions."""

    predictions: np.ndarray
    to_fallback: np.ndarray
    reasons: np.ndarray


def features_of(model: LoadedModel, enricher: Enricher | None,
                records: list[dict[str, Any]]) -> Any:
    """The model's input for checked records: built straight from the values when every
    record holds every column, else as a frame enriched with the joined columns."""
    schema = model.manifest["schema"]
    if all(record.keys() >= schema.keys() for record in records):
        return records_features(records, schema)
    frame = records_frame(records, schema)
    if enricher is not None:
        frame = enricher(frame)
    return features_frame(frame, schema, "request")


def predict_jobs(state: ApiState, jobs: list[Job]) -> list[Answer]:
    """Predict the jobs of one model in one call; count and log each request (in the
    worker thread, so the event loop never waits on the request log's writes)."""
    model: LoadedModel = jobs[0].model
    records = [record for job in jobs for record in job.records]
    features = features_of(model, jobs[0].context, records)
    predictions, to_fallback, reasons = predict_rows(model, features, "request")
    state.metrics.batch.observe(len(jobs))
    out, at, now = [], 0, time.perf_counter()
    for job in jobs:
        part = slice(at, at + len(job.records))
        at = part.stop
        answer = Answer(predictions[part], to_fallback[part], reasons[part])
        counts = route_counts(answer.to_fallback, answer.reasons)
        seconds = now - job.arrived  # what the client waited for, queue included
        state.metrics.record(model.version, job.variant, len(job.records), seconds, counts)
        state.requests.add(model.version, job.variant, len(job.records), seconds, counts)
        out.append(answer)
    return out


@router.post("/predict", response_model=PredictResponse, responses=answers(
    _400="The body is not text in any encoding JSON allows.",
    _413="The body is over serve.max_body_bytes or holds over serve.max_records records.",
    _503="No model is in production yet."))
async def predict(body: PredictRequest, state: State) -> PredictResponse:
    config = state.config
    served = await state.served()
    if served is None:
        raise HTTPException(status_code=503, detail="no production model yet")
    if len(body.records) > config.serve.max_records:
        raise HTTPException(status_code=413, detail=f"{len(body.records)} records, over "
                            f"{config.serve.max_records} (serve.max_records)")
    model, variant = choose_variant(served, body.key, config.serve.challenger_share)
    enricher = served.enrichers.get(model.version)
    schema = model.manifest["schema"]
    check_records(body.records, schema, enricher.added if enricher else frozenset())
    check_times(body.records, [c for c, spec in schema.items() if spec["kind"] == "datetime"],
                as_of_column(enricher, body.records))
    try:
        answer: Answer = await state.batcher.submit(model, variant, body.records, enricher)
    except (InputError, SourceError) as exc:  # the message names the column or the row
        raise HTTPException(status_code=422, detail=[{
            "loc": ["body", "records"], "type": "value_error", "msg": str(exc)}]) from None
    values = [p.item() if hasattr(p, "item") else p for p in answer.predictions]
    return PredictResponse(predictions=values, model_version=model.version, variant=variant,
                           routes=answered_by(answer.to_fallback).tolist(),
                           route_reasons=[str(r) for r in answer.reasons])
