"""The dialplan contract as constants: one place for names the controller and Asterisk share.

docs/dialplan.md is the written agreement; this module is its machine-readable part.  The
renderer builds the Asterisk files from it, and the engine, the simulator and their tests
import it, so a context, route, event or action renamed here is renamed everywhere.

Pure data: importing this module does nothing else.
"""

from __future__ import annotations

from typing import Final

# --------------------------------------------------------------------------- contexts

CTX_OUT: Final = "dialer-out"
CTX_SEAT: Final = "dialer-seat"
CTX_AGENT_LOOP: Final = "dialer-agent-loop"
CTX_AGENT_WRAPUP: Final = "dialer-agent-wrapup"
CTX_AGENT_NOTICE: Final = "dialer-agent-notice"
CTX_INBOUND: Final = "dialer-inbound"
CTX_SUPERVISOR: Final = "dialer-supervisor"

#: Every context the rendered extensions.conf defines, in file order.
CONTEXTS: Final[tuple[str, ...]] = (
    CTX_OUT,
    CTX_SEAT,
    CTX_AGENT_LOOP,
    CTX_AGENT_WRAPUP,
    CTX_AGENT_NOTICE,
    CTX_INBOUND,
    CTX_SUPERVISOR,
)

#: Where an outbound customer call starts after answer (Originate Context/Exten/Priority).
ORIGINATE_TARGET: Final = (CTX_OUT, "s", 1)
#: Where the agent goes when the customer leaves the bridge (Bridge option F).
WRAPUP_TARGET: Final = (CTX_AGENT_WRAPUP, "s", 1)
#: The hold loop an agent enters after login and returns to after wrap-up.
AGENT_LOOP_TARGET: Final = (CTX_AGENT_LOOP, "s", 1)
#: Where the controller sends a holding agent (AMI Redirect) to hear ``DIALER_NOTICE``.
AGENT_NOTICE_TARGET: Final = (CTX_AGENT_NOTICE, "s", 1)
#: Options of ``EXEC Bridge <agent channel>,<options>`` in the customer's FastAGI session:
#: ``h`` lets the agent end the customer's leg with the features.conf disconnect code [30],
#: ``F(...)`` sends the agent to wrap-up when the customer leaves [28].
BRIDGE_OPTIONS: Final = f"hF({WRAPUP_TARGET[0]}^{WRAPUP_TARGET[1]}^{WRAPUP_TARGET[2]})"

# --------------------------------------------------------------------------- FastAGI routes

ROUTE_OUTBOUND_ANSWERED: Final = "outbound/answered"
ROUTE_AGENT_LOGIN: Final = "agent/login"
ROUTE_AGENT_PAUSE: Final = "agent/pause"
ROUTE_AGENT_UNPAUSE: Final = "agent/unpause"
ROUTE_AGENT_NEXT: Final = "agent/next"
ROUTE_AGENT_LOGOUT: Final = "agent/logout"
ROUTE_AGENT_WRAPUP: Final = "agent/wrapup"
ROUTE_IVR_MAIN: Final = "ivr/main"

#: Every FastAGI path the dialplan calls, with the query parameter it passes.
AGI_ROUTES: Final[dict[str, str]] = {
    ROUTE_OUTBOUND_ANSWERED: "call",
    ROUTE_AGENT_LOGIN: "seat",
    ROUTE_AGENT_PAUSE: "agent",
    ROUTE_AGENT_UNPAUSE: "agent",
    ROUTE_AGENT_NEXT: "agent",
    ROUTE_AGENT_LOGOUT: "agent",
    ROUTE_AGENT_WRAPUP: "agent",
    ROUTE_IVR_MAIN: "did",
}

# --------------------------------------------------------------------------- channel variables

#: Applications the controller runs over FastAGI with ``EXEC`` (docs/dialplan.md, ivr.md);
#: Asterisk must have each loaded even though no template names it.
AGI_EXEC_APPS: Final[tuple[str, ...]] = (
    "Bridge",
    "Playback",
    "Record",
    "StartMusicOnHold",
    "StopMusicOnHold",
    "SayNumber",
    "MixMonitor",
    "WaitForSilence",
)

#: Set by the controller in the Originate of an outbound customer call.
ORIGINATE_VARIABLES: Final[tuple[str, ...]] = (
    "CALLID",
    "CAMPAIGN",
    "LEADID",
    "DIALER_AMD",
    "ABANDON_PROMPT",
)
#: Set by the controller over FastAGI (SET VARIABLE).
AGI_SET_VARIABLES: Final[tuple[str, ...]] = ("AGENTID", "AGENT_STATE", "DISPOSITION", "IVR_RESULT")
#: Set by the controller over AMI (Setvar) on a holding agent's channel before the Redirect to
#: CTX_AGENT_NOTICE: the sound(s) to play, and the agent's state after it.
AMI_SET_VARIABLES: Final[tuple[str, ...]] = ("DIALER_NOTICE", "AGENT_STATE")
#: Agent states the dialplan tests after login.
AGENT_STATES_HELD: Final[tuple[str, ...]] = ("READY", "PAUSED")
AGENT_STATE_LOGGED_OUT: Final = "LOGGED_OUT"

