"""Staff accounts: create, change, sign in and out, passwords and one-time codes, and the
caller a session token stands for. Never commits.

A session is looked up on every request (one indexed read): a role changed, an account
disabled or a session ended takes effect on the next request, in every process.
"""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import ROLE_PERMISSIONS, Permission, Principal, Role
from kopilka.audit.domain import Actor, ActorKind
from kopilka.audit.service import AuditService, audit_service
from kopilka.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    KopilkaError,
    NotFound,
    TooManyRequests,
    Unauthorized,
)
from kopilka.kit.clock import as_utc
from kopilka.kit.emails import normalise_email
from kopilka.kit.ids import new_id
from kopilka.staff import domain
from kopilka.staff.repository import StaffRepository, staff_repository
from kopilka.staff.schemas import (
    PasswordChange,
    SessionOut,
    SignIn,
    StaffCreate,
    StaffOut,
    StaffRef,
    StaffUpdate,
    TotpSetup,
)

WRONG_CREDENTIALS = (
    "wrong e-mail, password or code (after five wrong tries an account rests 15 minutes)"
)
CODE_NEEDED = "this account needs the authenticator's code (totp)"
RESTING = "too many wrong passwords or codes in a row: the account rests for 15 minutes"
WRONG_PASSWORD = "the current password is wrong"
WRONG_CODE = "the code is wrong (check the phone's clock)"


