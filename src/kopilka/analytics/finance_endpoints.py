"""HTTP routes of analytics: liability and breakage, experiments and their return on investment."""

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["analytics"])
