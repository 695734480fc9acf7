"""A ticket's rows as stored and as answered: its SLA columns, its messages."""

from datetime import datetime
from typing import Any
from uuid import UUID

from kopilka.kit.ids import new_id
from kopilka.kit.pagination import encode_cursor
from kopilka.support.domain import QueueOrder, Sla, TicketStatus
from kopilka.support.schemas import Author, Ticket, TicketMessage
from kopilka.support.schemas import Sla as SlaOut


def via_of(channel: str) -> str:
    return {"app": "app", "pos": "app", "web": "app", "email": "email"}.get(channel, "api")


def sla_columns(sla: Sla) -> dict[str, Any]:
    return {
        "first_response_due_at": sla.first_response_due_at,
        "resolution_due_at": sla.resolution_due_at,
        "first_responded_at": sla.first_responded_at,
        "paused_at": sla.paused_at,
        "due_at": sla.due_at,
    }


def sla_of(row: Any) -> Sla:
    return Sla(
        row["first_response_due_at"],
        row["resolution_due_at"],
        row["first_responded_at"],
        row["paused_at"],
    )


def message_row(
    ticket: Any,
    *,
    public: bool,
    author: str,
    name: str,
    key_id: UUID | None,
    staff_id: UUID | None,
    body: str,
    via: str,
    now: datetime,
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "program_id": ticket["program_id"],
        "ticket_id": ticket["id"],
        "member_id": ticket["member_id"],
        "public": public,
        "author": author,
        "author_key": key_id,
        "author_staff": staff_id,
        "author_name": name[:200],
        "body": body,
        "via": via,
        "created_at": now,
    }


def message_out(row: Any) -> TicketMessage:
    return TicketMessage(
        id=row["id"],
        public=row["public"],
        author=Author(
            kind=row["author"],
            name=row["author_name"],
            key_id=row["author_key"],
            staff_id=row["author_staff"],
        ),
        body=row["body"],
        via=row["via"],
        created_at=row["created_at"],
    )


def ticket_out(row: Any, now: datetime) -> Ticket:
    sla = sla_of(row)
    status = TicketStatus(row["status"])
    first, resolution = sla.breaches(status, now, row["resolved_at"])
    first = first or row["first_response_breached"]
    resolution = resolution or row["resolution_breached"]
    staff_opened = row["opened_by_key"] is not None or row["opened_by_staff"] is not None
    return Ticket(
        id=row["id"],
        member_id=row["member_id"],
        subject=row["subject"],
        category=row["category"],
        priority=row["priority"],
        status=row["status"],
        channel=row["channel"],
        assignee_id=row["assignee_id"],
        store=row["store"],
        purchase_id=row["purchase_id"],
        purchase_external_id=row["purchase_external_id"],
        opened_by=Author(
            kind="staff" if staff_opened else "member",
            name=row["opened_by_name"],
            key_id=row["opened_by_key"],
            staff_id=row["opened_by_staff"],
        ),
        sla=SlaOut(
            first_response_due_at=sla.first_response_due_at,
            resolution_due_at=sla.resolution_due_at,
            first_responded_at=sla.first_responded_at,
            paused=sla.paused_at is not None,
            first_response_breached=first,
            resolution_breached=resolution,
        ),
        breached=first or resolution,
        due_at=row["due_at"],
        resolved_at=row["resolved_at"],
        closed_at=row["closed_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def queue_cursor(items: list[Ticket], limit: int, order: QueueOrder) -> str | None:
    """The cursor after a full page of the queue: the last ticket's key in its order."""
    last = items[-1] if len(items) == limit else None
    if last is None:
        return None
    return encode_cursor(last.due_at if order is QueueOrder.DEADLINE else last.created_at, last.id)
