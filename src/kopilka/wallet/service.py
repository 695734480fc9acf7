"""Wallet passes: each program's settings (validated on save, secrets never answered), the
member's card as a signed Apple pass or a Google save link, Apple's pass web service (the
devices registered for a pass, which passes changed, the latest pass) and the pushes that
tell devices a pass changed. Never commits.

A card is read through the services that own it (members, ledger, tiers); when it last
changed is read from the ``updated_at`` those features keep on their rows.
"""

import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.audit.service import audit_service
from kopilka.errors import NotFound, Unauthorized
from kopilka.ledger.service import ledger_service
from kopilka.members.service import member_service
from kopilka.programs.service import ProgramContext, program_service
from kopilka.tiers.domain import level
from kopilka.tiers.service import tier_service
from kopilka.wallet.apns import ApnsRequest, Credentials, pass_update_requests
from kopilka.wallet.domain import (
    AppleLook,
    CardData,
    NoCardNumber,
    WalletNotSetUp,
    authentication_token,
    loyalty_object,
    member_of,
    origin_of,
    pass_json,
    save_claims,
    serial_of,
    token_matches,
)
from kopilka.wallet.repository import Registration, WalletRepository, wallet_repository
from kopilka.wallet.schemas import WalletSettingsIn, WalletSettingsOut
from kopilka.wallet.settings import (
    Stored,
    answer_of,
    apple_section,
    google_section,
    read_settings,
)

SAVED = "wallet.settings.saved"


@dataclass(frozen=True)
class PassFile:
    """A signed ``.pkpass`` and when the card it shows last changed."""

    content: bytes
    modified: datetime
    serial: str


@dataclass(frozen=True)
class PassHolder:
    """A pass Apple's web service was asked about, its token checked."""

    program: ProgramContext
    stored: Stored
    member_id: UUID


@dataclass(frozen=True)
class PassPushes:
    """The pushes telling one program's devices that passes changed."""

    requests: list[ApnsRequest]
    credentials: Credentials
    members: dict[str, UUID]  # push token → member


