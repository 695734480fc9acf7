"""The web-shop widget: its script and the calls it makes."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