def _out(row: Any) -> StaffOut:
    role = Role(row.role)
    return StaffOut(
        id=row.id,
        email=row.email,
        name=row.name,
        role=role,
        stores=row.stores,
        status=row.status,
        totp_enabled=bool(row.totp_enabled),
        permissions=sorted(ROLE_PERMISSIONS[role]),
        last_sign_in_at=row.last_sign_in_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _audited(staff: StaffOut) -> dict[str, Any]:
    return staff.model_dump(mode="json", include={"email", "name", "role", "stores", "status"})


class StaffService:
    def __init__(
        self,
        repository: StaffRepository = staff_repository,
        audit: AuditService = audit_service,
    ) -> None:
        self.repository = repository
        self.audit = audit

    async def create(
        self, conn: AsyncConnection, program_id: UUID, data: StaffCreate, now: datetime
    ) -> StaffOut:
        email = normalise_email(data.email)
        if await self.repository.by_email(conn, email, program_id):
            raise Conflict(f"{email} already has an account in this program", field="email")
        staff_id = new_id()
        row = {
            "id": staff_id,
            "program_id": program_id,
            "email": email,
            "name": data.name.strip(),
            "role": str(data.role),
            "stores": _stores(data.stores),
            "password_hash": domain.hash_password(domain.checked_password(data.password)),
            "totp_secret": None,
            "totp_enabled": False,
            "totp_last_step": None,
            "status": "active",
            "failed_sign_ins": 0,
            "locked_until": None,
            "last_sign_in_at": None,
            "created_at": now,
            "updated_at": now,
        }
        await self.repository.insert(conn, row)
        created = await self.get(conn, program_id, staff_id)
        await self.audit.record(
            conn,
            program_id,
            "staff.created",
            subject_type="staff",
            subject_id=created.id,
            now=now,
            after=_audited(created),
        )
        return created

    async def get(self, conn: AsyncConnection, program_id: UUID, staff_id: UUID) -> StaffOut:
        row = await self.repository.get(conn, program_id, staff_id)
        if row is None:
            raise NotFound(f"no staff member {staff_id}", field="staff_id")
        return _out(row)

    async def page(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        *,
        limit: int,
        after: tuple[datetime, UUID] | None,
    ) -> list[StaffOut]:
        return [
            _out(r) for r in await self.repository.page(conn, program_id, limit=limit, after=after)
        ]

    async def update(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        staff_id: UUID,
        data: StaffUpdate,
        now: datetime,
        *,
        by: UUID | None = None,
    ) -> StaffOut:
        """Change an account. ``by`` (the staff member acting, if one is) may not disable
        their own account: nobody locks themselves out. The program keeps an active owner:
        its last one is neither demoted nor disabled."""
        row = await self.repository.get(conn, program_id, staff_id, lock=True)
        if row is None:
            raise NotFound(f"no staff member {staff_id}", field="staff_id")
        before = _out(row)
        changes = data.model_dump(exclude_unset=True)
        values: dict[str, Any] = {"updated_at": now}
        for name in ("name", "role", "status"):
            if changes.get(name) is not None:
                values[name] = str(changes[name])
        if "stores" in changes:
            values["stores"] = _stores(data.stores)
        if values.get("status") == "active":
            values.update(failed_sign_ins=0, locked_until=None)
        disabling = values.get("status") == "disabled" and before.status == "active"
        if disabling and staff_id == by:
            raise Conflict(
                "you cannot disable your own account: ask another owner to", field="status"
            )
        demoting = values.get("role", "owner") != "owner"
        owning = before.role is Role.OWNER and before.status == "active"
        # Every owner's row is locked before counting: two owners disabling each other at
        # once cannot both pass and leave the program without one.
        if (
            owning
            and (demoting or disabling)
            and await self.repository.active_owners(conn, program_id, lock=True) <= 1
        ):
            raise Conflict(
                "this is the program's last owner: make someone else owner first",
                field="role" if demoting else "status",
            )
        await self.repository.update(conn, staff_id, values)
        if values.get("status") == "disabled":
            await self.repository.revoke_sessions(conn, staff_id, now)
        after = await self.get(conn, program_id, staff_id)
        await self.audit.record(
            conn,
            program_id,
            "staff.updated",
            subject_type="staff",
            subject_id=staff_id,
            now=now,
            before=_audited(before),
            after=_audited(after),
        )
        return after

    async def sign_in(
        self, conn: AsyncConnection, data: SignIn, now: datetime, *, user_agent: str | None
    ) -> SessionOut | Unauthorized:
        """A new session for the right e-mail, password (and code, if enabled). A refusal
        is returned, not raised, so that the transaction keeps the count of wrong passwords:
        the caller commits, then answers 401. Every wrong answer is the same, so it tells
        nothing of which part was wrong or whether the account exists; the account rests
        after repeated wrong passwords."""
        try:
            email = normalise_email(data.email)
        except InvalidInput:
            domain.password_matches(None, data.password)
            return Unauthorized(WRONG_CREDENTIALS)
        rows = await self.repository.by_email(conn, email, data.program, lock=True)
        # Every account of the e-mail costs one hash check, a resting one too, so neither
        # the answer nor its time tells whether an account exists or rests.
        matching = []
        for row in rows or [None]:
            matches = domain.password_matches(row.password_hash if row else None, data.password)
            if row is None or _resting(row, now):
                continue
            if not matches:
                await self._failed(conn, row, now, "password")
            elif row.status == "active":
                matching.append(row)
        if not matching:
            return Unauthorized(WRONG_CREDENTIALS)
        if len(matching) > 1:
            raise InvalidInput(
                "this e-mail and password open accounts in several programs: give the program's id",
                field="program",
            )
        row = matching[0]
        values: dict[str, Any] = {"failed_sign_ins": 0, "locked_until": None}
        if row.totp_enabled:
            if not data.totp:
                return Unauthorized(CODE_NEEDED)
            step = domain.totp_step(row.totp_secret, data.totp, now, row.totp_last_step)
            if step is None:
                # A wrong code counts as a wrong password does: guessing codes rests the
                # account as soon as guessing passwords would.
                await self._failed(conn, row, now, "code")
                return Unauthorized(WRONG_CREDENTIALS)
            values["totp_last_step"] = step
        token = domain.new_session_token()
        expires = domain.session_expiry(now)
        await self.repository.insert_session(
            conn,
            {
                "id": new_id(),
                "program_id": row.program_id,
                "staff_id": row.id,
                "token_hash": domain.token_hash(token),
                "created_at": now,
                "expires_at": expires,
                "revoked_at": None,
                "user_agent": (user_agent or "")[:300] or None,
            },
        )
        await self.repository.update(conn, row.id, {**values, "last_sign_in_at": now})
        await self.audit.record(
            conn,
            row.program_id,
            "staff.signed_in",
            subject_type="staff",
            subject_id=row.id,
            now=now,
            actor=Actor(ActorKind.STAFF, row.id, row.name),
        )
        return SessionOut(
            token=token, expires_at=expires, staff=await self.get(conn, row.program_id, row.id)
        )

    async def _failed(
        self,
        conn: AsyncConnection,
        row: Any,
        now: datetime,
        what: str,
        *,
        signing_in: bool = True,
    ) -> None:
        """Count a wrong password or code of the account (five in a row rest it) and log
        it as ``staff.sign_in_failed``. Signing in, the actor is the account itself;
        otherwise (a check in a session) whoever is acting, so that the request needs no
        other entry."""
        failed = int(row.failed_sign_ins) + 1
        until = domain.locked_until(failed, now)
        await self.repository.update(
            conn, row.id, {"failed_sign_ins": 0 if until else failed, "locked_until": until}
        )
        await self.audit.record(
            conn,
            row.program_id,
            "staff.sign_in_failed",
            subject_type="staff",
            subject_id=row.id,
            now=now,
            after={"wrong": what, "locked_until": until.isoformat() if until else None},
            actor=Actor(ActorKind.STAFF, row.id, row.name) if signing_in else None,
        )

    async def _checked(
        self, conn: AsyncConnection, row: Any, now: datetime, what: str, right: bool
    ) -> KopilkaError | None:
        """The refusal of a password or code asked again in a session (to change the
        password, to turn the authenticator on or off), or None if ``right``. A wrong one
        counts as a wrong sign-in does, so a stolen session cannot guess on where sign-in
        would rest the account; while it rests, nothing is checked."""
        field = "current_password" if what == "password" else "code"
        if _resting(row, now):
            self.audit.nothing_changed()
            return TooManyRequests(RESTING, field=field, retry_after=domain.LOCK_MINUTES * 60)
        if not right:
            await self._failed(conn, row, now, what, signing_in=False)
            return InvalidInput(WRONG_PASSWORD if what == "password" else WRONG_CODE, field=field)
        if row.failed_sign_ins:
            await self.repository.update(conn, row.id, {"failed_sign_ins": 0})
        return None

    async def principal(self, conn: AsyncConnection, token: str, now: datetime) -> Principal:
        """The caller a session token stands for; 401 if it is unknown, ended or expired,
        or its account disabled."""
        row = await self.repository.session_with_staff(conn, domain.token_hash(token), now)
        if row is None or row.status != "active":
            raise Unauthorized("the session has ended: sign in again")
        role = Role(row.role)
        return Principal(
            key_id=row.session_id,
            program_id=row.program_id,
            scopes=frozenset(),
            permissions=ROLE_PERMISSIONS[role],
            staff_id=row.id,
            name=row.name,
            stores=None if row.stores is None else frozenset(row.stores),
        )

    async def session_is_live(
        self, conn: AsyncConnection, principal: Principal, now: datetime
    ) -> None:
        if not await self.repository.session_is_live(conn, principal.key_id, now):
            raise Unauthorized("the session has ended: sign in again")

    async def sign_out(self, conn: AsyncConnection, principal: Principal, now: datetime) -> None:
        staff_id = _staff_id(principal)
        await self.repository.revoke_sessions(conn, staff_id, now, only=principal.key_id)
        await self.audit.record(
            conn,
            principal.program_id,
            "staff.signed_out",
            subject_type="staff",
            subject_id=staff_id,
            now=now,
        )

    async def end_sessions(
        self, conn: AsyncConnection, program_id: UUID, staff_id: UUID, now: datetime
    ) -> int:
        """Sign a staff member out everywhere (a lost laptop)."""
        await self.get(conn, program_id, staff_id)
        ended = await self.repository.revoke_sessions(conn, staff_id, now)
        await self.audit.record(
            conn,
            program_id,
            "staff.sessions_ended",
            subject_type="staff",
            subject_id=staff_id,
            now=now,
            after={"sessions": ended},
        )
        return ended

    async def change_password(
        self, conn: AsyncConnection, principal: Principal, data: PasswordChange, now: datetime
    ) -> KopilkaError | None:
        """A new password; every other session of the account ends. A wrong current
        password is counted as a wrong sign-in and its refusal returned, not raised (as
        ``sign_in``'s): the caller commits the count, then raises it."""
        row = await self._own_row(conn, principal)
        right = domain.password_matches(row.password_hash, data.current_password)
        refusal = await self._checked(conn, row, now, "password", right)
        if refusal is not None:
            return refusal
        new = domain.checked_password(data.new_password, field="new_password")
        await self.repository.update(
            conn, row.id, {"password_hash": domain.hash_password(new), "updated_at": now}
        )
        await self.repository.revoke_sessions(conn, row.id, now, keep=principal.key_id)
        await self.audit.record(
            conn,
            principal.program_id,
            "staff.password_changed",
            subject_type="staff",
            subject_id=row.id,
            now=now,
        )
        return None

    async def start_totp(
        self, conn: AsyncConnection, principal: Principal, now: datetime
    ) -> TotpSetup:
        """A new secret for the authenticator app; it takes effect once a code from it is
        confirmed (``confirm_totp``), so a half-done set-up never locks the account."""
        row = await self._own_row(conn, principal)
        if row.totp_enabled:
            raise Conflict("the authenticator is already on: turn it off first", field="totp")
        secret = domain.new_totp_secret()
        await self.repository.update(
            conn, row.id, {"totp_secret": secret, "totp_last_step": None, "updated_at": now}
        )
        return TotpSetup(secret=secret, uri=domain.totp_uri(secret, row.email))

    async def confirm_totp(
        self, conn: AsyncConnection, principal: Principal, code: str, now: datetime
    ) -> StaffOut | KopilkaError:
        """Turn the authenticator on with a code it shows. A wrong code is counted as a
        wrong sign-in and its refusal returned, not raised: the caller commits, then raises
        it."""
        row = await self._own_row(conn, principal)
        if row.totp_secret is None or row.totp_enabled:
            raise Conflict("start the authenticator's set-up first", field="totp")
        step = domain.totp_step(row.totp_secret, code, now, row.totp_last_step)
        refusal = await self._checked(conn, row, now, "code", step is not None)
        if refusal is not None:
            return refusal
        await self.repository.update(
            conn, row.id, {"totp_enabled": True, "totp_last_step": step, "updated_at": now}
        )
        await self.audit.record(
            conn,
            principal.program_id,
            "staff.totp_enabled",
            subject_type="staff",
            subject_id=row.id,
            now=now,
        )
        return await self.get(conn, principal.program_id, row.id)

    async def disable_totp(
        self, conn: AsyncConnection, principal: Principal, code: str, now: datetime
    ) -> StaffOut | KopilkaError:
        """Turn the authenticator off with a code it shows; a wrong code as for
        ``confirm_totp``."""
        row = await self._own_row(conn, principal)
        if not row.totp_enabled:
            raise Conflict("the authenticator is not on", field="totp")
        right = domain.totp_step(row.totp_secret, code, now, row.totp_last_step) is not None
        refusal = await self._checked(conn, row, now, "code", right)
        if refusal is not None:
            return refusal
        await self.repository.update(
            conn,
            row.id,
            {"totp_enabled": False, "totp_secret": None, "totp_last_step": None, "updated_at": now},
        )
        await self.audit.record(
            conn,
            principal.program_id,
            "staff.totp_disabled",
            subject_type="staff",
            subject_id=row.id,
            now=now,
        )
        return await self.get(conn, principal.program_id, row.id)

    async def can_handle_tickets(
        self, conn: AsyncConnection, program_id: UUID, staff_id: UUID
    ) -> bool:
        """Whether ``staff_id`` is an active staff member of the program whose role
        handles tickets (someone a ticket may be assigned to)."""
        row = await self.repository.get(conn, program_id, staff_id)
        return (
            row is not None
            and row.status == "active"
            and Permission.TICKETS_HANDLE in ROLE_PERMISSIONS[Role(row.role)]
        )

    async def ticket_handlers(self, conn: AsyncConnection, program_id: UUID) -> list[StaffRef]:
        """The active staff a ticket may be assigned to (their role handles tickets), by
        name."""
        roles = [
            str(role)
            for role, granted in ROLE_PERMISSIONS.items()
            if Permission.TICKETS_HANDLE in granted
        ]
        rows = await self.repository.active_with_roles(conn, program_id, roles)
        return [StaffRef(id=row.id, name=row.name) for row in rows]

    async def pending_totp(self, conn: AsyncConnection, principal: Principal) -> TotpSetup | None:
        """The authenticator set-up this staff member started and has not confirmed yet (its
        secret, to show again until a code confirms it); None if there is none."""
        row = await self._own_row(conn, principal)
        if row.totp_enabled or row.totp_secret is None:
            return None
        return TotpSetup(secret=row.totp_secret, uri=domain.totp_uri(row.totp_secret, row.email))

    async def me(self, conn: AsyncConnection, principal: Principal) -> StaffOut:
        return _out(await self._own_row(conn, principal))

    async def _own_row(self, conn: AsyncConnection, principal: Principal) -> Any:
        row = await self.repository.get(conn, principal.program_id, _staff_id(principal), lock=True)
        if row is None:
            raise Unauthorized("the session has ended: sign in again")
        return row


def _resting(row: Any, now: datetime) -> bool:
    return row.locked_until is not None and as_utc(row.locked_until) > now


def _staff_id(principal: Principal) -> UUID:
    if principal.staff_id is None:
        raise Forbidden("only a signed-in staff member can do this (not an API key)")
    return principal.staff_id


def _stores(stores: list[str] | None) -> list[str] | None:
    return None if stores is None else sorted({s.strip() for s in stores if s.strip()})


staff_service = StaffService()
