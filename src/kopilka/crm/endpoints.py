"""HTTP routes of crm."""

from fastapi import APIRouter

router = APIRouter(prefix="/v1")
