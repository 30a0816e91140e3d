"""Structural checks of the rendered Asterisk files against the dialplan contract.

Every context, extension, Goto target and FastAGI route the files refer to exists; every AMI
action the controller sends is allowed by the rendered manager.conf user and every event it
subscribes to reaches it; every application, function, sound and dialplan feature the
templates use is one the recorded traces document (or is flagged in docs/asterisk.md); and
the rendered contexts are exactly the ones written in docs/dialplan.md.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from dialer.asterisk_conf import contract
from dialer.asterisk_conf.render import (
    APP_MODULES,
    FUNCTION_MODULES,
    agi_url,
    render_files,
    seat_names,
    supervisor_names,
)
from dialer.config import AsteriskSettings, Settings, TrunkSettings
from tests.unit.asterisk_conf_parse import (
    Dialplan,
    goto_targets,
    parse_dialplan,
    parse_sections,
    typed_sections,
)

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def fake_secrets(settings: Settings) -> dict[str, dict[str, str]]:
    """Deterministic secrets for every phone, the AMI user and every trunk."""
    return {
        "seats": {n: f"test-{n}-pw" for n in seat_names(settings)},
        "supervisors": {n: f"test-{n}-pw" for n in supervisor_names(settings)},
        "ami": {settings.ami.username: "test-ami-secret"},
        "trunks": {t.name: f"test-{t.name}-pw" for t in settings.asterisk.trunks},
    }


def changed_settings() -> Settings:
    """A site that differs from the defaults in everything the renderer reads."""
    return Settings.model_validate(
        {
            "ami": {"port": 6038, "username": "ctl", "secret": "ami-from-settings"},
            "agi": {"public_host": "10.0.0.5", "port": 4600},
            "site": {"name": "north-office"},
            "inbound": {"music_class": "hold-hindi"},
            "asterisk": {
                "seat_count": 5,
                "seat_prefix": "desk",
                "supervisor_count": 1,
                "supervisor_prefix": "boss",
                "sip_bind": "10.0.0.2:5070",
                "tls_bind": "10.0.0.2:5071",
                "login_extension": "7000",
                "pause_code": "#1",
                "unpause_code": "#2",
                "next_code": "#3",
                "logout_code": "#9",
                "disconnect_code": "**",
                "codecs": ["alaw", "g722"],
                "dids": ["01140001000", "+911140002000"],
                "abandon_prompt": "custom/sorry",
                "external_address": "203.0.113.10",
                "local_nets": ["10.0.0.0/8"],
                "seat_networks": ["10.0.1.0/24"],
                "rtp_start": 12000,
                "rtp_end": 12999,
                "trunks": [
                    {
                        "name": "airtel",
                        "dial_template": "PJSIP/{number}@airtel",
                        "host": "sip.airtel.example",
                        "port": 5061,
                        "transport": "tls",
                        "username": "0114000",
                        "secret": "trunk-from-settings",
                        "registration": True,
                        "match": ["198.51.100.0/28", "198.51.100.77"],
                    },
                    {
                        "name": "backup",
                        "dial_template": "PJSIP/{number}@backup",
                        "host": "192.0.2.9",
                    },
                ],
            },
        }
    )


SITES = {"default": Settings(), "changed": changed_settings()}


@pytest.fixture(params=sorted(SITES))
def site(request: pytest.FixtureRequest) -> tuple[Settings, dict[str, str]]:
    settings = SITES[request.param]
    files, _ = render_files(settings, fake_secrets(settings))
    return settings, files


# --------------------------------------------------------------------------- dialplan


def check_dialplan(settings: Settings, plan: Dialplan) -> None:
    """Every structural promise of extensions.conf, as assertions."""
    a = settings.asterisk
    assert tuple(plan.contexts) == contract.CONTEXTS
    # Goto/GotoIf targets, the Originate target and the Bridge F() target all exist.
    for step in plan.steps():
        for target in goto_targets(step):
            assert plan.has_target(*target), f"line {step.lineno}: {step.app} -> {target}"
    for ctx, exten, prio in (
        contract.ORIGINATE_TARGET,
        contract.WRAPUP_TARGET,
        contract.AGENT_LOOP_TARGET,
    ):
        assert plan.has_target(ctx, exten, str(prio))
    # No dead ends: every extension ends in Hangup or an unconditional Goto (h runs after
    # the hang-up), priorities count from 1, labels are unique per extension.
    for ctx, extens in plan.contexts.items():
        for exten, steps in extens.items():
            assert [s.priority for s in steps] == list(range(1, len(steps) + 1))
            labels = [s.label for s in steps if s.label]
            assert len(labels) == len(set(labels)), (ctx, exten)
            if exten != "h":
                assert steps[-1].app in ("Hangup", "Goto"), f"{ctx},{exten} ends in {steps[-1]}"
            for i, step in enumerate(steps):
                if step.app in ("GotoIf", "WaitExten", "AGI", "AMD"):
                    assert i + 1 < len(steps), f"{ctx},{exten}: {step.app} is last"
    # FastAGI: every AGI() goes to the controller's host:port, on a contract route with its
    # contract parameter, and every contract route is used.
    used_routes = set()
    for step in plan.steps():
        if step.app != "AGI":
            continue
        m = re.fullmatch(r"agi://([^/]+)/([a-z/]+)\?([a-z]+)=\$\{[A-Z_()a-z]+\}", step.args)
        assert m, step
        assert m.group(1) == f"{settings.agi.public_host}:{settings.agi.port}"
        assert contract.AGI_ROUTES[m.group(2)] == m.group(3)
        used_routes.add(m.group(2))
    assert used_routes == set(contract.AGI_ROUTES)
    # UserEvents: names and headers as the contract lists them, every one sent somewhere.
    sent = {}
    for step in plan.steps():
        if step.app == "UserEvent":
            name, *headers = step.args.split(",")
            sent[name] = tuple(h.split(":")[0] for h in headers)
    assert sent == contract.USER_EVENTS
    # The codes and numbers the controller expects are extensions where they should be.
    loop = plan.contexts[contract.CTX_AGENT_LOOP]
    for code in (a.pause_code, a.unpause_code, a.next_code, a.logout_code):
        assert code in loop
    assert {"s", "i", "t"} <= set(loop)
    assert set(plan.contexts[contract.CTX_SEAT]) == {a.login_extension, "i"}
    assert set(plan.contexts[contract.CTX_INBOUND]) == {*a.dids, "_X."}
    # Only variables the contract names or Asterisk sets are read.
    known = {
        *contract.ORIGINATE_VARIABLES,
        *contract.AGI_SET_VARIABLES,
        *contract.AMI_SET_VARIABLES,
        *("AMDSTATUS", "AMDCAUSE", "AGISTATUS", "CHANNEL", "EXTEN", "INVALID_EXTEN"),
        *("CALLERID(all)", "CALLERID(num)", "CHANNEL(endpoint)"),
    }
    for step in plan.steps():
        for var in re.findall(r"\$\{([^}]+)\}", step.args):
            assert var in known, f"line {step.lineno}: ${{{var}}}"
    assert plan.settings["globals"]["ABANDON_PROMPT"] == a.abandon_prompt


def test_dialplan_structure(site: tuple[Settings, dict[str, str]]) -> None:
    settings, files = site
    check_dialplan(settings, parse_dialplan(files["extensions.conf"]))


def test_goto_check_catches_a_missing_target() -> None:
    settings = Settings()
    files, _ = render_files(settings, fake_secrets(settings))
    broken = files["extensions.conf"].replace("Goto(s,wait)", "Goto(s,wiat)", 1)
    with pytest.raises(AssertionError, match="wiat"):
        check_dialplan(settings, parse_dialplan(broken))


def test_dead_end_check_catches_a_missing_hangup() -> None:
    settings = Settings()
    files, _ = render_files(settings, fake_secrets(settings))
    text = files["extensions.conf"]
    supervisor = text.index("[dialer-supervisor]")
    broken = text[:supervisor] + text[supervisor:].replace(" same => n,Hangup(16)\n", "")
    with pytest.raises(AssertionError, match="ends in"):
        check_dialplan(settings, parse_dialplan(broken))


def _contract_blocks() -> dict[str, list[str]]:
    """The code block under each ``### `dialer-...` `` heading of docs/dialplan.md."""
    text = (DOCS / "dialplan.md").read_text(encoding="utf-8")
    blocks = {}
    for m in re.finditer(r"^### `([a-z-]+)`.*?\n```\n(.*?)```", text, re.S | re.M):
        blocks[m.group(1)] = m.group(2).splitlines()
    return blocks


