"""IVR flows for people who dial in: the model, the validator and a pure step machine.

A *flow set* is what the office writes in one TOML or YAML file (see ``docs/ivr.md`` and the
shipped ``dialer/agi_scripts/default_ivr.toml``): the languages and their prompt sets, the DIDs
with their business hours and holidays, and named flows made of nodes.  :func:`parse_flow_set`
turns the decoded mapping into frozen objects and rejects anything doubtful with messages that
name the flow, the node and the key.  The rule that matters most: **a caller who never presses a
key always reaches the end**.  Every input node has a defined target for invalid input and for
timeouts, retries are bounded, and the graph of edges taken without any input (timeouts, ``next``
of non-input nodes, ``goto``) must have no cycle, so the validator proves that a silent caller
leaves the flow in a bounded number of steps.

:class:`IvrCall` runs one call through a flow as a pure state machine: it emits an
:class:`Action` (say, ask for digits, record, request a callback, join the queue, finish), the
FastAGI handler carries it out and feeds the :class:`Outcome` back.  No I/O, no clock (the start
time is an input), so every walk can be tested without sockets.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DIGITS: Final = frozenset("0123456789*#")
DEFAULT_DID: Final = "default"  # the DIDs entry used for any number not listed (dialplan `_X.`)
MAX_STEPS: Final = 500  # a run-time backstop; the validator already rules out silent loops
_DAY_NAMES: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_NAME_RE: Final = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
_HHMM_RE: Final = re.compile(r"^(\d\d):(\d\d)-(\d\d):(\d\d)$")


class FlowError(ValueError):
    """One or more problems in a flow file; ``problems`` holds one line per problem."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        head = f"{source}: {len(self.problems)} problem(s) in the IVR flows"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True, slots=True)
class Prompt:
    """One prompt in one language: a sound file (Asterisk name, no extension) and/or a text."""

    file: str | None = None
    text: str | None = None


class NodeType(enum.StrEnum):
    """The kinds of node a flow is made of."""

    PLAY = "play"
    MENU = "menu"
    LANGUAGE = "language"
    COLLECT = "collect"
    SURVEY = "survey"
    RECORD = "record"
    CALLBACK = "callback"
    QUEUE = "queue"
    GOTO = "goto"
    HANGUP = "hangup"


@dataclass(frozen=True, slots=True)
class Node:
    """One node.  Which fields matter depends on ``type`` (documented in docs/ivr.md)."""

    name: str
    type: NodeType
    prompts: tuple[str, ...] = ()
    next: str | None = None  # play, language, collect, survey, record, callback, goto target
    choices: tuple[tuple[str, str], ...] = ()  # digit -> node / language / answer value
    on_failure: str | None = None  # after the last invalid input or timeout; callback: no number
    timeout_seconds: float = 5.0
    retries: int = 2  # extra attempts after the first
    invalid_prompts: tuple[str, ...] = ()
    timeout_prompts: tuple[str, ...] = ()
    save_as: str | None = None  # collect: answer key; survey: the question id
    min_digits: int = 1
    max_digits: int = 1
    pattern: str | None = None  # collect: a regular expression the digits must match whole
    max_seconds: int = 120  # record
    silence_seconds: int = 5  # record
    beep: bool = True  # record
    campaign: str | None = None  # callback: campaign that dials it (None: the default)
    delay_minutes: int = 0  # callback: due this long after the request
    queue: str = "main"  # queue
    skill: str | None = None  # queue: required agent skill ("language" = the caller's language)
    priority: int = 0  # queue
    max_wait_seconds: float | None = None  # queue: None means the inbound.max_wait setting
    on_timeout: str | None = None  # queue: after the maximum wait
    on_no_agents: str | None = None  # queue: nobody logged in who could take the call
    result: str | None = None  # hangup: a label for the ledger

    def choice(self, digits: str) -> str | None:
        """The target of a DTMF choice, or None."""
        for key, target in self.choices:
            if key == digits:
                return target
        return None

    @property
    def choice_width(self) -> int:
        """How many digits a choice has (all choices of one node have the same width)."""
        return max((len(k) for k, _ in self.choices), default=1)


@dataclass(frozen=True, slots=True)
class Flow:
    """A named graph of nodes with a start node."""

    name: str
    start: str
    nodes: Mapping[str, Node]


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """Opening times per weekday (0 = Monday) in a time zone, and holiday dates."""

    timezone: str
    weekly: tuple[tuple[int, int, int], ...] = ()  # (weekday, open minute, close minute)
    holidays: frozenset[dt.date] = frozenset()
    always_open: bool = True

    def status(self, when: dt.datetime) -> str:
        """``open``, ``closed`` or ``holiday`` at an aware instant."""
        local = when.astimezone(ZoneInfo(self.timezone))
        if local.date() in self.holidays:
            return "holiday"
        if self.always_open:
            return "open"
        minute = local.hour * 60 + local.minute
        for day, start, end in self.weekly:
            if day == local.weekday() and start <= minute < end:
                return "open"
        return "closed"


@dataclass(frozen=True, slots=True)
class DidRoute:
    """What happens to a call on one DID: which flow, when it is open, where it goes when not."""

    did: str
    flow: str
    hours: BusinessHours
    closed: str | None = None  # node in the flow for outside business hours
    holiday: str | None = None  # node for holidays (default: ``closed``)
    language: str | None = None  # starting language (default: the flow set's default)


