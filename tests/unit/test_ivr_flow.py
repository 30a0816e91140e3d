"""The IVR flow model: loading, the validator's messages, and walks through every node type."""

from __future__ import annotations

import datetime as dt
import functools
from importlib import resources
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from dialer.domain import ivr
from dialer.domain.ivr import (
    Ask,
    Digits,
    Done,
    Finish,
    FlowError,
    IvrCall,
    IvrResult,
    JoinQueue,
    QueueOutcome,
    Recorded,
    RecordMessage,
    RequestCallback,
    Say,
)

UTC = dt.UTC
# 2026-11-30 is a Monday; 06:00 UTC is 11:30 in Asia/Kolkata
OPEN = dt.datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
SUNDAY = dt.datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
REPUBLIC_DAY = dt.datetime(2026, 1, 26, 6, 0, tzinfo=UTC)


@functools.cache
def shipped() -> ivr.FlowSet:
    text = resources.files("dialer.agi_scripts").joinpath("default_ivr.toml").read_text("utf-8")
    return ivr.parse_flow_text(text, "toml", "default_ivr.toml")


def small(**overrides: Any) -> dict[str, Any]:
    """A minimal valid flow set as a mapping, with node tables to override."""
    nodes: dict[str, Any] = {
        "menu": {
            "type": "menu",
            "prompt": "p",
            "choices": {"1": "bye"},
            "on_failure": "bye",
        },
        "bye": {"type": "hangup"},
    }
    nodes.update(overrides)
    return {
        "languages": ["en"],
        "prompts": {"en": {"p": "hello", "q": {"text": "question"}}},
        "dids": {"default": {"flow": "f"}},
        "flows": {"f": {"start": "menu", "nodes": nodes}},
    }


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(FlowError) as info:
        ivr.parse_flow_set(data, "test.toml")
    return list(info.value.problems)


# --------------------------------------------------------------------------- loading


def test_shipped_flow_loads_and_has_every_node_type() -> None:
    fs = shipped()
    kinds = {n.type for n in fs.flows["main"].nodes.values()}
    assert kinds == set(ivr.NodeType) - {ivr.NodeType.GOTO}
    assert fs.languages == ("hi", "en")
    # every prompt exists in both languages (the validator would have said otherwise)
    for pid in ivr.iter_prompt_ids(fs):
        assert fs.prompt("hi", pid) and fs.prompt("en", pid)


def test_yaml_and_toml_give_the_same_flow_set() -> None:
    yaml_text = """
languages: [en]
prompts: {en: {p: hello, q: {text: question}}}
dids: {default: {flow: f}}
flows:
  f:
    start: menu
    nodes:
      menu: {type: menu, prompt: p, choices: {"1": bye}, on_failure: bye}
      bye: {type: hangup}
"""
    toml_text = """
languages = ["en"]
[prompts.en]
p = "hello"
q = { text = "question" }
[dids.default]
flow = "f"
[flows.f]
start = "menu"
[flows.f.nodes.menu]
type = "menu"
prompt = "p"
choices = { "1" = "bye" }
on_failure = "bye"
[flows.f.nodes.bye]
type = "hangup"
"""
    a = ivr.parse_flow_text(yaml_text, "yaml")
    b = ivr.parse_flow_text(toml_text, "toml")
    assert a.flows == b.flows and a.prompts == b.prompts and a.dids == b.dids


def test_yaml_bare_integer_choice_keys_are_digits() -> None:
    data = small()
    data["flows"]["f"]["nodes"]["menu"]["choices"] = {1: "bye"}
    fs = ivr.parse_flow_set(data)
    assert fs.flows["f"].nodes["menu"].choice("1") == "bye"


def test_syntax_errors_name_the_file() -> None:
    with pytest.raises(FlowError, match=r"(?s)x\.toml: .*not valid TOML"):
        ivr.parse_flow_text("[flows\n", "toml", "x.toml")
    with pytest.raises(FlowError, match=r"(?s)x\.yaml: .*not valid YAML"):
        ivr.parse_flow_text("a: [1,\n", "yaml", "x.yaml")
    with pytest.raises(FlowError, match="must be a mapping"):
        ivr.parse_flow_text("- 1\n", "yaml", "x.yaml")


