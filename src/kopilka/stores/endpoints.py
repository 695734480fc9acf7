"""HTTP routes of stores."""

from fastapi import APIRouter

router = APIRouter(prefix="/v1")