@dataclass(frozen=True, slots=True)
class FlowSet:
    """Everything one flow file defines."""

    source: str
    languages: tuple[str, ...]
    default_language: str
    prompts: Mapping[str, Mapping[str, Prompt]]  # language -> prompt id -> prompt
    flows: Mapping[str, Flow]
    dids: Mapping[str, DidRoute]

    def route(self, did: str) -> DidRoute:
        """The route for a DID: its own entry, else ``default``; KeyError if neither."""
        if did in self.dids:
            return self.dids[did]
        return self.dids[DEFAULT_DID]

    def prompt(self, language: str, prompt_id: str) -> Prompt:
        """A prompt in a language (the validator made sure every referenced one exists)."""
        return self.prompts[language][prompt_id]


# --------------------------------------------------------------------------- parsing

Raw: TypeAlias = Mapping[str, object]


class _Problems:
    """Collects problems so one run of the validator reports all of them."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")


def _where(flow: str, node: str | None = None, key: str | None = None) -> str:
    parts = [f"flow '{flow}'"]
    if node is not None:
        parts.append(f"node '{node}'")
    if key is not None:
        parts.append(f"key '{key}'")
    return ", ".join(parts)


def _as_prompt_list(value: object) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(str(v) for v in value)
    return None


_NODE_KEYS: Final[Mapping[NodeType, frozenset[str]]] = {
    NodeType.PLAY: frozenset({"prompt", "next"}),
    NodeType.MENU: frozenset(
        {
            "prompt",
            "choices",
            "timeout",
            "retries",
            "invalid_prompt",
            "timeout_prompt",
            "on_failure",
        }
    ),
    NodeType.LANGUAGE: frozenset(
        {"prompt", "choices", "timeout", "retries", "invalid_prompt", "timeout_prompt", "next"}
    ),
    NodeType.COLLECT: frozenset(
        {
            "prompt",
            "save_as",
            "min_digits",
            "max_digits",
            "pattern",
            "timeout",
            "retries",
            "invalid_prompt",
            "timeout_prompt",
            "next",
            "on_failure",
        }
    ),
    NodeType.SURVEY: frozenset(
        {
            "prompt",
            "question",
            "choices",
            "timeout",
            "retries",
            "invalid_prompt",
            "timeout_prompt",
            "next",
            "on_failure",
        }
    ),
    NodeType.RECORD: frozenset({"prompt", "max_seconds", "silence_seconds", "beep", "next"}),
    NodeType.CALLBACK: frozenset({"prompt", "campaign", "delay_minutes", "next", "on_failure"}),
    NodeType.QUEUE: frozenset(
        {"prompt", "queue", "skill", "priority", "max_wait", "on_timeout", "on_no_agents"}
    ),
    NodeType.GOTO: frozenset({"target"}),
    NodeType.HANGUP: frozenset({"prompt", "result"}),
}
_REQUIRED: Final[Mapping[NodeType, tuple[str, ...]]] = {
    NodeType.PLAY: ("prompt", "next"),
    NodeType.MENU: ("prompt", "choices", "on_failure"),
    NodeType.LANGUAGE: ("prompt", "choices", "next"),
    NodeType.COLLECT: ("prompt", "save_as", "max_digits", "next", "on_failure"),
    NodeType.SURVEY: ("prompt", "question", "choices", "next", "on_failure"),
    NodeType.RECORD: ("next",),
    NodeType.CALLBACK: ("next", "on_failure"),
    NodeType.QUEUE: ("on_timeout",),
    NodeType.GOTO: ("target",),
    NodeType.HANGUP: (),
}


class _NodeReader:
    """Reads typed values out of one node's raw table, recording problems."""

    def __init__(self, flow: str, name: str, raw: Raw, problems: _Problems) -> None:
        self.flow, self.name, self.raw, self.problems = flow, name, raw, problems

    def bad(self, key: str, message: str) -> None:
        self.problems.add(_where(self.flow, self.name, key), message)

    def text(self, key: str) -> str | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            self.bad(key, f"must be a non-empty string, got {value!r}")
            return None
        return value

    def number(self, key: str, default: float, low: float, high: float) -> float:
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.bad(key, f"must be a number, got {value!r}")
            return default
        if not low <= value <= high:
            self.bad(key, f"must be between {low:g} and {high:g}, got {value!r}")
            return default
        return float(value)

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.bad(key, f"must be a whole number, got {value!r}")
            return default
        if not low <= value <= high:
            self.bad(key, f"must be between {low} and {high}, got {value!r}")
            return default
        return value

    def prompts(self, key: str) -> tuple[str, ...]:
        if key not in self.raw:
            return ()
        got = _as_prompt_list(self.raw[key])
        if got is None or not all(got):
            self.bad(key, "must be a prompt id or a list of prompt ids")
            return ()
        return got

    def choices(self) -> tuple[tuple[str, str], ...]:
        value = self.raw.get("choices")
        if not isinstance(value, Mapping) or not value:
            self.bad("choices", "must be a non-empty table of DTMF key -> target")
            return ()
        out: list[tuple[str, str]] = []
        for key, target in value.items():
            key_s = str(key)
            if not key_s or any(ch not in DIGITS for ch in key_s):
                self.bad(f"choices.{key_s}", "a choice key must be DTMF digits (0-9 * #)")
                continue
            if not isinstance(target, str) or not target:
                self.bad(f"choices.{key_s}", f"target must be a non-empty string, got {target!r}")
                continue
            out.append((key_s, target))
        widths = {len(k) for k, _ in out}
        if len(widths) > 1:
            self.bad("choices", "all choice keys of one node must have the same number of digits")
        return tuple(sorted(out))


