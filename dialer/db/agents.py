"""Agents are people (70 staff share 35 seats): accounts, hashed PINs, lockout, assignments.

PINs are hashed with scrypt (N=2**14, r=8, p=1) and a random 16-byte salt per agent, stored as
``scrypt$N$r$p$salt$hash`` (base64).  After :data:`MAX_FAILURES` wrong PINs in a row the agent is
locked for :data:`LOCKOUT`; a right PIN resets the count.  The login FastAGI handler calls::

    check = await verify_pin(session, agent_number, pin, now)   # -> PinCheck
    if check.ok: ...  # check.reason in ok / unknown / disabled / locked / wrong_pin / no_pin

Hashing runs in a worker thread so the event loop (AMI, FastAGI) never stalls on it.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.campaigns import get_campaign
from dialer.db.models import Agent, AgentCampaign, Campaign

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
_N, _R, _P = 2**14, 8, 1
PIN_DIGITS = (4, 8)


class AgentError(ValueError):
    """An agent that does not exist, or a value that is not valid."""


@dataclass(frozen=True, slots=True)
class PinCheck:
    """The answer to a login attempt."""

    ok: bool
    reason: str  # ok / unknown / disabled / locked / wrong_pin / no_pin
    agent_number: str
    name: str = ""
    locked_until: datetime | None = None
    failures: int = 0
    campaigns: tuple[int, ...] = ()
    languages: tuple[str, ...] = ()


def hash_pin(pin: str, salt: bytes | None = None) -> str:
    """The stored form of a PIN (scrypt with a fresh random salt)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def pin_matches(pin: str, stored: str) -> bool:
    """Constant-time check of a PIN against :func:`hash_pin` output."""
    try:
        scheme, n, r, p, salt_b64, hash_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(hash_b64)
        digest = hashlib.scrypt(
            pin.encode(), salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected)


#: Compared against when the agent is unknown, so timing does not tell who exists.
_DUMMY = hash_pin("0000", salt=b"\0" * 16)


def validate_pin(pin: str) -> str:
    """A PIN must be 4-8 digits (typed on a phone keypad)."""
    if not pin.isdigit() or not PIN_DIGITS[0] <= len(pin) <= PIN_DIGITS[1]:
        raise AgentError(f"a PIN must be {PIN_DIGITS[0]}-{PIN_DIGITS[1]} digits")
    return pin


def validate_number(number: str) -> str:
    """An agent number is 2-16 digits (typed on a phone keypad)."""
    number = number.strip()
    if not number.isdigit() or not 2 <= len(number) <= 16:
        raise AgentError(f"agent number {number!r} must be 2-16 digits")
    return number


async def verify_pin(session: AsyncSession, agent_number: str, pin: str, now: datetime) -> PinCheck:
    """Check a login; counts failures and locks the agent after MAX_FAILURES in a row."""
    agent = await session.scalar(
        select(Agent).where(Agent.number == agent_number.strip()).with_for_update()
    )
    if agent is None:
        await asyncio.to_thread(pin_matches, pin, _DUMMY)
        return PinCheck(False, "unknown", agent_number)
    if agent.disabled:
        return PinCheck(False, "disabled", agent.number, agent.name)
    if agent.locked_until is not None and agent.locked_until > now:
        return PinCheck(False, "locked", agent.number, agent.name, agent.locked_until)
    if not agent.pin_hash:
        return PinCheck(False, "no_pin", agent.number, agent.name)
    if not await asyncio.to_thread(pin_matches, pin, agent.pin_hash):
        agent.failed_pins += 1
        if agent.failed_pins >= MAX_FAILURES:
            agent.locked_until = now + LOCKOUT
            agent.failed_pins = 0
            return PinCheck(False, "locked", agent.number, agent.name, agent.locked_until)
        return PinCheck(False, "wrong_pin", agent.number, agent.name, None, agent.failed_pins)
    agent.failed_pins = 0
    agent.locked_until = None
    campaigns = (
        await session.scalars(
            select(AgentCampaign.campaign_id).where(AgentCampaign.agent_id == agent.id)
        )
    ).all()
    return PinCheck(
        True,
        "ok",
        agent.number,
        agent.name,
        campaigns=tuple(sorted(campaigns)),
        languages=tuple(agent.languages or ()),
    )


