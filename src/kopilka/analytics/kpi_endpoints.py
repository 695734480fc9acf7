"""HTTP routes of analytics: the program's KPIs."""

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["analytics"])