class WalletService:
    def __init__(self, repository: WalletRepository = wallet_repository) -> None:
        self.repository = repository

    # --- settings ------------------------------------------------------------------------

    async def settings(self, conn: AsyncConnection, program: ProgramContext) -> WalletSettingsOut:
        """The program's settings as answered (nothing set until saved)."""
        stored = await self._stored(conn, program.id)
        if stored is None:
            return WalletSettingsOut(public_url=None, apple=None, google=None, updated_at=None)
        return answer_of(stored)

    async def save_settings(
        self, conn: AsyncConnection, program: ProgramContext, body: WalletSettingsIn, now: datetime
    ) -> WalletSettingsOut:
        """Replace the settings. Certificates and keys left out keep the saved ones; every
        certificate and key (given or kept) is checked: it parses, has not expired, the key
        opens and is the certificate's, the WWDR certificate issued it."""
        row = await self.repository.settings(conn, program.id)
        before = read_settings(row) if row is not None else None
        apple_document, apple_key, apple_password = apple_section(body.apple, before, now)
        google_document, google_key = google_section(body.google, before)
        values: dict[str, Any] = {
            "document": {
                "public_url": body.public_url,
                "apple": apple_document,
                "google": google_document,
            },
            "apple_pass_type": body.apple.pass_type_identifier if body.apple else None,
            "apple_key": apple_key,
            "apple_key_password": apple_password,
            "google_key": google_key,
            "updated_at": now,
        }
        await self.repository.save_settings(conn, program.id, values, secrets.token_hex(32))
        saved = await self._stored(conn, program.id)
        assert saved is not None
        answer = answer_of(saved)
        # The entry keeps the answer, never what was sent: the keys stay out of the log.
        await audit_service.record(
            conn,
            program.id,
            SAVED,
            subject_type="wallet_settings",
            subject_id=program.id,
            now=now,
            before=answer_of(before).model_dump(mode="json") if before else None,
            after=answer.model_dump(mode="json"),
        )
        return answer

    async def _stored(self, conn: AsyncConnection, program_id: UUID) -> Stored | None:
        row = await self.repository.settings(conn, program_id)
        return read_settings(row) if row is not None else None

    # --- the member's card ---------------------------------------------------------------

    async def apple_pass(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID, now: datetime
    ) -> PassFile:
        """The member's card as a signed Apple Wallet pass."""
        stored = await self._stored(conn, program.id)
        if stored is None or stored.apple is None:
            raise WalletNotSetUp("Apple Wallet passes are not set up", field="apple")
        return await self._signed_pass(conn, program, stored, member_id, now)

    async def google_save_url(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        now: datetime,
        *,
        points_label: str,
        tier_label: str,
    ) -> str:
        """The link that saves the member's card to Google Wallet (labels in the member's
        language)."""
        stored = await self._stored(conn, program.id)
        if stored is None or stored.google is None or stored.row.google_key is None:
            raise WalletNotSetUp("Google Wallet cards are not set up", field="google")
        settings = stored.google
        card = await self._card(conn, program, member_id, now)
        loyalty = loyalty_object(
            settings.issuer_id,
            settings.class_id,
            card,
            points_label=points_label,
            tier_label=tier_label,
        )
        claims = save_claims(
            settings.service_account_email, origin_of(stored.public_url), loyalty, now
        )
        from cryptography.hazmat.primitives.asymmetric import rsa

        from kopilka.wallet import certificates, google

        key = certificates.private_key_of(stored.row.google_key, None, "google.private_key")
        assert isinstance(key, rsa.RSAPrivateKey)  # checked when saved
        return google.save_url(claims, key)

    async def _card(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID, now: datetime
    ) -> CardData:
        profile = await member_service.get(conn, program, member_id)
        card_number = next((i.value for i in profile.identifiers if i.kind == "card"), None)
        if card_number is None:
            raise NoCardNumber("the member has no card number", field="card")
        balances = await ledger_service.balances(conn, program, member_id)
        main = program.settings.points_currency()
        tier_name = None
        ladder = program.settings.tiers
        if ladder is not None:
            tier_id = await tier_service.current_tier(conn, program, member_id, now)
            tier_name = level(ladder, tier_id).name if tier_id else None
        return CardData(
            serial=serial_of(member_id),
            program_name=program.name,
            card_number=card_number,
            name=profile.name,
            points=balances[main].available if main in balances else 0,
            tier=tier_name,
        )

    async def _signed_pass(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        stored: Stored,
        member_id: UUID,
        now: datetime,
    ) -> PassFile:
        settings = stored.apple
        assert settings is not None and settings.certificate and settings.wwdr_certificate
        card = await self._card(conn, program, member_id, now)
        modified = (await self._modified(conn, stored, [member_id]))[member_id]
        look = AppleLook(
            pass_type_identifier=settings.pass_type_identifier,
            team_identifier=settings.team_identifier,
            organization_name=settings.organization_name,
            description=settings.description,
            logo_text=settings.logo_text,
            background_color=settings.background_color,
            foreground_color=settings.foreground_color,
            label_color=settings.label_color,
        )
        token = authentication_token(stored.row.token_secret, card.serial)
        document = pass_json(look, card, stored.public_url, token)
        # cryptography (about 17 MB) is loaded by the first pass signed, not at start.
        from kopilka.wallet import apple, certificates

        files = apple.pass_files(document, settings.foreground_color, settings.background_color)
        key = certificates.private_key_of(
            stored.row.apple_key or "", stored.row.apple_key_password, "apple.private_key"
        )
        content = apple.pkpass(
            files,
            certificates.loaded_certificate(settings.certificate),
            key,
            certificates.loaded_certificate(settings.wwdr_certificate),
            modified,
        )
        return PassFile(content, modified, card.serial)

    async def _modified(
        self, conn: AsyncConnection, stored: Stored, member_ids: Collection[UUID]
    ) -> dict[UUID, datetime]:
        """When each member's pass last changed: their card, or the program's settings
        (colours, texts) if those changed later."""
        changes = await self.repository.last_changes(conn, member_ids)
        settings_at = stored.row.updated_at
        return {m: max(changes.get(m, settings_at), settings_at) for m in member_ids}

    # --- Apple's pass web service ----------------------------------------------------------

    async def pass_holder(
        self, conn: AsyncConnection, pass_type_identifier: str, serial: str, token: str | None
    ) -> PassHolder:
        """The program and member of a pass, if ``token`` is its authentication token
        (``Unauthorized`` otherwise, whatever is wrong: nothing is told about passes)."""
        member_id = member_of(serial)
        if member_id is None or not token:
            raise Unauthorized("not a pass of this server")
        for row in await self.repository.settings_of_pass_type(conn, pass_type_identifier):
            if token_matches(row.token_secret, serial, token):
                stored = read_settings(row)
                if stored.apple is None:
                    break
                program = await program_service.get(conn, row.program_id)
                try:
                    await member_service.get(conn, program, member_id)
                except NotFound:
                    break
                return PassHolder(program, stored, member_id)
        raise Unauthorized("not a pass of this server")

    async def register_device(
        self,
        conn: AsyncConnection,
        holder: PassHolder,
        device_library_id: str,
        push_token: str,
        now: datetime,
    ) -> bool:
        """The device wants updates of the pass (True: a new registration)."""
        apple_settings = holder.stored.apple
        assert apple_settings is not None
        registration = Registration(
            program_id=holder.program.id,
            member_id=holder.member_id,
            pass_type_identifier=apple_settings.pass_type_identifier,
            push_token=push_token,
        )
        return await self.repository.register(conn, registration, device_library_id, now)

    async def unregister_device(
        self, conn: AsyncConnection, holder: PassHolder, device_library_id: str
    ) -> None:
        apple_settings = holder.stored.apple
        assert apple_settings is not None
        await self.repository.unregister(
            conn, holder.member_id, device_library_id, apple_settings.pass_type_identifier
        )

    async def updated_passes(
        self,
        conn: AsyncConnection,
        device_library_id: str,
        pass_type_identifier: str,
        since: datetime | None,
    ) -> tuple[list[str], datetime] | None:
        """The serial numbers of the device's passes changed after ``since`` (all of them
        without it) and the newest change among them; None if none changed."""
        pairs = await self.repository.members_of_device(
            conn, device_library_id, pass_type_identifier
        )
        if not pairs:
            return None
        rows = await self.repository.settings_of_programs(conn, {p for p, _ in pairs})
        changed: dict[UUID, datetime] = {}
        for program_id, row in rows.items():
            stored = read_settings(row)
            if stored.apple is None:
                continue
            members = [m for p, m in pairs if p == program_id]
            changed.update(await self._modified(conn, stored, members))
        fresh = {m: at for m, at in changed.items() if since is None or at > since}
        if not fresh:
            return None
        return sorted(serial_of(m) for m in fresh), max(fresh.values())

    async def latest_pass(
        self,
        conn: AsyncConnection,
        holder: PassHolder,
        now: datetime,
        unless_since: datetime | None = None,
    ) -> PassFile | datetime:
        """The pass as it is now; or, if it has not changed since ``unless_since`` (to the
        second, as HTTP dates go), only when it last changed."""
        if unless_since is not None:
            modified = (await self._modified(conn, holder.stored, [holder.member_id]))[
                holder.member_id
            ]
            if modified.replace(microsecond=0) <= unless_since:
                return modified
        return await self._signed_pass(conn, holder.program, holder.stored, holder.member_id, now)

    # --- pushes ----------------------------------------------------------------------------

    async def pass_update_pushes(
        self, conn: AsyncConnection, member_ids: Collection[UUID]
    ) -> list[PassPushes]:
        """The APNs pushes telling devices that these members' passes changed, for the
        programs that turned ``apns`` on (none for the others: their devices ask)."""
        registrations = await self.repository.registrations_of_members(conn, member_ids)
        if not registrations:
            return []
        rows = await self.repository.settings_of_programs(
            conn, {r.program_id for r in registrations}
        )
        pushes = []
        for program_id, row in rows.items():
            stored = read_settings(row)
            settings = stored.apple
            if settings is None or not settings.apns or not settings.certificate:
                continue
            mine = [
                r
                for r in registrations
                if r.program_id == program_id
                and r.pass_type_identifier == settings.pass_type_identifier
            ]
            if not mine:
                continue
            requests = pass_update_requests(
                settings.pass_type_identifier, sorted({r.push_token for r in mine})
            )
            credentials = Credentials(
                settings.certificate, row.apple_key or "", row.apple_key_password
            )
            pushes.append(
                PassPushes(requests, credentials, {r.push_token: r.member_id for r in mine})
            )
        return pushes

    async def forget_devices(self, conn: AsyncConnection, gone: Sequence[tuple[UUID, str]]) -> None:
        """Registrations of devices that no longer hold the pass (APNs said so)."""
        await self.repository.forget_push_tokens(conn, gone)

    async def forget_members(self, conn: AsyncConnection, member_ids: Sequence[UUID]) -> int:
        """Forget the devices holding these members' passes (an erasure: a device id and its
        push token are the person's data)."""
        return await self.repository.forget_members(conn, list(member_ids))


wallet_service = WalletService()