async def get_agent(session: AsyncSession, number: str) -> Agent:
    """An agent by number; raises AgentError if there is none."""
    agent = await session.scalar(select(Agent).where(Agent.number == number.strip()))
    if agent is None:
        raise AgentError(f"no agent {number!r}")
    return agent


async def add_agent(
    session: AsyncSession,
    number: str,
    name: str,
    pin: str,
    *,
    languages: Iterable[str] = (),
    skills: Iterable[str] = (),
    campaigns: Iterable[str] = (),
) -> Agent:
    """Create an agent with a hashed PIN and campaign assignments."""
    number = validate_number(number)
    validate_pin(pin)
    if await session.scalar(select(Agent.id).where(Agent.number == number)) is not None:
        raise AgentError(f"agent {number} already exists")
    agent = Agent(
        number=number,
        name=name,
        pin_hash=await asyncio.to_thread(hash_pin, pin),
        disabled=False,
        failed_pins=0,
        languages=sorted({x.strip() for x in languages if x.strip()}),
        skills=sorted({x.strip() for x in skills if x.strip()}),
    )
    session.add(agent)
    await session.flush()
    await assign_campaigns(session, agent, campaigns)
    return agent


async def assign_campaigns(session: AsyncSession, agent: Agent, campaigns: Iterable[str]) -> None:
    """Replace an agent's campaign assignments (names or ids)."""
    refs = [c.strip() for c in campaigns if c.strip()]
    rows: list[Campaign] = []
    for ref in refs:
        try:
            rows.append(await get_campaign(session, ref))
        except ValueError as exc:
            raise AgentError(str(exc)) from None
    await session.execute(delete(AgentCampaign).where(AgentCampaign.agent_id == agent.id))
    for row in {r.id: r for r in rows}.values():
        session.add(AgentCampaign(agent_id=agent.id, campaign_id=row.id))
    await session.flush()


async def set_pin(session: AsyncSession, number: str, pin: str) -> Agent:
    """Set a new PIN; clears failures and any lockout."""
    validate_pin(pin)
    agent = await get_agent(session, number)
    agent.pin_hash = await asyncio.to_thread(hash_pin, pin)
    agent.failed_pins = 0
    agent.locked_until = None
    return agent


async def set_disabled(session: AsyncSession, number: str, disabled: bool = True) -> Agent:
    """Disable (or re-enable) an agent; a disabled agent cannot log in."""
    agent = await get_agent(session, number)
    agent.disabled = disabled
    return agent


@dataclass(frozen=True, slots=True)
class AgentImportResult:
    """What `agents import` did."""

    added: int
    generated_pins: dict[str, str]  # agent number -> PIN, only for rows without a PIN


async def import_agents(session: AsyncSession, path: Path) -> AgentImportResult:
    """Add agents from a CSV with columns number,name[,pin,languages,skills,campaigns].

    Lists inside a cell are separated by ``;``.  A row without a PIN gets a random 6-digit one,
    returned so it can be handed to the person (never logged).  All rows or none.
    """
    with path.open(newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    generated: dict[str, str] = {}
    for i, row in enumerate(rows, start=2):
        clean = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        pin = clean.get("pin", "")
        if not pin:
            pin = f"{secrets.randbelow(10**6):06d}"
            generated[clean.get("number", "")] = pin

        def split(key: str, row: dict[str, str] = clean) -> list[str]:
            return [x for x in row.get(key, "").split(";") if x.strip()]

        try:
            await add_agent(
                session,
                clean.get("number", ""),
                clean.get("name", ""),
                pin,
                languages=split("languages"),
                skills=split("skills"),
                campaigns=split("campaigns"),
            )
        except AgentError as exc:
            raise AgentError(f"{path}: line {i}: {exc}") from None
    return AgentImportResult(len(rows), generated)