def test_rendered_contexts_are_exactly_the_contract(site: tuple[Settings, dict[str, str]]) -> None:
    settings, files = site
    a = settings.asterisk
    values = {f"{{asterisk.{k}}}": str(v) for k, v in a.model_dump().items()}
    values["{agi}"] = agi_url(settings)
    blocks = _contract_blocks()
    assert set(blocks) == set(contract.CONTEXTS)
    rendered = parse_dialplan(files["extensions.conf"])
    by_context: dict[str, list[str]] = {}
    ctx = None
    for raw in files["extensions.conf"].splitlines():
        line = raw.split(";")[0].rstrip() if not raw.startswith(" same") else raw.rstrip()
        if line.startswith("["):
            ctx = line.strip("[]")
            continue
        if ctx in rendered.contexts and line.strip():
            by_context.setdefault(ctx, []).append(line)
    for name, lines in blocks.items():
        expected: list[str] = []
        for line in lines:
            line = re.sub(r"\s+;.*$", "", line)
            for key, value in values.items():
                line = line.replace(key, value)
            expected.append(line)
        if name == contract.CTX_INBOUND:
            per_did = expected
            expected = [line.replace("<DID>", did) for did in (*a.dids, "_X.") for line in per_did]
        assert by_context[name] == expected, name