def _parse_node(flow: str, name: str, raw: object, problems: _Problems) -> Node | None:
    if not _NAME_RE.match(name):
        problems.add(_where(flow, name), "node names are letters, digits, '_', '-', '.'")
    if not isinstance(raw, Mapping):
        problems.add(_where(flow, name), "a node must be a table")
        return None
    type_raw = raw.get("type")
    try:
        node_type = NodeType(str(type_raw))
    except ValueError:
        kinds = ", ".join(t.value for t in NodeType)
        problems.add(_where(flow, name, "type"), f"unknown node type {type_raw!r} (one of {kinds})")
        return None
    r = _NodeReader(flow, name, raw, problems)
    allowed = _NODE_KEYS[node_type] | {"type"}
    for key in raw:
        if key not in allowed:
            r.bad(str(key), f"not a key of a {node_type.value} node")
    for key in _REQUIRED[node_type]:
        if key not in raw:
            r.bad(key, f"required for a {node_type.value} node")
    kwargs: dict[str, object] = {
        "name": name,
        "type": node_type,
        "prompts": r.prompts("prompt"),
        "invalid_prompts": r.prompts("invalid_prompt"),
        "timeout_prompts": r.prompts("timeout_prompt"),
        "next": r.text("target") if node_type is NodeType.GOTO else r.text("next"),
        "on_failure": r.text("on_failure"),
        "timeout_seconds": r.number("timeout", 5.0, 0.5, 60.0),
        "retries": r.integer("retries", 2, 0, 9),
    }
    if "choices" in raw:
        kwargs["choices"] = r.choices()
    if node_type is NodeType.COLLECT:
        kwargs["save_as"] = r.text("save_as")
        kwargs["max_digits"] = r.integer("max_digits", 1, 1, 32)
        kwargs["min_digits"] = r.integer("min_digits", 1, 1, 32)
        pattern = r.text("pattern")
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                r.bad("pattern", f"not a valid regular expression: {exc}")
        kwargs["pattern"] = pattern
    elif node_type in (NodeType.MENU, NodeType.LANGUAGE, NodeType.SURVEY):
        choices = kwargs.get("choices", ())
        assert isinstance(choices, tuple)
        kwargs["max_digits"] = max((len(k) for k, _ in choices), default=1)
        kwargs["min_digits"] = kwargs["max_digits"]
        if node_type is NodeType.SURVEY:
            kwargs["save_as"] = r.text("question")
    elif node_type is NodeType.RECORD:
        kwargs["max_seconds"] = r.integer("max_seconds", 120, 1, 3600)
        kwargs["silence_seconds"] = r.integer("silence_seconds", 5, 0, 60)
        beep = raw.get("beep", True)
        if not isinstance(beep, bool):
            r.bad("beep", f"must be true or false, got {beep!r}")
            beep = True
        kwargs["beep"] = beep
    elif node_type is NodeType.CALLBACK:
        kwargs["campaign"] = r.text("campaign")
        kwargs["delay_minutes"] = r.integer("delay_minutes", 0, 0, 60 * 24 * 30)
    elif node_type is NodeType.QUEUE:
        kwargs["queue"] = r.text("queue") or "main"
        kwargs["skill"] = r.text("skill")
        kwargs["priority"] = r.integer("priority", 0, -100, 100)
        kwargs["max_wait_seconds"] = (
            r.number("max_wait", 300.0, 5.0, 7200.0) if "max_wait" in raw else None
        )
        kwargs["on_timeout"] = r.text("on_timeout")
        kwargs["on_no_agents"] = r.text("on_no_agents")
    elif node_type is NodeType.HANGUP:
        kwargs["result"] = r.text("result")
    if node_type is NodeType.COLLECT and kwargs["min_digits"] > kwargs["max_digits"]:  # type: ignore[operator]
        r.bad("min_digits", "must not be larger than max_digits")
    return Node(**kwargs)  # type: ignore[arg-type]


def _parse_prompts(
    raw: object, languages: Sequence[str], problems: _Problems
) -> dict[str, dict[str, Prompt]]:
    out: dict[str, dict[str, Prompt]] = {lang: {} for lang in languages}
    if not isinstance(raw, Mapping):
        problems.add("prompts", "must be a table with one sub-table per language")
        return out
    for lang, table in raw.items():
        if lang not in out:
            problems.add(f"prompts.{lang}", f"language '{lang}' is not in languages")
            continue
        if not isinstance(table, Mapping):
            problems.add(f"prompts.{lang}", "must be a table of prompt id -> file or {text=...}")
            continue
        for pid, value in table.items():
            where = f"prompts.{lang}.{pid}"
            if isinstance(value, str) and value:
                out[lang][str(pid)] = Prompt(file=value)
            elif isinstance(value, Mapping) and set(value) <= {"file", "text"} and value:
                file_v, text_v = value.get("file"), value.get("text")
                if not all(v is None or (isinstance(v, str) and v) for v in (file_v, text_v)):
                    problems.add(where, "file and text must be non-empty strings")
                    continue
                out[lang][str(pid)] = Prompt(
                    file=file_v if isinstance(file_v, str) else None,
                    text=text_v if isinstance(text_v, str) else None,
                )
            else:
                problems.add(where, "must be a sound file name or a table {file=..., text=...}")
    return out


