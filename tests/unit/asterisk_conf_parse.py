"""Small parsers for rendered Asterisk files, written for the tests (not Asterisk's own).

``parse_dialplan`` reads extensions.conf into contexts -> extensions -> steps and raises on
any line it does not understand, so a template typo fails the tests instead of Asterisk's
load.  ``parse_sections`` reads the ``[name]`` / ``key = value`` files (pjsip, manager ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_CONTEXT = re.compile(r"^\[([^\]]+)\]$")
_EXTEN = re.compile(r"^exten\s*=>\s*([^,]+),(\d+)(?:\(([A-Za-z0-9_-]+)\))?,(.*)$")
_SAME = re.compile(r"^same\s*=>\s*n(?:\(([A-Za-z0-9_-]+)\))?,(.*)$")
_APP = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)\((.*)\)$")
_KV = re.compile(r"^([^=]+?)\s*=>?\s*(.*)$")


class ParseError(Exception):
    """A line the parser does not understand."""


@dataclass(frozen=True)
class Step:
    """One priority of one extension."""

    context: str
    exten: str
    priority: int
    label: str | None
    app: str
    args: str
    lineno: int


@dataclass
class Dialplan:
    """Contexts in file order; each maps extension -> its steps in priority order."""

    contexts: dict[str, dict[str, list[Step]]] = field(default_factory=dict)
    settings: dict[str, dict[str, str]] = field(default_factory=dict)  # [general], [globals]

    def steps(self) -> list[Step]:
        """Every step of every extension."""
        return [s for ext in self.contexts.values() for steps in ext.values() for s in steps]

    def has_target(self, context: str, exten: str, priority: str) -> bool:
        """True if ``context,exten,priority`` (a number or a label) exists literally."""
        steps = self.contexts.get(context, {}).get(exten)
        if not steps:
            return False
        if priority.isdigit():
            return 1 <= int(priority) <= len(steps)
        return any(s.label == priority for s in steps)


def strip_comment(line: str) -> str:
    """The line without its ``;`` comment; ``\\;`` becomes ``;`` as Asterisk reads it."""
    out: list[str] = []
    for ch in line:
        if ch == ";":
            if out and out[-1] == "\\":
                out[-1] = ";"
                continue
            break
        out.append(ch)
    return "".join(out).rstrip()


def parse_dialplan(text: str) -> Dialplan:
    """Parse extensions.conf as rendered (exten => / same => n lines only)."""
    plan = Dialplan()
    context: str | None = None
    exten: str | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = strip_comment(raw).strip()
        if not line:
            continue
        m = _CONTEXT.match(line)
        if m:
            context, exten = m.group(1), None
            if context in ("general", "globals"):
                plan.settings[context] = {}
            elif context in plan.contexts:
                raise ParseError(f"line {lineno}: context [{context}] defined twice")
            else:
                plan.contexts[context] = {}
            continue
        if context is None:
            raise ParseError(f"line {lineno}: outside any context: {raw!r}")
        if context in plan.settings:
            kv = _KV.match(line)
            if not kv:
                raise ParseError(f"line {lineno}: not key = value: {raw!r}")
            plan.settings[context][kv.group(1).strip()] = kv.group(2).strip()
            continue
        m = _EXTEN.match(line)
        if m:
            exten, prio, label, rest = m.group(1), int(m.group(2)), m.group(3), m.group(4)
            if exten in plan.contexts[context]:
                raise ParseError(f"line {lineno}: extension {exten} defined twice in {context}")
            if prio != 1:
                raise ParseError(f"line {lineno}: {exten} starts at priority {prio}")
            plan.contexts[context][exten] = []
        else:
            m = _SAME.match(line)
            if not m or exten is None:
                raise ParseError(f"line {lineno}: not an exten/same line: {raw!r}")
            label, rest = m.group(1), m.group(2)
            prio = len(plan.contexts[context][exten]) + 1
        app = _APP.match(rest.strip())
        if not app:
            raise ParseError(f"line {lineno}: not App(args): {rest!r}")
        plan.contexts[context][exten].append(
            Step(context, exten, prio, label, app.group(1), app.group(2), lineno)
        )
    return plan


def goto_targets(step: Step) -> list[tuple[str, str, str]]:
    """The (context, exten, priority) targets of a Goto or GotoIf step, made absolute."""
    if step.app == "Goto":
        specs = [step.args]
    elif step.app == "GotoIf":
        _, _, branches = step.args.partition("?")
        specs = [b for b in branches.split(":") if b]
    else:
        return []
    targets = []
    for spec in specs:
        parts = spec.split(",")
        if len(parts) == 1:
            targets.append((step.context, step.exten, parts[0]))
        elif len(parts) == 2:
            targets.append((step.context, parts[0], parts[1]))
        elif len(parts) == 3:
            targets.append((parts[0], parts[1], parts[2]))
        else:
            raise ParseError(f"line {step.lineno}: bad Goto target {spec!r}")
    return targets


def parse_sections(text: str) -> list[tuple[str, dict[str, list[str]]]]:
    """``[name]`` sections in order, each with key -> values (keys may repeat)."""
    sections: list[tuple[str, dict[str, list[str]]]] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = strip_comment(raw).strip()
        if not line:
            continue
        m = _CONTEXT.match(line)
        if m:
            sections.append((m.group(1), {}))
            continue
        kv = _KV.match(line)
        if not kv or not sections:
            raise ParseError(f"line {lineno}: not key = value: {raw!r}")
        sections[-1][1].setdefault(kv.group(1).strip(), []).append(kv.group(2).strip())
    return sections


def typed_sections(text: str, type_: str) -> dict[str, dict[str, list[str]]]:
    """pjsip.conf sections of one ``type`` (endpoint, aor, auth ...) by name."""
    return {name: body for name, body in parse_sections(text) if body.get("type", [""])[0] == type_}
