"""Delivery reports of SMS providers, read into (provider id, delivered, detail).

- The generic gateway posts JSON: one report ``{"id": "...", "status": "delivered" |
  "failed", "error": "..."}`` or a list of them.
- SMS.ru posts a form with ``data[0]``, ``data[1]`` …, each ``sms_status\\n<id>\\n<code>``
  (103: delivered; 104–108, 150: not delivered; others: still on the way).
"""

import json
from typing import Any
from urllib.parse import parse_qsl

from kopilka.errors import InvalidInput

Report = tuple[str, bool, str | None]
SMSRU_DELIVERED = 103
SMSRU_FAILED = {
    104: "the message's lifetime ran out",
    105: "deleted by the operator",
    106: "the phone refused it",
    107: "unknown reason",
    108: "rejected",
    150: "not delivered: no route to the number",
}
DELIVERED_WORDS = {"delivered", "ok", "success"}
FAILED_WORDS = {"failed", "undelivered", "rejected", "expired", "error"}


MAX_REPORTS = 1000  # per request: providers send them in batches of tens


def parse_report(content_type: str, raw: bytes) -> list[Report]:
    text = raw.decode(errors="replace")
    found = _generic(text) if "json" in content_type else _smsru(text)
    if len(found) > MAX_REPORTS:
        raise InvalidInput(f"at most {MAX_REPORTS} reports in one request", field="body")
    # An id that is not valid text (a lone surrogate) matches no message of ours.
    return [r for r in found if r[0].encode(errors="ignore").decode() == r[0]]


def _generic(text: str) -> list[Report]:
    try:
        body: Any = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidInput("the report is not JSON", field="body") from None
    items = body if isinstance(body, list) else [body]
    reports: list[Report] = []
    for item in items:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("id"), str | int)
            or isinstance(item.get("id"), bool)
        ):
            raise InvalidInput("a report needs an id", field="id")
        status = str(item.get("status", "")).lower()
        if status in DELIVERED_WORDS:
            reports.append((str(item["id"]), True, None))
        elif status in FAILED_WORDS:
            error = item.get("error")
            reports.append((str(item["id"]), False, str(error) if error else status))
    return reports


def _smsru(text: str) -> list[Report]:
    reports: list[Report] = []
    for key, value in parse_qsl(text, keep_blank_values=True):
        if not key.startswith("data["):
            continue
        lines = value.split("\n")
        if len(lines) < 3 or lines[0].strip() != "sms_status":
            continue
        try:
            code = int(lines[2].strip())
        except ValueError:
            continue
        provider_id = lines[1].strip()
        if code == SMSRU_DELIVERED:
            reports.append((provider_id, True, None))
        elif code in SMSRU_FAILED:
            reports.append((provider_id, False, SMSRU_FAILED[code]))
    return reports