def _parse_day_spec(spec: str) -> list[int] | None:
    spec = spec.strip().lower()
    if spec in ("daily", "all"):
        return list(range(7))
    if "-" in spec:
        first, _, last = spec.partition("-")
        if first in _DAY_NAMES and last in _DAY_NAMES:
            a, b = _DAY_NAMES.index(first), _DAY_NAMES.index(last)
            return [d % 7 for d in range(a, b + 1 if b >= a else b + 8)]
        return None
    return [_DAY_NAMES.index(spec)] if spec in _DAY_NAMES else None


def _parse_ranges(value: object) -> list[tuple[int, int]] | None:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        return None
    out: list[tuple[int, int]] = []
    for item in items:
        m = _HHMM_RE.match(item) if isinstance(item, str) else None
        if m is None:
            return None
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if not (0 <= start < end <= 24 * 60 and m1 < 60 and m2 < 60):
            return None
        out.append((start, end))
    return out


def _parse_hours(where: str, raw: Raw, default_tz: str, problems: _Problems) -> BusinessHours:
    tz = raw.get("timezone", default_tz)
    if not isinstance(tz, str):
        problems.add(f"{where}.timezone", "must be a time zone name such as Asia/Kolkata")
        tz = default_tz
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        problems.add(f"{where}.timezone", f"unknown time zone {tz!r}")
        tz = "UTC"
    holidays: set[dt.date] = set()
    hol_raw = raw.get("holidays", [])
    if not isinstance(hol_raw, list | tuple):
        problems.add(f"{where}.holidays", "must be a list of dates (YYYY-MM-DD)")
        hol_raw = []
    for item in hol_raw:
        if isinstance(item, dt.date) and not isinstance(item, dt.datetime):
            holidays.add(item)  # TOML and YAML both decode bare dates
            continue
        try:
            holidays.add(dt.date.fromisoformat(str(item)))
        except ValueError:
            problems.add(f"{where}.holidays", f"{item!r} is not a date (YYYY-MM-DD)")
    hours_raw = raw.get("hours")
    if hours_raw is None:
        return BusinessHours(timezone=tz, holidays=frozenset(holidays), always_open=True)
    weekly: list[tuple[int, int, int]] = []
    if not isinstance(hours_raw, Mapping):
        problems.add(f"{where}.hours", 'must be a table such as { "mon-fri" = "09:00-18:00" }')
    else:
        for spec, ranges in hours_raw.items():
            days = _parse_day_spec(str(spec))
            parsed = _parse_ranges(ranges)
            if days is None:
                problems.add(f"{where}.hours.{spec}", "days are mon..sun, a range mon-fri or daily")
            if parsed is None:
                problems.add(
                    f"{where}.hours.{spec}", 'times are "HH:MM-HH:MM" or a list of them, start<end'
                )
            for day in days or []:
                weekly.extend((day, a, b) for a, b in parsed or [])
    return BusinessHours(
        timezone=tz, weekly=tuple(sorted(weekly)), holidays=frozenset(holidays), always_open=False
    )


def _parse_dids(
    raw: object, default_tz: str, problems: _Problems
) -> dict[str, tuple[DidRoute, Raw]]:
    out: dict[str, tuple[DidRoute, Raw]] = {}
    if not isinstance(raw, Mapping) or not raw:
        problems.add("dids", 'must be a table of DID -> { flow = "..." } (use "default" for any)')
        return out
    allowed = {"flow", "timezone", "hours", "holidays", "closed", "holiday", "language"}
    for did, table in raw.items():
        where = f"dids.{did}"
        did_s = str(did)
        if did_s != DEFAULT_DID and not re.fullmatch(r"\+?[0-9]{2,20}", did_s):
            problems.add(where, "a DID is digits (optionally a leading +) or 'default'")
        if not isinstance(table, Mapping):
            problems.add(where, "must be a table")
            continue
        for key in table:
            if key not in allowed:
                problems.add(f"{where}.{key}", "unknown key")
        flow = table.get("flow")
        if not isinstance(flow, str):
            problems.add(f"{where}.flow", "required: the name of a flow")
            continue
        hours = _parse_hours(where, table, default_tz, problems)
        closed, holiday, lang = table.get("closed"), table.get("holiday"), table.get("language")
        route = DidRoute(
            did=did_s,
            flow=flow,
            hours=hours,
            closed=closed if isinstance(closed, str) else None,
            holiday=holiday if isinstance(holiday, str) else None,
            language=lang if isinstance(lang, str) else None,
        )
        out[did_s] = (route, table)
    return out