# --------------------------------------------------------------------------- the validator


def test_unknown_target_is_named_by_flow_node_and_key() -> None:
    got = problems(
        small(
            menu={"type": "menu", "prompt": "p", "choices": {"1": "nowhere"}, "on_failure": "bye"}
        )
    )
    assert "flow 'f', node 'menu', key 'choices.1': no node named 'nowhere'" in got


def test_missing_failure_edge_is_rejected() -> None:
    got = problems(small(menu={"type": "menu", "prompt": "p", "choices": {"1": "bye"}}))
    assert "flow 'f', node 'menu', key 'on_failure': required for a menu node" in got


def test_silent_loop_is_rejected_with_the_cycle() -> None:
    got = problems(
        small(
            menu={"type": "menu", "prompt": "p", "choices": {"1": "bye"}, "on_failure": "again"},
            again={"type": "play", "prompt": "p", "next": "menu"},
        )
    )
    assert any("would loop for ever: again -> menu -> again" in p for p in got), got


def test_goto_cycle_is_rejected() -> None:
    got = problems(
        small(
            menu={"type": "menu", "prompt": "p", "choices": {"1": "a"}, "on_failure": "bye"},
            a={"type": "goto", "target": "b"},
            b={"type": "goto", "target": "a"},
        )
    )
    assert any("loop for ever" in p and "a -> b -> a" in p for p in got), got


def test_loop_through_a_key_press_is_allowed() -> None:
    fs = ivr.parse_flow_set(
        small(
            menu={
                "type": "menu",
                "prompt": "p",
                "choices": {"9": "menu", "1": "bye"},
                "on_failure": "bye",
            }
        )
    )
    assert fs.flows["f"].nodes["menu"].choice("9") == "menu"


def test_many_problems_are_reported_together() -> None:
    data = small(
        menu={
            "type": "menu",
            "prompt": "nope",
            "choices": {"x": "bye"},
            "on_failure": "bye",
            "colour": "red",
        },
        orphan={"type": "hangup"},
        odd={"type": "teleport"},
    )
    data["dids"]["12"] = {"flow": "missing"}
    got = problems(data)
    joined = "\n".join(got)
    assert "key 'prompt': prompt 'nope' is not defined for language(s) en" in joined
    assert "key 'choices.x': a choice key must be DTMF digits" in joined
    assert "key 'colour': not a key of a menu node" in joined
    assert "node 'orphan': never reached" in joined
    assert "node 'odd', key 'type': unknown node type 'teleport'" in joined
    assert "dids.12.flow: no flow named 'missing'" in joined
    assert len(got) >= 6


def test_language_choice_must_name_a_language() -> None:
    got = problems(
        small(
            menu={"type": "language", "prompt": "p", "choices": {"1": "fr"}, "next": "bye"},
        )
    )
    assert any("key 'choices.1': 'fr' is not one of the languages" in p for p in got)


def test_hours_need_a_closed_node_and_valid_times() -> None:
    data = small()
    data["dids"]["default"]["hours"] = {"mon-fri": "09:00-18:00"}
    assert any("dids.default.closed: required with hours" in p for p in problems(data))
    data["dids"]["default"]["hours"] = {"funday": "9-5"}
    data["dids"]["default"]["closed"] = "bye"
    got = problems(data)
    assert any("dids.default.hours.funday: days are" in p for p in got)
    assert any("dids.default.hours.funday: times are" in p for p in got)


def test_collect_pattern_and_digit_bounds_are_checked() -> None:
    got = problems(
        small(
            menu={
                "type": "collect",
                "prompt": "p",
                "save_as": "x",
                "min_digits": 4,
                "max_digits": 2,
                "pattern": "([",
                "next": "bye",
                "on_failure": "bye",
            },
        )
    )
    assert any("key 'pattern': not a valid regular expression" in p for p in got)
    assert any("key 'min_digits': must not be larger than max_digits" in p for p in got)


def test_prompt_missing_in_one_language() -> None:
    data = small()
    data["languages"] = ["hi", "en"]
    data["prompts"]["hi"] = {"q": "x"}
    got = problems(data)
    assert (
        "flow 'f', node 'menu', key 'prompt': prompt 'p' is not defined for language(s) hi" in got
    )


