"""HTTP routes of segments."""

from fastapi import APIRouter

router = APIRouter(prefix="/v1")