def parse_flow_set(data: Raw, source: str = "<flows>", default_tz: str = "UTC") -> FlowSet:
    """Build and validate a :class:`FlowSet` from decoded TOML/YAML; raise :class:`FlowError`."""
    problems = _Problems()
    for key in data:
        if key not in {"languages", "default_language", "prompts", "dids", "flows"}:
            problems.add(str(key), "unknown top-level key")
    langs_raw = data.get("languages", ["en"])
    languages: tuple[str, ...] = ("en",)
    if (
        isinstance(langs_raw, list | tuple)
        and langs_raw
        and all(isinstance(x, str) and re.fullmatch(r"[a-z]{2,3}", x) for x in langs_raw)
    ):
        languages = tuple(str(x) for x in langs_raw)
    else:
        problems.add("languages", 'must be a list of language codes such as ["hi", "en"]')
    default_language = data.get("default_language", languages[0])
    if default_language not in languages:
        problems.add("default_language", f"{default_language!r} is not in languages")
        default_language = languages[0]
    assert isinstance(default_language, str)
    prompts = _parse_prompts(data.get("prompts", {}), languages, problems)
    flows: dict[str, Flow] = {}
    flows_raw = data.get("flows")
    if not isinstance(flows_raw, Mapping) or not flows_raw:
        problems.add("flows", "must define at least one flow: [flows.<name>] with start and nodes")
        flows_raw = {}
    for fname, fraw in flows_raw.items():
        flow = _parse_flow(str(fname), fraw, problems)
        if flow is not None:
            flows[flow.name] = flow
    dids = _parse_dids(data.get("dids"), default_tz, problems)
    flow_set = FlowSet(
        source=source,
        languages=languages,
        default_language=default_language,
        prompts=prompts,
        flows=flows,
        dids={did: route for did, (route, _) in dids.items()},
    )
    _validate(flow_set, problems)
    if problems.items:
        raise FlowError(source, problems.items)
    return flow_set


def _parse_flow(name: str, raw: object, problems: _Problems) -> Flow | None:
    if not _NAME_RE.match(name):
        problems.add(_where(name), "flow names are letters, digits, '_', '-', '.'")
    if not isinstance(raw, Mapping):
        problems.add(_where(name), "must be a table with start and nodes")
        return None
    for key in raw:
        if key not in {"start", "nodes"}:
            problems.add(_where(name, key=str(key)), "unknown key (a flow has start and nodes)")
    start = raw.get("start")
    nodes_raw = raw.get("nodes")
    if not isinstance(nodes_raw, Mapping) or not nodes_raw:
        problems.add(_where(name, key="nodes"), "a flow needs at least one node")
        return None
    nodes: dict[str, Node] = {}
    for nname, nraw in nodes_raw.items():
        node = _parse_node(name, str(nname), nraw, problems)
        if node is not None:
            nodes[node.name] = node
    if not isinstance(start, str):
        problems.add(_where(name, key="start"), "required: the name of the first node")
        start = next(iter(nodes), "")
    return Flow(name=name, start=start, nodes=nodes)


# --------------------------------------------------------------------------- validation


def node_edges(node: Node) -> list[tuple[str, str, bool]]:
    """Every outgoing edge of a node as (key, target, taken_without_input)."""
    edges: list[tuple[str, str, bool]] = []
    t = node.type
    if t in (NodeType.MENU,):
        edges += [(f"choices.{k}", v, False) for k, v in node.choices]
    if t is NodeType.GOTO and node.next:
        edges.append(("target", node.next, True))
    elif t in (NodeType.PLAY, NodeType.RECORD, NodeType.LANGUAGE) and node.next:
        # record ends on silence, a language menu falls back to the default language:
        # both go on without any key pressed.
        edges.append(("next", node.next, True))
    elif t in (NodeType.COLLECT, NodeType.SURVEY) and node.next:
        edges.append(("next", node.next, False))
    elif t is NodeType.CALLBACK and node.next:
        edges.append(("next", node.next, True))
    if node.on_failure:
        edges.append(("on_failure", node.on_failure, True))
    if node.on_timeout:
        edges.append(("on_timeout", node.on_timeout, True))
    if node.on_no_agents:
        edges.append(("on_no_agents", node.on_no_agents, True))
    return edges


def _validate(fs: FlowSet, problems: _Problems) -> None:
    for flow in fs.flows.values():
        _validate_flow(fs, flow, problems)
    for did, route in fs.dids.items():
        where = f"dids.{did}"
        did_flow = fs.flows.get(route.flow)
        if did_flow is None:
            problems.add(f"{where}.flow", f"no flow named '{route.flow}'")
            continue
        if route.language is not None and route.language not in fs.languages:
            problems.add(f"{where}.language", f"'{route.language}' is not in languages")
        for key, target in (("closed", route.closed), ("holiday", route.holiday)):
            if target is not None and target not in did_flow.nodes:
                problems.add(f"{where}.{key}", f"flow '{did_flow.name}' has no node '{target}'")
        needs_closed = not route.hours.always_open
        if needs_closed and route.closed is None:
            problems.add(f"{where}.closed", "required with hours: the node for closed times")
        if route.hours.holidays and route.closed is None and route.holiday is None:
            problems.add(f"{where}.holiday", "required with holidays (or set closed)")
    for flow in fs.flows.values():
        entries = {flow.start}
        for route in fs.dids.values():
            if route.flow == flow.name:
                entries |= {n for n in (route.closed, route.holiday) if n is not None}
        if not any(route.flow == flow.name for route in fs.dids.values()):
            problems.add(_where(flow.name), "no DID uses this flow (add it under [dids])")
        _check_reachable(flow, entries, problems)