# --------------------------------------------------------------------------- walking the flow


def drive(call: IvrCall, script: list[ivr.Outcome]) -> list[ivr.Action]:
    actions = [call.start()]
    for outcome in script:
        assert not isinstance(actions[-1], Finish)
        actions.append(call.resume(outcome))
    return actions


def test_survey_walk_saves_answers_and_language() -> None:
    call = IvrCall(shipped(), "999", "+919812345678", OPEN)
    acts = drive(
        call, [Digits("2"), Done(), Digits("2"), Digits("042"), Digits("1"), Digits("7"), Done()]
    )
    assert isinstance(acts[0], Ask) and acts[0].prompts == ("choose-language",)
    assert isinstance(acts[1], Say) and acts[1].prompts == ("welcome",)
    assert isinstance(acts[-1], Finish) and acts[-1].result is IvrResult.COMPLETED
    assert call.record.language == "en"
    assert call.record.answers == {
        "booth": "042",
        "attended_meeting": "yes",
        "active_volunteers": "7",
    }
    assert call.record.path == [
        "language",
        "welcome",
        "menu",
        "booth",
        "survey-attended",
        "survey-active",
        "survey-thanks",
        "goodbye",
    ]


def test_invalid_then_timeout_then_failure_edge() -> None:
    call = IvrCall(shipped(), "999", "+919812345678", OPEN)
    call.start()
    call.resume(Digits("1"))  # hindi
    act = call.resume(Done())  # welcome played -> menu
    assert isinstance(act, Ask) and act.prompts == ("main-menu",)
    act = call.resume(Digits("7"))  # not a choice
    assert isinstance(act, Ask) and act.prompts == ("invalid", "main-menu")
    act = call.resume(Digits(""))  # timeout
    assert isinstance(act, Ask) and act.prompts == ("no-input", "main-menu")
    act = call.resume(Digits(""))  # retries (2) used up -> on_failure: the queue
    assert isinstance(act, JoinQueue)
    assert act.skill == "hi" and act.language == "hi" and act.queue == "main"
    assert call.record.path.count("menu") == 1


def test_collect_validation_rejects_short_and_pattern_mismatch() -> None:
    fs = ivr.parse_flow_set(
        small(
            menu={
                "type": "collect",
                "prompt": "p",
                "save_as": "pin",
                "min_digits": 4,
                "max_digits": 4,
                "pattern": "1[0-9]+",
                "retries": 2,
                "invalid_prompt": "q",
                "next": "bye",
                "on_failure": "bye",
            }
        )
    )
    call = IvrCall(fs, "1", "", OPEN)
    call.start()
    assert isinstance(call.resume(Digits("12")), Ask)  # too short
    assert isinstance(call.resume(Digits("2345")), Ask)  # pattern
    fin = call.resume(Digits("1234"))
    assert isinstance(fin, Finish)
    assert call.record.answers == {"pin": "1234"}


def test_record_callback_and_queue_outcomes() -> None:
    fs = shipped()
    call = IvrCall(fs, "5551000", "+919812345678", OPEN)
    call.start()
    call.resume(Digits("2"))
    call.resume(Done())
    rec = call.resume(Digits("3"))
    assert isinstance(rec, RecordMessage) and rec.max_seconds == 120 and rec.beep
    fin = call.resume(Recorded("/var/spool/x.wav", 3.0))
    assert isinstance(fin, Finish) and fin.label == "voicemail"
    assert call.record.recordings == ["/var/spool/x.wav"]

    call = IvrCall(fs, "5551000", "+919812345678", OPEN)
    drive(call, [Digits("2"), Done()])
    cb = call.resume(Digits("4"))
    assert isinstance(cb, RequestCallback) and cb.number == "+919812345678" and cb.language == "en"
    fin = call.resume(Done())
    assert isinstance(fin, Finish) and fin.label == "callback" and call.record.callbacks == 1

    call = IvrCall(fs, "5551000", "+919812345678", OPEN)
    drive(call, [Digits("2"), Done()])
    q = call.resume(Digits("0"))
    assert isinstance(q, JoinQueue)
    fin = call.resume(QueueOutcome("answered", 4.5, "agent7"))
    assert isinstance(fin, Finish) and fin.result is IvrResult.ANSWERED
    assert call.record.agent == "agent7" and call.record.queue_wait_seconds == 4.5