# --------------------------------------------------------------------------- pjsip


def test_pjsip_endpoints_point_at_existing_contexts(site: tuple[Settings, dict[str, str]]) -> None:
    settings, files = site
    plan = parse_dialplan(files["extensions.conf"])
    pjsip = files["pjsip.conf"]
    endpoints = typed_sections(pjsip, "endpoint")
    aors = typed_sections(pjsip, "aor")
    auths = typed_sections(pjsip, "auth")
    transports = typed_sections(pjsip, "transport")
    for name, body in endpoints.items():
        assert body["context"][0] in plan.contexts
        assert body["allow_transfer"] == ["no"], name  # REFER refused everywhere
        for aor in body["aors"][0].split(","):
            assert aor in aors
        for key in ("auth", "outbound_auth"):
            if key in body:
                assert body[key][0] in auths
        if "transport" in body:
            assert body["transport"][0] in transports
    for name, body in typed_sections(pjsip, "identify").items():
        assert body["endpoint"][0] in endpoints, name
    for name, body in typed_sections(pjsip, "registration").items():
        assert body["outbound_auth"][0] in auths, name
        assert body["transport"][0] in transports, name
    phones = [*seat_names(settings), *supervisor_names(settings)]
    for phone in phones:
        assert endpoints[phone]["auth"] == [f"{phone}-auth"]
        assert auths[f"{phone}-auth"]["username"] == [phone]
        assert aors[phone]["max_contacts"] == ["1"]
    contexts = {n: b["context"][0] for n, b in endpoints.items()}
    assert {n for n, c in contexts.items() if c == contract.CTX_SEAT} == set(seat_names(settings))
    assert {n for n, c in contexts.items() if c == contract.CTX_SUPERVISOR} == set(
        supervisor_names(settings)
    )
    assert {n for n, c in contexts.items() if c == contract.CTX_INBOUND} == {
        t.name for t in settings.asterisk.trunks
    }
    # No anonymous endpoint: unknown callers match nothing.
    globals_ = typed_sections(pjsip, "global")["global"]
    assert "anonymous" not in globals_["endpoint_identifier_order"][0]
    assert "anonymous" not in endpoints


# --------------------------------------------------------------------------- manager.conf


def _manager_user(settings: Settings, text: str) -> dict[str, list[str]]:
    sections = dict(parse_sections(text))
    return sections[settings.ami.username]


def test_every_controller_action_is_allowed(site: tuple[Settings, dict[str, str]]) -> None:
    settings, files = site
    user = _manager_user(settings, files["manager.conf"])
    write = set(user["write"][0].split(","))
    assert "all" not in write
    for action in contract.AMI_ACTIONS:
        allowed = contract.AMI_ACTION_CLASSES[action]
        assert not allowed or write & set(allowed), action
    # Originate of ChanSpy (dialer monitor) needs no extra class; Originate of AGI/System
    # would need "system", which must be deliberate.
    for app in contract.ORIGINATE_APPS:
        assert not any(s in app.lower() for s in contract.ORIGINATE_APPS_NEEDING_SYSTEM)


