"""HTTP routes of support."""

from fastapi import APIRouter

router = APIRouter(prefix="/v1")
