"""The rendered configuration, loaded into a real Asterisk 22 (opt-in: DIALER_TEST_AMI=host:port).

Render the files with ``dialer asterisk render --config X --out DIR``, start Asterisk on them,
then run with ``DIALER_TEST_AMI=host:port`` and ``DIALER_TEST_CONFIG=X`` (the same settings:
seat names, trunks, the FastAGI port, the AMI user and secret; ``DIALER_TEST_AMI_USER`` and
``DIALER_TEST_AMI_SECRET`` override the last two).  Skipped without DIALER_TEST_AMI: CI has no
Asterisk.  The FastAGI tests bind ``agi.listen_host:agi.port`` themselves, so no controller
may be running there.

Only the rendered dialplan is used: the "customer" and the "agent phone" are Local channels
into ``dialer-inbound`` and ``dialer-seat`` (each answers, then calls FastAGI), so no SIP
peer and no sound file is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from dialer.agi import AgiServer
from dialer.agi.server import AgiRouter, AgiSession
from dialer.ami import AmiClient
from dialer.asterisk_conf import contract
from dialer.asterisk_conf.render import agi_url, seat_names, supervisor_names
from dialer.config import AgiSettings, AmiSettings, Settings, load_settings
from dialer.protocol.ami import Message

TARGET = os.environ.get("DIALER_TEST_AMI", "")
WAIT = 20.0  # seconds any one step of a call may take on a loaded machine

pytestmark = [
    pytest.mark.asterisk,
    pytest.mark.skipif(not TARGET, reason="set DIALER_TEST_AMI=host:port to test a real Asterisk"),
]


@pytest.fixture(scope="module")
def site() -> Settings:
    """The settings the loaded files were rendered from."""
    return load_settings(os.environ.get("DIALER_TEST_CONFIG") or None)


def _ami_settings(site: Settings) -> AmiSettings:
    host, _, port = TARGET.rpartition(":")
    return AmiSettings(
        host=host or "127.0.0.1",
        port=int(port),
        username=os.environ.get("DIALER_TEST_AMI_USER", site.ami.username),
        secret=os.environ.get("DIALER_TEST_AMI_SECRET", site.ami.secret.get_secret_value()),
        auth="md5",
    )


@contextlib.asynccontextmanager
async def _ami(site: Settings) -> AsyncIterator[AmiClient]:
    client = AmiClient(_ami_settings(site))
    task = asyncio.create_task(client.run())
    try:
        await client.wait_connected(10)
        yield client
    finally:
        await client.close()
        await asyncio.wait_for(task, 10)


async def _cli(client: AmiClient, command: str) -> str:
    result = await client.action("Command", {"Command": command})
    return "\n".join(result.response.get_all("Output"))


@dataclass
class _Events:
    """Every event of the link, and a way to wait for one."""

    seen: list[Message] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def add(self, msg: Message) -> None:
        async with self.changed:
            self.seen.append(msg)
            self.changed.notify_all()

    async def wait(self, pred: Callable[[Message], bool], after: int = 0) -> Message:
        """The first event from index ``after`` on that matches ``pred``."""
        async with asyncio.timeout(WAIT), self.changed:
            while True:
                for msg in self.seen[after:]:
                    if pred(msg):
                        return msg
                await self.changed.wait()


def _user_event(name: str, **headers: str) -> Callable[[Message], bool]:
    def pred(msg: Message) -> bool:
        if msg.name != "UserEvent" or msg.get("UserEvent") != name:
            return False
        return all(msg.get(k) == v for k, v in headers.items())

    return pred


@dataclass
class _Sessions:
    """FastAGI sessions by route, as they arrive."""

    by_path: dict[str, list[AgiSession]] = field(default_factory=dict)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def add(self, session: AgiSession) -> None:
        async with self.arrived:
            self.by_path.setdefault(session.path, []).append(session)
            self.arrived.notify_all()

    async def first(self, path: str) -> AgiSession:
        return (await self.some(path, 1))[0]

    async def some(self, path: str, count: int) -> list[AgiSession]:
        """The first ``count`` sessions of ``path``, once they are there."""
        async with asyncio.timeout(WAIT), self.arrived:
            while len(self.by_path.get(path, ())) < count:
                await self.arrived.wait()
            return self.by_path[path][:count]


@contextlib.asynccontextmanager
async def _agi(site: Settings, router: AgiRouter) -> AsyncIterator[AgiServer]:
    settings = AgiSettings(listen_host=site.agi.listen_host, port=site.agi.port)
    server = AgiServer(settings, router)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


async def _originate_customer(client: AmiClient, site: Settings, call_id: str, amd: str) -> None:
    """A customer call the controller's way, with a Local channel as the far end."""
    await client.action(
        "Originate",
        {
            "Channel": "Local/5550199@dialer-inbound",
            "Context": contract.ORIGINATE_TARGET[0],
            "Exten": contract.ORIGINATE_TARGET[1],
            "Priority": str(contract.ORIGINATE_TARGET[2]),
            "Async": "true",
            "ChannelId": call_id,
            "OtherChannelId": f"{call_id}-2",
            "Timeout": "15000",
            "CallerID": "Dialer <5550100>",
            "Variable": [
                f"CALLID={call_id}",
                "CAMPAIGN=1",
                "LEADID=1",
                f"DIALER_AMD={amd}",
                f"ABANDON_PROMPT={site.asterisk.abandon_prompt}",
            ],
        },
    )