def _validate_flow(fs: FlowSet, flow: Flow, problems: _Problems) -> None:
    if flow.start not in flow.nodes:
        problems.add(_where(flow.name, key="start"), f"no node named '{flow.start}'")
    for node in flow.nodes.values():
        for key, target, _ in node_edges(node):
            if target not in flow.nodes:
                problems.add(_where(flow.name, node.name, key), f"no node named '{target}'")
        if node.type is NodeType.LANGUAGE:
            for key, lang in node.choices:
                if lang not in fs.languages:
                    problems.add(
                        _where(flow.name, node.name, f"choices.{key}"),
                        f"'{lang}' is not one of the languages {list(fs.languages)}",
                    )
        if node.type is NodeType.GOTO and node.next == node.name:
            problems.add(_where(flow.name, node.name, "target"), "a goto cannot target itself")
        for key, ids in (
            ("prompt", node.prompts),
            ("invalid_prompt", node.invalid_prompts),
            ("timeout_prompt", node.timeout_prompts),
        ):
            for pid in ids:
                missing = [lang for lang in fs.languages if pid not in fs.prompts.get(lang, {})]
                if missing:
                    problems.add(
                        _where(flow.name, node.name, key),
                        f"prompt '{pid}' is not defined for language(s) {', '.join(missing)}",
                    )
    _check_silent_cycles(flow, problems)


def _check_reachable(flow: Flow, entries: set[str], problems: _Problems) -> None:
    # An orphan node is almost always a typo in a target, so it is reported, not ignored.
    seen: set[str] = set()
    todo = sorted(entries)
    while todo:
        name = todo.pop()
        if name in seen or name not in flow.nodes:
            continue
        seen.add(name)
        todo.extend(t for _, t, _ in node_edges(flow.nodes[name]))
    for name in sorted(set(flow.nodes) - seen):
        problems.add(
            _where(flow.name, name), "never reached from the start node or a DID's closed/holiday"
        )


def _check_silent_cycles(flow: Flow, problems: _Problems) -> None:
    """A silent caller must reach the end: the graph of no-input edges has to be acyclic."""
    silent = {
        name: [t for _, t, no_input in node_edges(node) if no_input and t in flow.nodes]
        for name, node in flow.nodes.items()
    }
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(silent, white)

    def visit(start: str) -> list[str] | None:
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = []
        while stack:
            name, idx = stack.pop()
            if idx == 0:
                colour[name] = grey
                path.append(name)
            targets = silent[name]
            if idx < len(targets):
                stack.append((name, idx + 1))
                nxt = targets[idx]
                if colour[nxt] == grey:
                    return [*path[path.index(nxt) :], nxt]
                if colour[nxt] == white:
                    stack.append((nxt, 0))
            else:
                colour[name] = black
                path.pop()
        return None

    for name in sorted(silent):
        if colour[name] == white:
            cycle = visit(name)
            if cycle is not None:
                problems.add(
                    _where(flow.name, cycle[0]),
                    "a caller who presses nothing would loop for ever: "
                    + " -> ".join(cycle)
                    + " (timeouts, on_failure, goto and next of play/record form a cycle)",
                )
                return


# --------------------------------------------------------------------------- loading


def decode_flow_text(text: str, fmt: str, source: str = "<flows>") -> Raw:
    """Decode TOML (``fmt='toml'``) or YAML (``'yaml'``) text into a mapping; FlowError if bad."""
    if fmt == "toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise FlowError(source, [f"not valid TOML: {exc}"]) from None
    if fmt == "yaml":
        import yaml  # imported here: only YAML flow files need it

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise FlowError(source, [f"not valid YAML: {exc}"]) from None
        if not isinstance(data, Mapping):
            raise FlowError(source, ["the YAML document must be a mapping at the top"])
        return {str(k): v for k, v in data.items()}
    raise FlowError(source, [f"unknown flow file format {fmt!r} (toml or yaml)"])


def parse_flow_text(
    text: str, fmt: str, source: str = "<flows>", default_tz: str = "UTC"
) -> FlowSet:
    """Decode and validate flow text in one step."""
    return parse_flow_set(decode_flow_text(text, fmt, source), source, default_tz)


# --------------------------------------------------------------------------- running a call


class IvrResult(enum.StrEnum):
    """How an inbound call ended, as the ledger stores it."""

    COMPLETED = "completed"  # reached a hangup node
    ANSWERED = "answered"  # bridged to an agent
    ABANDONED_IN_QUEUE = "abandoned_in_queue"  # hung up while waiting for an agent
    CALLER_HUNG_UP = "caller_hung_up"  # hung up in the IVR (not in the queue)
    FAILED = "failed"  # a fault on our side (the loop guard, an unexpected error)


@dataclass(frozen=True, slots=True)
class Say:
    """Play prompts (no input expected), then resume with :class:`Done`."""

    prompts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Ask:
    """Play prompts and collect up to ``max_digits`` DTMF digits; resume with :class:`Digits`."""

    prompts: tuple[str, ...]
    timeout_seconds: float
    max_digits: int


@dataclass(frozen=True, slots=True)
class RecordMessage:
    """Play prompts, then record the caller; resume with :class:`Recorded`."""

    prompts: tuple[str, ...]
    max_seconds: int
    silence_seconds: int
    beep: bool


@dataclass(frozen=True, slots=True)
class RequestCallback:
    """Create a scheduled callback for the caller's number; resume with :class:`Done`."""

    number: str
    campaign: str | None
    delay_minutes: int
    language: str