def test_callback_without_a_caller_number_goes_to_on_failure() -> None:
    call = IvrCall(shipped(), "5551000", "anonymous", OPEN)
    drive(call, [Digits("2"), Done()])
    act = call.resume(Digits("4"))
    assert isinstance(act, Say) and act.prompts == ("callback-unavailable",)


def test_queue_timeout_offers_callback_or_voicemail() -> None:
    call = IvrCall(shipped(), "5551000", "+919812345678", OPEN)
    drive(call, [Digits("2"), Done(), Digits("0")])
    offer = call.resume(QueueOutcome("timeout", 300.0))
    assert isinstance(offer, Ask) and offer.prompts == ("queue-offer",)
    again = call.resume(Digits("3"))
    assert isinstance(again, JoinQueue)


def test_hangup_in_queue_is_abandoned_elsewhere_hung_up() -> None:
    call = IvrCall(shipped(), "5551000", "+919812345678", OPEN)
    drive(call, [Digits("2"), Done(), Digits("0")])
    call.hung_up()
    assert call.record.result is IvrResult.ABANDONED_IN_QUEUE and call.record.last_node == "queue"
    call = IvrCall(shipped(), "5551000", "+919812345678", OPEN)
    call.start()
    call.hung_up()
    assert call.record.result is IvrResult.CALLER_HUNG_UP


def test_business_hours_and_holidays_choose_the_start() -> None:
    fs = shipped()
    assert IvrCall(fs, "999", "1", OPEN).node.name == "language"
    assert IvrCall(fs, "999", "1", SUNDAY).node.name == "closed"
    assert IvrCall(fs, "999", "1", REPUBLIC_DAY).node.name == "closed"
    # 5551000 is open until 20:00 IST; the default DID closes at 18:00 IST (12:30 UTC)
    evening = dt.datetime(2026, 11, 30, 13, 30, tzinfo=UTC)
    assert IvrCall(fs, "5551000", "1", evening).node.name == "language"
    assert IvrCall(fs, "999", "1", evening).node.name == "closed"
    assert IvrCall(fs, "5551000", "1", evening).language == "en"


def test_goto_and_play_nodes() -> None:
    fs = ivr.parse_flow_set(
        small(
            menu={"type": "menu", "prompt": "p", "choices": {"1": "jump"}, "on_failure": "bye"},
            jump={"type": "goto", "target": "say"},
            say={"type": "play", "prompt": ["p", "q"], "next": "bye"},
            bye={"type": "hangup", "prompt": "q", "result": "done"},
        )
    )
    call = IvrCall(fs, "1", "", OPEN)
    acts = drive(call, [Digits("1"), Done()])
    assert acts[1] == Say(("p", "q"))
    assert acts[2] == Finish(("q",), IvrResult.COMPLETED, "done")
    assert call.record.path == ["menu", "jump", "say", "bye"]


# --------------------------------------------------------------------------- properties


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(alphabet="0123456789*", max_size=4),
            st.sampled_from(["1", "2", "0", "3", "4", "9", ""]),
        ),
        max_size=60,
    ),
    st.sampled_from(["answered", "timeout", "no_agents"]),
    st.sampled_from([OPEN, SUNDAY, REPUBLIC_DAY]),
)
def test_any_input_ends_in_a_defined_finish(
    keys: list[str], queue_kind: str, when: dt.datetime
) -> None:
    """Whatever a caller presses (then silence), the call reaches a Finish in bounded steps."""
    call = IvrCall(shipped(), "999", "+919812345678", when)
    action = call.start()
    steps = 0
    feed = iter(keys)
    while not isinstance(action, Finish):
        steps += 1
        assert steps < 400
        outcome: ivr.Outcome
        if isinstance(action, Ask):
            outcome = Digits(next(feed, ""))
        elif isinstance(action, JoinQueue):
            outcome = QueueOutcome(queue_kind, 1.0, "a1")
        elif isinstance(action, RecordMessage):
            outcome = Recorded(None)
        else:
            outcome = Done()
        action = call.resume(outcome)
    assert call.record.result is not None
    assert call.record.path[-1] == call.record.last_node