def test_every_subscribed_event_reaches_the_controller(
    site: tuple[Settings, dict[str, str]],
) -> None:
    settings, files = site
    user = _manager_user(settings, files["manager.conf"])
    read = set(user["read"][0].split(","))
    assert "all" not in read
    for event in contract.AMI_EVENTS:
        assert contract.AMI_EVENT_CLASSES[event] in read, event
    filters = [k for k in user if k.startswith("eventfilter")]
    names = [re.fullmatch(r"eventfilter\(action\(include\),name\((\w+)\)\)", f) for f in filters]
    assert all(names)
    assert [m.group(1) for m in names if m] == list(contract.AMI_EVENTS)
    assert user["deny"] == ["0.0.0.0/0.0.0.0"]
    assert user["permit"] == ["127.0.0.1/255.255.255.255"]


def test_event_classes_match_the_recorded_traces(traces_dir: Path) -> None:
    """The Privilege header Asterisk 22 sent with each subscribed event, from the captures."""
    seen: dict[str, set[str]] = {}
    for path in traces_dir.glob("*.ami"):
        text = path.read_bytes().decode("utf-8", "replace")
        for block in text.split("\r\n\r\n"):
            m = re.match(r"Event: (\w+)\r\nPrivilege: ([\w,]+)", block)
            if m:
                seen.setdefault(m.group(1), set()).add(m.group(2))
    for event, cls in contract.AMI_EVENT_CLASSES.items():
        if event in seen:  # DialBegin/DialEnd/HangupRequest may not be in every corpus
            assert seen[event] == {f"{cls},all"}, event
    recorded = set(contract.AMI_EVENTS) & set(seen)
    assert len(recorded) >= len(contract.AMI_EVENTS) - 2, set(contract.AMI_EVENTS) - recorded


def test_filter_can_be_switched_off() -> None:
    settings = Settings.model_validate({"asterisk": {"ami_event_filter": False}})
    files, _ = render_files(settings, fake_secrets(settings))
    assert "eventfilter" not in files["manager.conf"]


# --------------------------------------------------------------------------- documented features

#: What the templates may use because the traces' README shows Asterisk 22 doing it, with the
#: README text that shows it.
DOCUMENTED = {
    "app:NoOp": "NoOp(",
    "app:Answer": "Answer()",
    "app:AGI": "AGI(agi://127.0.0.1:4573/",
    "app:GotoIf": 'GotoIf($["${AGISTATUS}" = "FAILURE"]?abandon)',
    "app:Goto": "Goto(s,wait)",
    "app:Hangup": "Hangup(16)",
    "app:Playback": "Playback(agent-incorrect&vm-goodbye)",
    "app:UserEvent": "UserEvent(DialerAbandon,Call: ${CALLID},AGISTATUS: ${AGISTATUS})",
    "app:AMD": "AMD()",
    "app:WaitExten": "WaitExten(600)",
    "func:CALLERID(all)": "${CALLERID(all)}",
    "exten:s": "exten => s,1,",
    "exten:i": "exten => i,1,",
    "exten:t": "exten => t,1,",
    "op:=": '" = "',
    "sound:agent-incorrect": "agent-incorrect",
    "sound:vm-goodbye": "vm-goodbye",
    "sound:tt-allbusy": "tt-allbusy",
    "bridge:h": "hF(agent-wrapup-loop^s^1)",
    "bridge:F": "F(agent-wrapup-loop^s^1)",
    "feature:disconnect": "disconnect => *0",
    "amd:total_analysis_time": "total_analysis_time 5000",
}
#: Used, but no trace shows it; docs/asterisk.md names each under "Not covered by the traces".
FLAGGED = {
    "func:CHANNEL(endpoint)",
    "func:CALLERID(num)",
    "exten:h",
    "exten:_X.",
    "op:!=",
    "op:|",
    "sound:ss-noservice",
    "sound:invalid",
}


