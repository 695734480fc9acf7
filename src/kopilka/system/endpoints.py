"""Liveness and Prometheus metrics."""

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from kopilka import __version__
from kopilka.db import reading
from kopilka.http import EngineDep
from kopilka.system.repository import ping

router = APIRouter(tags=["system"])


class Health(BaseModel):
    status: str
    version: str
    database: str


@router.get("/v1/health", response_model=Health)
async def health(engine: EngineDep) -> Health:
    async with reading(engine) as conn:
        await ping(conn)
    return Health(status="ok", version=__version__, database=engine.dialect.name)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