# ----------------------------------------------------------------------- the loaded files


async def test_every_context_of_the_contract_is_loaded_with_its_fastagi_url(
    site: Settings,
) -> None:
    async with _ami(site) as client:
        for context in contract.CONTEXTS:
            out = await _cli(client, f"dialplan show {context}")
            assert f"[ Context '{context}' created by 'pbx_config' ]" in out, out
        out_ctx = await _cli(client, f"dialplan show {contract.CTX_OUT}")
        assert f"{agi_url(site)}/{contract.ROUTE_OUTBOUND_ANSWERED}?call=${{CALLID}}" in out_ctx
        loop = await _cli(client, f"dialplan show {contract.CTX_AGENT_LOOP}")
        for code in (site.asterisk.pause_code, site.asterisk.unpause_code):
            assert f"'{code}' =>" in loop


async def test_seats_supervisors_and_trunks_are_pjsip_endpoints(site: Settings) -> None:
    async with _ami(site) as client:
        out = await _cli(client, "pjsip show endpoints")
    loaded = set(re.findall(r"^\s*Endpoint:\s+(\S+?)(?:/\S*)?\s", out, re.MULTILINE))
    expected = {*seat_names(site), *supervisor_names(site), *(t.name for t in site.asterisk.trunks)}
    assert expected <= loaded, sorted(expected - loaded)


async def test_the_ami_user_has_every_class_the_controller_needs(site: Settings) -> None:
    async with _ami(site) as client:
        out = await _cli(client, f"manager show user {_ami_settings(site).username}")
    perms = dict(re.findall(r"^\s*(read perm|write perm):\s*(.*)$", out, re.MULTILINE))
    read = set(perms["read perm"].replace(" ", "").split(","))
    write = set(perms["write perm"].replace(" ", "").split(","))
    assert set(contract.AMI_EVENT_CLASSES.values()) <= read
    for action, classes in contract.AMI_ACTION_CLASSES.items():
        assert not classes or write & set(classes), action


# ----------------------------------------------------------------------- calls


async def test_controller_down_plays_the_abandon_prompt_and_says_so(site: Settings) -> None:
    call_id = f"rt-{secrets.token_hex(4)}"
    events = _Events()
    async with _ami(site) as client:
        client.subscribe(events.add, "UserEvent")
        await _originate_customer(client, site, call_id, amd="0")
        got = await events.wait(_user_event("DialerAbandon", Call=call_id))
    assert got.get("AGISTATUS") == "FAILURE"


async def test_amd_verdict_reaches_ami_and_fastagi_alike(site: Settings) -> None:
    call_id = f"rt-{secrets.token_hex(4)}"
    events = _Events()
    sessions = _Sessions()
    router = AgiRouter()
    seen: dict[str, str | None] = {}

    async def answered(session: AgiSession) -> None:
        seen["AMDSTATUS"] = await session.get_variable("AMDSTATUS")
        await sessions.add(session)
        await session.hangup()

    async def ivr(session: AgiSession) -> None:  # the customer: says nothing, then leaves
        await sessions.add(session)
        await session.wait_hangup(WAIT)

    router.add(contract.ROUTE_OUTBOUND_ANSWERED, answered)
    router.add(contract.ROUTE_IVR_MAIN, ivr)
    async with _agi(site, router), _ami(site) as client:
        client.subscribe(events.add, "UserEvent")
        await _originate_customer(client, site, call_id, amd="1")
        amd = await events.wait(_user_event("DialerAMD", Call=call_id))
        session = await sessions.first(contract.ROUTE_OUTBOUND_ANSWERED)
    assert amd.get("AMDStatus") in {"HUMAN", "MACHINE", "NOTSURE", "HANGUP"}
    assert seen["AMDSTATUS"] == amd.get("AMDStatus")
    assert session.params == {"call": call_id}
    assert session.uniqueid == call_id  # ChannelId of the Originate [11]