# --------------------------------------------------------------------------- the validator's claim


@st.composite
def random_flow(draw: st.DrawFn) -> dict[str, Any]:
    """Random graphs of every node type.  Edges taken without a key point forward, except in
    "wild" graphs (any target, any missing key), so both accepted and rejected flows come up."""
    n = draw(st.integers(2, 9))
    names = [f"n{i}" for i in range(n)]
    wild = draw(st.integers(0, 4)) == 0
    nodes: dict[str, Any] = {}
    for i, name in enumerate(names):
        ahead = st.sampled_from(names if wild or i == n - 1 else names[i + 1 :])
        anywhere = st.sampled_from(names)
        kinds = (
            ["hangup"]
            if i == n - 1 and not wild
            else [
                "menu",
                "play",
                "goto",
                "hangup",
                "collect",
                "survey",
                "record",
                "callback",
                "queue",
                "language",
            ]
        )
        kind = draw(st.sampled_from(kinds))
        node: dict[str, Any] = {"type": kind}
        if kind in ("menu", "survey", "collect", "language", "play"):
            node["prompt"] = "p"
        if kind == "menu":
            keys = draw(
                st.lists(st.sampled_from("0123456789"), min_size=1, max_size=3, unique=True)
            )
            node["choices"] = {k: draw(anywhere) for k in keys}  # key loops are allowed
            node["retries"] = draw(st.integers(0, 2))
        if kind == "survey":
            node["question"] = "q"
            node["choices"] = {"1": "yes", "2": "no"}
        if kind == "collect":
            node["save_as"] = "x"
            node["max_digits"] = 3
        if kind == "language":
            node["choices"] = {"1": "en"}
        if kind == "goto":
            node["target"] = draw(ahead)
        if kind in ("collect", "survey"):
            node["next"] = draw(anywhere)  # taken after a valid key
        if kind in ("play", "record", "callback", "language"):
            node["next"] = draw(ahead)
        if kind in ("menu", "collect", "survey", "callback") and (not wild or draw(st.booleans())):
            node["on_failure"] = draw(ahead)
        if kind == "queue":
            node["on_timeout"] = draw(ahead)
        nodes[name] = node
    # keep what the start reaches (an orphan is rejected, which a wild graph still tests)
    if not wild:
        seen: set[str] = set()
        todo = ["n0"]
        while todo:
            cur = todo.pop()
            if cur in seen:
                continue
            seen.add(cur)
            node = nodes[cur]
            todo += [
                v
                for k, v in node.items()
                if k in ("target", "next", "on_failure", "on_timeout") and v in nodes
            ]
            if node["type"] == "menu":
                todo += list(node["choices"].values())
        nodes = {k: v for k, v in nodes.items() if k in seen}
    return {
        "languages": ["en"],
        "prompts": {"en": {"p": "x"}},
        "dids": {"default": {"flow": "f"}},
        "flows": {"f": {"start": "n0", "nodes": nodes}},
    }


@settings(max_examples=300, deadline=None)
@given(random_flow(), st.lists(st.text(alphabet="0123456789", max_size=2), max_size=30))
def test_accepted_flows_always_end_for_a_silent_caller(
    data: dict[str, Any], keys: list[str]
) -> None:
    """Whatever the validator accepts, silence ends the call without the loop guard, and any
    keys followed by silence end it too (bounded by the keys pressed)."""
    try:
        fs = ivr.parse_flow_set(data)
    except FlowError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        event("rejected")
        return
    event("accepted")
    n_nodes = len(fs.flows["f"].nodes)
    path = ivr.walk_silently(fs, "1", OPEN)
    assert len(path) <= n_nodes  # silent edges are acyclic: no node twice
    call = IvrCall(fs, "1", "+919812345678", OPEN)
    action = call.start()
    feed = iter(keys)
    while not isinstance(action, Finish):
        outcome: ivr.Outcome = Done()
        if isinstance(action, Ask):
            outcome = Digits(next(feed, ""))
        elif isinstance(action, JoinQueue):
            outcome = QueueOutcome("timeout")
        elif isinstance(action, RecordMessage):
            outcome = Recorded(None)
        action = call.resume(outcome)
    assert action.label != "loop_guard"