# --------------------------------------------------------------------------- UserEvents

#: UserEvent name -> its headers, as the dialplan sends them.
USER_EVENTS: Final[dict[str, tuple[str, ...]]] = {
    "DialerAMD": ("Call", "AMDStatus", "AMDCause"),
    "DialerAbandon": ("Call", "AGISTATUS"),
    "AgentWrapup": ("Agent", "Channel"),
    "DialerInboundDown": ("DID", "Caller"),
}

# --------------------------------------------------------------------------- AMI

#: Every AMI event the controller subscribes to (the manager.conf filter is built from it).
AMI_EVENTS: Final[tuple[str, ...]] = (
    "Newchannel",
    "Newstate",
    "Newexten",
    "VarSet",
    "DialBegin",
    "DialEnd",
    "OriginateResponse",
    "Hangup",
    "HangupRequest",
    "SoftHangupRequest",
    "BridgeCreate",
    "BridgeEnter",
    "BridgeLeave",
    "BridgeDestroy",
    "UserEvent",
    "DTMFBegin",
    "DTMFEnd",
    "MixMonitorStart",
    "MixMonitorStop",
    "FullyBooted",
    "Shutdown",
)

#: The class (``Privilege``) Asterisk 22 sends each of those events with.  Measured: the
#: ``Privilege:`` header of every one of them in the recorded traces (``call,all`` ...).
#: Asterisk delivers an event only if the user's read classes contain all of its classes.
AMI_EVENT_CLASSES: Final[dict[str, str]] = {
    "Newchannel": "call",
    "Newstate": "call",
    "Newexten": "dialplan",
    "VarSet": "dialplan",
    "DialBegin": "call",
    "DialEnd": "call",
    "OriginateResponse": "call",
    "Hangup": "call",
    "HangupRequest": "call",
    "SoftHangupRequest": "call",
    "BridgeCreate": "call",
    "BridgeEnter": "call",
    "BridgeLeave": "call",
    "BridgeDestroy": "call",
    "UserEvent": "user",
    "DTMFBegin": "dtmf",
    "DTMFEnd": "dtmf",
    "MixMonitorStart": "call",
    "MixMonitorStop": "call",
    "FullyBooted": "system",
    "Shutdown": "system",
}

#: Every AMI action the controller (or ``dialer asterisk install``) sends.
AMI_ACTIONS: Final[tuple[str, ...]] = (
    "Login",
    "Challenge",
    "Logoff",
    "Ping",
    "Originate",
    "Hangup",
    "Redirect",
    "Bridge",
    "Getvar",
    "Setvar",
    "Status",
    "CoreShowChannels",
    "Command",
    "MixMonitor",
    "StopMixMonitor",
    "Events",
    "Reload",
)

#: Write classes that allow each action in Asterisk 22 (any one of them suffices; an empty
#: tuple means every logged-in user may send it).  From the 22 branch sources: the
#: ``ast_manager_register_xml*`` calls in main/manager.c, main/features.c (Bridge) and
#: apps/app_mixmonitor.c; manager.c runs an action when ``writeperm & authority`` is non-zero.
AMI_ACTION_CLASSES: Final[dict[str, tuple[str, ...]]] = {
    "Login": (),
    "Challenge": (),
    "Logoff": (),
    "Ping": (),
    "Events": (),
    "Originate": ("originate",),
    "Hangup": ("system", "call"),
    "Redirect": ("call",),
    "Bridge": ("call",),
    "Getvar": ("call", "reporting"),
    "Setvar": ("call",),
    "Status": ("system", "call", "reporting"),
    "CoreShowChannels": ("system", "reporting"),
    "Command": ("command",),
    "MixMonitor": ("system",),
    "StopMixMonitor": ("system", "call"),
    "Reload": ("config", "system"),
}

#: Originate with one of these applications needs ``system`` (manager.c
#: originate_app_permissions); ChanSpy, which ``dialer monitor`` uses, is not among them.
ORIGINATE_APPS_NEEDING_SYSTEM: Final[tuple[str, ...]] = (
    "agi",
    "dbdeltree",
    "exec",
    "externalivr",
    "mixmonitor",
    "originate",
    "reload",
    "system",
)
#: Applications the controller originates to (supervisor monitoring).
ORIGINATE_APPS: Final[tuple[str, ...]] = ("ChanSpy",)


def read_classes() -> tuple[str, ...]:
    """The smallest set of read classes that lets every subscribed event through."""
    return tuple(sorted({AMI_EVENT_CLASSES[name] for name in AMI_EVENTS}))


def write_classes() -> tuple[str, ...]:
    """A small set of write classes that allows every action in AMI_ACTIONS.

    MixMonitor allows only ``system``, which also covers Hangup, Status, CoreShowChannels,
    StopMixMonitor and Reload; the rest need ``originate``, ``call`` and ``command``.
    """
    chosen: set[str] = {"system"}
    for action in AMI_ACTIONS:
        allowed = AMI_ACTION_CLASSES[action]
        if allowed and not chosen.intersection(allowed):
            chosen.add(allowed[0])
    return tuple(sorted(chosen))
