"""Population models for the simulator, loaded from a TOML profile with documented defaults.

The defaults live in ``default_profile.toml`` next to this file (and are described in
docs/simulator.md); a user profile only needs the keys it changes.  Unknown keys are an error,
so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

OUTCOMES = ("human", "machine", "busy", "noanswer", "congestion", "unallocated", "unavailable")


class ProfileError(Exception):
    """A profile file problem, phrased as one line naming the key."""


@dataclass(frozen=True, slots=True)
class Dist:
    """A duration distribution in seconds: lognormal by median/sigma, clipped to [low, high]."""

    median: float
    sigma: float = 0.0
    low: float = 0.0
    high: float = 86400.0


@dataclass(frozen=True, slots=True)
class Pin:
    """Outcome pinning: a dialled number matching ``pattern`` (regex search) gets ``outcome``."""

    pattern: str
    outcome: str
    ring_seconds: float | None = None
    talk_seconds: float | None = None
    amd: str | None = None  # HUMAN, MACHINE, NOTSURE: overrides the AMD model

    def matches(self, number: str) -> bool:
        """True if the dialled number matches this pin."""
        return re.search(self.pattern, number) is not None


@dataclass(frozen=True, slots=True)
class CalledProfile:
    """The people (and machines) the dialer calls."""

    outcome_weights: dict[str, float] = field(
        default_factory=lambda: {
            "human": 0.44,
            "machine": 0.11,
            "busy": 0.10,
            "noanswer": 0.28,
            "congestion": 0.04,
            "unallocated": 0.02,
            "unavailable": 0.01,
        }
    )
    ring: Dist = Dist(7.0, 0.5, 2.0, 60.0)
    busy_after: Dist = Dist(1.0, 0.3, 0.2, 5.0)
    noanswer_after: Dist = Dist(35.0, 0.2, 20.0, 60.0)  # 480 from the network if no Timeout first
    hangup_during_amd: float = 0.02
    amd_human: dict[str, float] = field(
        default_factory=lambda: {"HUMAN": 0.90, "NOTSURE": 0.05, "MACHINE": 0.05}
    )
    amd_machine: dict[str, float] = field(
        default_factory=lambda: {"MACHINE": 0.85, "NOTSURE": 0.08, "HUMAN": 0.07}
    )
    amd_human_time: Dist = Dist(2.8, 0.1, 2.2, 3.0)
    amd_machine_time: Dist = Dist(2.4, 0.1, 2.2, 3.0)
    amd_notsure_time: float = 5.0
    talk: Dist = Dist(45.0, 0.8, 5.0, 1800.0)
    talk_short_share: float = 0.0  # bimodal option: this share talks `talk_short` instead
    talk_short: Dist = Dist(8.0, 0.5, 2.0, 30.0)
    patience: Dist = Dist(10.0, 0.5, 2.0, 60.0)  # a live person waiting for an agent
    machine_message: Dist = Dist(25.0, 0.3, 5.0, 90.0)  # a machine records, then hangs up
    party_hangs_up: float = 0.6  # else the agent ends the call (*0) when allowed to


@dataclass(frozen=True, slots=True)
class AgentProfile:
    """The people at the seats."""

    login_spread: float = 180.0  # shift start: logins spread uniformly over this many seconds
    absent_share: float = 0.0  # never log in
    slow_share: float = 0.1  # take `slow_factor` times longer for wrap-up
    slow_factor: float = 2.0
    wrong_pin_share: float = 0.02  # first PIN attempt wrong
    typing_digit: float = 0.3  # seconds between DTMF digits
    wrapup: Dist = Dist(8.0, 0.5, 1.0, 120.0)
    dispositions: dict[str, float] = field(
        default_factory=lambda: {"1": 0.4, "2": 0.3, "3": 0.2, "4": 0.1}
    )
    break_every: float = 3600.0  # mean seconds of work between pauses (exponential); 0 = never
    break_length: Dist = Dist(300.0, 0.4, 60.0, 1800.0)
    shift: float = 0.0  # seconds after login to log out; 0 = stay until the simulator closes
    logout_by_code: float = 0.5  # share that logs out with *9 rather than hanging up


@dataclass(frozen=True, slots=True)
class InboundProfile:
    """People who dial the office's DIDs."""

    arrivals_per_hour: float = 0.0
    dids: tuple[str, ...] = ("5551000",)
    patience: Dist = Dist(60.0, 0.5, 5.0, 600.0)
    choices: dict[str, float] = field(default_factory=lambda: {"1": 0.5, "2": 0.3, "3": 0.2})
    talk: Dist = Dist(90.0, 0.7, 10.0, 1800.0)
    caller_prefix: str = "98"  # caller numbers: prefix + 8 digits