async def test_login_hold_bridge_and_wrapup_follow_the_dialplan_contract(site: Settings) -> None:
    call_id = f"rt-{secrets.token_hex(4)}"
    agent_id = "4711"
    events = _Events()
    sessions = _Sessions()
    router = AgiRouter()
    result: dict[str, str | None] = {}
    customer_may_leave = asyncio.Event()
    handed_off = asyncio.Event()

    async def login(session: AgiSession) -> None:
        await session.set_variable("AGENTID", agent_id)
        await session.set_variable("AGENT_STATE", "READY")
        # A failed command makes Asterisk end the session with AGISTATUS=FAILURE; the agent
        # must still reach the hold loop.
        missing = await session.stream_file("dialer-test-no-such-sound")
        assert missing.result == "-1"
        await sessions.add(session)

    async def answered(session: AgiSession) -> None:
        await sessions.add(session)
        agent = await sessions.first(contract.ROUTE_AGENT_LOGIN)
        customer_may_leave.set()
        try:
            await session.exec("Bridge", agent.channel, contract.BRIDGE_OPTIONS)
            # the customer has hung up by now: GET VARIABLE still works [22]
            result["BRIDGERESULT"] = await session.get_variable("BRIDGERESULT")
        finally:
            handed_off.set()

    async def customer(session: AgiSession) -> None:  # talks for a moment, then hangs up
        await sessions.add(session)
        await customer_may_leave.wait()
        await events.wait(lambda m: m.name == "BridgeEnter" and m.get("Uniqueid") == call_id)

    async def wrapup(session: AgiSession) -> None:
        await sessions.add(session)

    router.add(contract.ROUTE_AGENT_LOGIN, login)
    router.add(contract.ROUTE_OUTBOUND_ANSWERED, answered)
    router.add(contract.ROUTE_IVR_MAIN, customer)
    router.add(contract.ROUTE_AGENT_WRAPUP, wrapup)
    async with _agi(site, router), _ami(site) as client:
        client.subscribe(events.add)
        await client.action(
            "Originate",
            {
                "Channel": f"Local/{site.asterisk.login_extension}@{contract.CTX_SEAT}",
                "Application": "Wait",
                "Data": "60",
                "Async": "true",
            },
        )
        agent = await sessions.first(contract.ROUTE_AGENT_LOGIN)
        try:
            await events.wait(
                lambda m: (
                    m.name == "Newexten"
                    and m.get("Channel") == agent.channel
                    and m.get("Application") == "WaitExten"
                )
            )
            await _originate_customer(client, site, call_id, amd="0")
            wrap = await events.wait(_user_event("AgentWrapup", Agent=agent_id))
            finished = await sessions.first(contract.ROUTE_AGENT_WRAPUP)
            # back in the hold loop after wrap-up, the same channel
            await events.wait(
                lambda m: (
                    m.name == "Newexten"
                    and m.get("Channel") == agent.channel
                    and m.get("Context") == contract.CTX_AGENT_LOOP
                    and m.get("Application") == "WaitExten"
                ),
                after=events.seen.index(wrap),
            )
            async with asyncio.timeout(WAIT):
                await handed_off.wait()
        finally:
            await client.action("Hangup", {"Channel": agent.channel})
    assert result["BRIDGERESULT"] == "SUCCESS"
    assert wrap.get("Channel") == agent.channel
    assert finished.params == {"agent": agent_id}
    assert finished.channel == agent.channel
    if site.asterisk.ami_event_filter:  # manager.conf passes only what the controller uses
        assert {m.name for m in events.seen} <= set(contract.AMI_EVENTS)


async def test_inbound_numbers_reach_fastagi_as_dialled(site: Settings) -> None:
    numbers = [*site.asterisk.dids, "5550199"]  # the listed DIDs and one for the _X. catch-all
    sessions = _Sessions()
    router = AgiRouter()

    async def ivr(session: AgiSession) -> None:
        await sessions.add(session)

    router.add(contract.ROUTE_IVR_MAIN, ivr)
    async with _agi(site, router), _ami(site) as client:
        for number in numbers:
            await client.action(
                "Originate",
                {
                    "Channel": f"Local/{number}@{contract.CTX_INBOUND}",
                    "Application": "Wait",
                    "Data": "1",
                    "Async": "true",
                },
            )
        arrived = await sessions.some(contract.ROUTE_IVR_MAIN, len(numbers))
    got = sorted(s.params["did"] for s in arrived)
    assert got == sorted(numbers)  # a "+" stays a "+"
