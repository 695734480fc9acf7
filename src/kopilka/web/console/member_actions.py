"""Console pages: member_actions."""

from fastapi import APIRouter

router = APIRouter(prefix="/console", include_in_schema=False)