@dataclass(frozen=True, slots=True)
class JoinQueue:
    """Wait in the inbound queue for an agent; resume with :class:`QueueOutcome`."""

    prompts: tuple[str, ...]
    queue: str
    skill: str | None
    priority: int
    max_wait_seconds: float | None
    language: str


@dataclass(frozen=True, slots=True)
class Finish:
    """The call is over: play the prompts (if the caller is still there) and hang up."""

    prompts: tuple[str, ...]
    result: IvrResult
    label: str | None = None


Action: TypeAlias = Say | Ask | RecordMessage | RequestCallback | JoinQueue | Finish


@dataclass(frozen=True, slots=True)
class Done:
    """The action finished without anything to report."""


@dataclass(frozen=True, slots=True)
class Digits:
    """What GET DATA returned: the digits ('' when nothing was pressed)."""

    digits: str


@dataclass(frozen=True, slots=True)
class Recorded:
    """A recording attempt: where it is stored (None if nothing was recorded)."""

    path: str | None
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class QueueOutcome:
    """How waiting in the queue ended: ``answered``, ``timeout``, ``no_agents`` or ``closed``."""

    kind: str
    wait_seconds: float = 0.0
    agent: str | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    """The action could not be carried out (a callback that could not be stored)."""

    reason: str = ""


Outcome: TypeAlias = Done | Digits | Recorded | QueueOutcome | Refused


@dataclass(slots=True)
class CallRecord:
    """What the ledger keeps of one inbound call (filled in as the call goes)."""

    did: str
    caller: str
    flow: str
    language: str
    started_at: dt.datetime
    hours_status: str = "open"
    path: list[str] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict)
    recordings: list[str] = field(default_factory=list)
    callbacks: int = 0
    queue_wait_seconds: float | None = None
    agent: str | None = None
    result: IvrResult | None = None
    last_node: str | None = None
    label: str | None = None