def _features_used(files: dict[str, str]) -> set[str]:
    plan = parse_dialplan(files["extensions.conf"])
    used = {f"app:{s.app}" for s in plan.steps()}
    for step in plan.steps():
        used |= {f"func:{f}" for f in re.findall(r"\$\{([A-Z]+\([a-z]+\))\}", step.args)}
        if step.app == "Playback" and not step.args.startswith("$"):
            used |= {f"sound:{s}" for s in step.args.split("&")}
        for expr in re.findall(r"\$\[(.*?)\]\?", step.args):
            used |= {f"op:{op}" for op in re.findall(r'" (!=|=|\||&|<|>) "', expr)}
    for extens in plan.contexts.values():
        used |= {f"exten:{e}" for e in extens if e in ("s", "i", "t", "h") or e.startswith("_")}
    used.add(f"sound:{plan.settings['globals']['ABANDON_PROMPT']}")
    if "disconnect =>" in files["features.conf"]:
        used.add("feature:disconnect")
    used |= {"bridge:h", "bridge:F"} if contract.BRIDGE_OPTIONS.startswith("hF(") else set()
    used.add("amd:total_analysis_time")
    return used


def test_only_documented_or_flagged_features_are_used(traces_dir: Path) -> None:
    readme = (traces_dir.parent / "README.md").read_text(encoding="utf-8")
    for key, evidence in DOCUMENTED.items():
        assert evidence in readme, f"{key}: README does not show {evidence!r}"
    settings = Settings()
    files, _ = render_files(settings, fake_secrets(settings))
    used = _features_used(files)
    unknown = used - set(DOCUMENTED) - FLAGGED
    assert not unknown, f"not documented by the traces and not flagged: {sorted(unknown)}"
    assert FLAGGED <= used, f"flagged but no longer used: {sorted(FLAGGED - used)}"
    doc = (DOCS / "asterisk.md").read_text(encoding="utf-8")
    section = doc.split("## Not covered by the traces", 1)[1]
    for key in FLAGGED:
        assert f"`{key.split(':', 1)[1]}`" in section, f"{key} not flagged in docs/asterisk.md"


# --------------------------------------------------------------------------- property test

_code = st.text(alphabet="0123456789*#", min_size=1, max_size=3)


@st.composite
def random_sites(draw: st.DrawFn) -> Settings:
    codes = draw(st.lists(_code, min_size=5, max_size=5, unique=True))
    dids = draw(st.lists(st.from_regex(r"\+?[0-9]{3,12}", fullmatch=True), max_size=4, unique=True))
    login = draw(st.from_regex(r"[0-9*#]{1,6}", fullmatch=True))
    trunk_names = draw(
        st.lists(
            st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True),
            min_size=1,
            max_size=3,
            unique=True,
        )
    )
    trunks = [
        TrunkSettings(name=n, host=draw(st.sampled_from(["", "192.0.2.1", "sip.example"])))
        for n in trunk_names
        if not re.fullmatch(r"(seat\d{3}|sup\d{2})", n)
    ] or [TrunkSettings()]
    asterisk = AsteriskSettings(
        seat_count=draw(st.integers(1, 120)),
        supervisor_count=draw(st.integers(0, 12)),
        pause_code=codes[0],
        unpause_code=codes[1],
        next_code=codes[2],
        logout_code=codes[3],
        disconnect_code=codes[4],
        login_extension=login,
        dids=tuple(dids),
        trunks=tuple(trunks),
    )
    return Settings(asterisk=asterisk)


@hyp_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_sites())
def test_any_valid_site_renders_a_consistent_dialplan(settings: Settings) -> None:
    files, _ = render_files(settings, fake_secrets(settings))
    check_dialplan(settings, parse_dialplan(files["extensions.conf"]))
    endpoints = typed_sections(files["pjsip.conf"], "endpoint")
    assert len(endpoints) == (
        settings.asterisk.seat_count
        + settings.asterisk.supervisor_count
        + len(settings.asterisk.trunks)
    )


def _option_keys(files: dict[str, str]) -> dict[str, set[str]]:
    """file -> every ``key`` set in it (event filters count as one key, ``eventfilter``)."""
    keys: dict[str, set[str]] = {}
    for name, text in files.items():
        if name == "extensions.conf":
            continue
        found = {k.split("(")[0] for _, body in parse_sections(text) for k in body}
        keys[name] = found
    return keys


