"""HTTP routes of analytics: customer-lifetime models, members' predictions and their validation."""

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["analytics"])