@dataclass(frozen=True, slots=True)
class AsteriskProfile:
    """Things the real PBX's configuration would decide."""

    trunks: dict[str, str] = field(default_factory=lambda: {"carrier": "dialer-inbound"})
    local_contexts: tuple[str, ...] = ("lab-carrier", "sim-carrier")
    prompt_seconds: float = 2.0  # length of any sound file played
    prompt_lengths: dict[str, float] = field(default_factory=dict)
    failed_login_delay: float = 1.0  # AMI: Asterisk answers a bad login after ~1 s
    disconnect_code: str = "*0"
    login_extension: str = "9000"
    pause_code: str = "*1"
    unpause_code: str = "*2"
    next_code: str = "*3"
    logout_code: str = "*9"
    seat_prefix: str = "seat"
    seat_count: int = 35
    supervisor_prefix: str = "sup"
    supervisor_count: int = 3


@dataclass(frozen=True, slots=True)
class Profile:
    """Everything the simulator's populations do; see docs/simulator.md."""

    called: CalledProfile = CalledProfile()
    agents: AgentProfile = AgentProfile()
    inbound: InboundProfile = InboundProfile()
    asterisk: AsteriskProfile = AsteriskProfile()
    pins: tuple[Pin, ...] = ()

    def pin_for(self, number: str) -> Pin | None:
        """The first pin whose pattern matches ``number``."""
        for pin in self.pins:
            if pin.matches(number):
                return pin
        return None


def _build(cls: Any, data: dict[str, Any], where: str) -> Any:
    names = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            raise ProfileError(f"{where}.{key}: unknown setting")
        ftype = names[key].type
        if isinstance(ftype, str) and ftype == "Dist":
            if not isinstance(value, dict):
                raise ProfileError(f"{where}.{key}: expected a table {{median, sigma, low, high}}")
            kwargs[key] = _build(Dist, value, f"{where}.{key}")
        elif isinstance(value, list):
            kwargs[key] = tuple(value)
        else:
            kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ProfileError(f"{where}: {exc}") from None


def profile_from_dict(data: dict[str, Any]) -> Profile:
    """Build a profile from parsed TOML; missing keys keep their defaults."""
    sections = {
        "called": CalledProfile,
        "agents": AgentProfile,
        "inbound": InboundProfile,
        "asterisk": AsteriskProfile,
    }
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key == "pin":
            pins = []
            for i, item in enumerate(value):
                pin = _build(Pin, item, f"pin[{i}]")
                if pin.outcome not in OUTCOMES:
                    raise ProfileError(f"pin[{i}].outcome: must be one of {', '.join(OUTCOMES)}")
                try:
                    re.compile(pin.pattern)
                except re.error as exc:
                    raise ProfileError(f"pin[{i}].pattern: bad regex: {exc}") from None
                pins.append(pin)
            kwargs["pins"] = tuple(pins)
        elif key in sections:
            kwargs[key] = _build(sections[key], value, key)
        else:
            raise ProfileError(f"{key}: unknown section")
    prof = Profile(**kwargs)
    for name, weights in (
        ("called.outcome_weights", prof.called.outcome_weights),
        ("called.amd_human", prof.called.amd_human),
        ("called.amd_machine", prof.called.amd_machine),
    ):
        if sum(weights.values()) <= 0:
            raise ProfileError(f"{name}: weights must add up to more than 0")
    bad = set(prof.called.outcome_weights) - set(OUTCOMES)
    if bad:
        raise ProfileError(f"called.outcome_weights: unknown outcome {sorted(bad)[0]}")
    return prof


def default_profile_text() -> str:
    """The shipped default profile (TOML text)."""
    return resources.files("dialer.simpbx").joinpath("default_profile.toml").read_text("utf-8")


def load_profile(path: str | Path | None = None) -> Profile:
    """The default profile, overlaid with ``path`` if given."""
    base = tomllib.loads(default_profile_text())
    if path is not None:
        try:
            with Path(path).open("rb") as fh:
                extra = tomllib.load(fh)
        except OSError as exc:
            raise ProfileError(f"{path}: cannot read: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ProfileError(f"{path}: not valid TOML: {exc}") from None
        base = _overlay(base, extra)
    return profile_from_dict(base)


def _overlay(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if key == "pin":
            out["pin"] = value  # a profile's pins replace the defaults: order matters
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            merged = dict(out[key])
            merged.update(value)
            out[key] = merged
        else:
            out[key] = value
    return out