def test_config_options_are_from_the_lab_files_or_flagged(traces_dir: Path) -> None:
    """Options the lab's own Asterisk 22 files used are known to load; the rest are listed."""
    lab = traces_dir.parent / "lab-conf"
    readme = (traces_dir.parent / "README.md").read_text(encoding="utf-8")
    used: dict[str, set[str]] = {}
    for settings in SITES.values():
        files, _ = render_files(settings, fake_secrets(settings))
        for name, keys in _option_keys(files).items():
            used.setdefault(name, set()).update(keys)
    doc = (DOCS / "asterisk.md").read_text(encoding="utf-8")
    section = doc.split("## Options not in the lab files", 1)[1].split("\n## ", 1)[0]
    for name, keys in sorted(used.items()):
        lab_file = lab / name
        lab_keys = (
            {k.split("(")[0] for _, body in parse_sections(lab_file.read_text()) for k in body}
            if lab_file.exists()
            else set()
        )
        for key in sorted(keys - lab_keys):
            if name == "amd.conf":
                assert f"{key} " in readme, f"amd.conf {key} not in the README's AMD settings"
            else:
                assert f"`{name}`: " in section, f"{name} missing in docs/asterisk.md"
                line = section.split(f"`{name}`: ", 1)[1].split("\n", 1)[0]
                assert f"`{key}`" in line, f"{name} option {key} not flagged in docs/asterisk.md"


def test_modules_conf_loads_every_application_the_flow_runs(
    site: tuple[Settings, dict[str, str]],
) -> None:
    """Templates' apps and functions, FastAGI EXECs and Originate apps all have their module."""
    _, files = site
    loads = set(dict(parse_sections(files["modules.conf"]))["modules"]["load"])
    plan = parse_dialplan(files["extensions.conf"])
    apps = {s.app for s in plan.steps()} | set(contract.AGI_EXEC_APPS)
    apps |= set(contract.ORIGINATE_APPS) | {"MixMonitor"}  # the MixMonitor action needs it
    for app in sorted(apps):
        assert app in APP_MODULES, f"{app}: which module provides it?"
        module = APP_MODULES[app]
        assert module is None or module in loads, f"{app} needs {module}"
    functions = {
        f.split("(")[0] for s in plan.steps() for f in re.findall(r"\$\{([A-Z]+)\(", s.args)
    }
    for function in functions:
        assert FUNCTION_MODULES[function] in loads, function
    # the dialplan itself, PJSIP, RTP and the bridge technologies Bridge() and *0 rely on
    for module in (
        "pbx_config.so",
        "chan_pjsip.so",
        "res_rtp_asterisk.so",
        "bridge_simple.so",
        "bridge_builtin_features.so",
    ):
        assert module in loads


def test_music_on_hold_classes(site: tuple[Settings, dict[str, str]]) -> None:
    settings, files = site
    classes = [n for n, _ in parse_sections(files["musiconhold.conf"]) if n != "general"]
    assert classes == list(dict.fromkeys(["default", settings.inbound.music_class]))


def _doc_section(title: str) -> str:
    text = (DOCS / "dialplan.md").read_text(encoding="utf-8")
    return text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def test_contract_constants_are_the_written_contract() -> None:
    """contract.py and docs/dialplan.md name the same routes, UserEvents, actions and events."""
    routes = re.findall(r"^\| `([a-z/]+)` \| `([a-z]+)=", _doc_section("FastAGI routes"), re.M)
    assert dict(routes) == contract.AGI_ROUTES
    events = {
        name: tuple(re.findall(r"`([A-Za-z]+)`", headers))
        for name, headers in re.findall(
            r"^\| `(\w+)` \| ([^|]+) \|", _doc_section("UserEvents"), re.M
        )
    }
    assert events == contract.USER_EVENTS
    ami = _doc_section("AMI actions the controller uses")
    actions_part, events_part = ami.split("subscribes to:", 1)
    actions = re.findall(r"`([A-Z][A-Za-z]+)`", actions_part.split("The rendered", 1)[0])
    assert tuple(actions) == contract.AMI_ACTIONS
    assert tuple(re.findall(r"`([A-Za-z]+)`", events_part)) == contract.AMI_EVENTS
    variables = re.findall(r"^\| `([A-Z_]+)` \|", _doc_section("Channel variables"), re.M)
    assert set(contract.ORIGINATE_VARIABLES) | set(contract.AGI_SET_VARIABLES) | set(
        contract.AMI_SET_VARIABLES
    ) == set(variables)