class IvrCall:
    """One caller walking one flow: a pure machine of actions and outcomes."""

    def __init__(self, flows: FlowSet, did: str, caller: str, now: dt.datetime) -> None:
        """Pick the DID's route and the start node for ``now`` (business hours, holidays)."""
        self.flows = flows
        self.route = flows.route(did)
        self.flow = flows.flows[self.route.flow]
        language = self.route.language or flows.default_language
        status = self.route.hours.status(now)
        self.record = CallRecord(
            did=did,
            caller=caller,
            flow=self.flow.name,
            language=language,
            started_at=now,
            hours_status=status,
        )
        start = self.flow.start
        if status == "holiday":
            start = self.route.holiday or self.route.closed or start
        elif status == "closed" and self.route.closed is not None:
            start = self.route.closed
        self._node: Node = self.flow.nodes[start]
        self._attempt = 0
        self._pending: Action | None = None
        self._steps = 0

    @property
    def language(self) -> str:
        """The caller's language so far (a language node may change it)."""
        return self.record.language

    @property
    def node(self) -> Node:
        """The node the call is at."""
        return self._node

    def start(self) -> Action:
        """The first action."""
        return self._enter(self._node)

    def hung_up(self, in_queue: bool | None = None) -> None:
        """The caller left in the middle of the current action (``in_queue``: had joined it)."""
        if self.record.result is None:
            queued = isinstance(self._pending, JoinQueue) if in_queue is None else in_queue
            self.record.result = (
                IvrResult.ABANDONED_IN_QUEUE if queued else IvrResult.CALLER_HUNG_UP
            )
            self.record.last_node = self._node.name

    def answered(self, agent: str, wait_seconds: float) -> None:
        """The caller is with an agent (the bridge formed) even if the run ends abruptly."""
        if self.record.result is None:
            self.record.result = IvrResult.ANSWERED
            self.record.agent = agent
            self.record.queue_wait_seconds = wait_seconds
            self.record.last_node = self._node.name
            self.record.label = self._node.queue

    def fail(self, label: str) -> None:
        """A fault on our side ended the call."""
        if self.record.result is None:
            self.record.result = IvrResult.FAILED
            self.record.label = label
            self.record.last_node = self._node.name

    # -- stepping

    def _goto(self, name: str) -> Action:
        self._steps += 1
        if self._steps > MAX_STEPS:
            return self._finish((), IvrResult.FAILED, "loop_guard")
        self._attempt = 0
        return self._enter(self.flow.nodes[name])

    def _finish(self, prompts: tuple[str, ...], result: IvrResult, label: str | None) -> Finish:
        self.record.result = result
        self.record.label = label
        self.record.last_node = self._node.name
        action = Finish(prompts=prompts, result=result, label=label)
        self._pending = action
        return action

    def _enter(self, node: Node) -> Action:
        self._node = node
        if self._attempt == 0:
            self.record.path.append(node.name)
        action = self._action_for(node)
        self._pending = action
        return action

    def _ask(self, node: Node, prompts: tuple[str, ...]) -> Ask:
        return Ask(
            prompts=prompts, timeout_seconds=node.timeout_seconds, max_digits=node.max_digits
        )

    def _action_for(self, node: Node) -> Action:
        t = node.type
        if t is NodeType.PLAY:
            return Say(node.prompts)
        if t in (NodeType.MENU, NodeType.LANGUAGE, NodeType.COLLECT, NodeType.SURVEY):
            return self._ask(node, node.prompts)
        if t is NodeType.RECORD:
            return RecordMessage(node.prompts, node.max_seconds, node.silence_seconds, node.beep)
        if t is NodeType.CALLBACK:
            if not _callable_number(self.record.caller):
                assert node.on_failure is not None
                return self._goto(node.on_failure)
            return RequestCallback(
                number=self.record.caller,
                campaign=node.campaign,
                delay_minutes=node.delay_minutes,
                language=self.language,
            )
        if t is NodeType.QUEUE:
            skill = self.language if node.skill == "language" else node.skill
            return JoinQueue(
                prompts=node.prompts,
                queue=node.queue,
                skill=skill,
                priority=node.priority,
                max_wait_seconds=node.max_wait_seconds,
                language=self.language,
            )
        if t is NodeType.GOTO:
            assert node.next is not None
            return self._goto(node.next)
        return self._finish(node.prompts, IvrResult.COMPLETED, node.result or node.name)

    def resume(self, outcome: Outcome) -> Action:
        """Feed the outcome of the last action; get the next one."""
        pending, node = self._pending, self._node
        if pending is None or isinstance(pending, Finish):
            raise RuntimeError("the call is finished or not started")
        if isinstance(pending, RequestCallback) and isinstance(outcome, Refused):
            assert node.on_failure is not None
            return self._goto(node.on_failure)
        if isinstance(pending, Say | RequestCallback):
            if isinstance(pending, RequestCallback):
                self.record.callbacks += 1
            assert node.next is not None
            return self._goto(node.next)
        if isinstance(pending, RecordMessage):
            if isinstance(outcome, Recorded) and outcome.path:
                self.record.recordings.append(outcome.path)
            assert node.next is not None
            return self._goto(node.next)
        if isinstance(pending, JoinQueue):
            return self._after_queue(node, outcome)
        digits = outcome.digits if isinstance(outcome, Digits) else ""
        return self._after_input(node, digits)

    def _after_queue(self, node: Node, outcome: Outcome) -> Action:
        if not isinstance(outcome, QueueOutcome):
            raise TypeError(f"a queue node needs a QueueOutcome, got {outcome!r}")
        self.record.queue_wait_seconds = outcome.wait_seconds
        if outcome.kind == "answered":
            self.record.agent = outcome.agent
            return self._finish((), IvrResult.ANSWERED, node.queue)
        target = node.on_no_agents if outcome.kind == "no_agents" else None
        if outcome.kind == "closed":  # the queue is paused: as outside business hours
            target = self.route.closed or node.on_no_agents
        target = target or node.on_timeout
        assert target is not None
        return self._goto(target)

    def _after_input(self, node: Node, digits: str) -> Action:
        if digits and self._accept(node, digits):
            return self._accepted(node, digits)
        # invalid or nothing: try again or give up along the defined failure edge
        self._attempt += 1
        if self._attempt > node.retries:
            if node.type is NodeType.LANGUAGE:
                assert node.next is not None
                return self._goto(node.next)  # keep the default language
            assert node.on_failure is not None
            return self._goto(node.on_failure)
        extra = node.invalid_prompts if digits else node.timeout_prompts
        self._pending = self._ask(node, (*extra, *node.prompts))
        return self._pending

    def _accept(self, node: Node, digits: str) -> bool:
        if node.type is NodeType.COLLECT:
            if not node.min_digits <= len(digits) <= node.max_digits:
                return False
            if any(ch not in "0123456789*" for ch in digits):
                return False
            return node.pattern is None or re.fullmatch(node.pattern, digits) is not None
        return node.choice(digits) is not None

    def _accepted(self, node: Node, digits: str) -> Action:
        t = node.type
        if t is NodeType.MENU:
            target = node.choice(digits)
            assert target is not None
            return self._goto(target)
        if t is NodeType.LANGUAGE:
            lang = node.choice(digits)
            assert lang is not None
            self.record.language = lang
        elif t is NodeType.COLLECT:
            assert node.save_as is not None
            self.record.answers[node.save_as] = digits
        elif t is NodeType.SURVEY:
            assert node.save_as is not None
            answer = node.choice(digits)
            assert answer is not None
            self.record.answers[node.save_as] = answer
        assert node.next is not None
        return self._goto(node.next)


def _callable_number(number: str) -> bool:
    """A caller number we can call back: digits, perhaps a leading +, long enough."""
    return re.fullmatch(r"\+?[0-9]{6,16}", number or "") is not None


def walk_silently(fs: FlowSet, did: str, now: dt.datetime) -> list[str]:
    """The path of a caller who never presses a key and whom no agent answers (for docs/tests)."""
    call = IvrCall(fs, did, "", now)
    action = call.start()
    while not isinstance(action, Finish):
        outcome: Outcome = Done()
        if isinstance(action, Ask):
            outcome = Digits("")
        elif isinstance(action, RecordMessage):
            outcome = Recorded(None)
        elif isinstance(action, JoinQueue):
            outcome = QueueOutcome("timeout")
        action = call.resume(outcome)
    return list(call.record.path)


def iter_prompt_ids(fs: FlowSet) -> Iterable[str]:
    """Every prompt id some node uses (to pre-render text prompts)."""
    for flow in fs.flows.values():
        for node in flow.nodes.values():
            yield from node.prompts
            yield from node.invalid_prompts
            yield from node.timeout_prompts
