"""The one list of call results, and how Asterisk's reports map onto it.

Every part of the system (ledger, pacer events, retry rules, reports) uses :class:`CallResult`;
nothing else invents result names.  The mapping from what Asterisk 22 reports to a result is taken
from the recorded traces in ``../shared/asterisk/`` (README sections 12-17, 13L-15L, 21, 33) and is
applied by :func:`classify`, a pure function of the facts the engine collected for one originate.

What the traces established (numbers are trace sections):

* ``OriginateResponse`` ``Reason`` (Asterisk's control frame of the last state):
  ``4`` answered (12), ``3`` still ringing when the Originate ``Timeout`` hit -> no answer, and in
  that case there is no ``DialEnd`` at all (14, 14L); ``5`` busy and ``8`` congestion, but **only
  through Local channels** (13L, 15L); ``0`` for every PJSIP failure (busy, 480, 503, 404: 13-16)
  and for a channel that could not be created (17, with ``Uniqueid: <unknown>``).  So ``Reason``
  only separates answered / timed out / other; the rest comes from DialStatus and the Hangup cause.
* ``DialEnd`` ``DialStatus``: ``ANSWER``, ``BUSY`` (486), ``NOANSWER`` (480 **and** 404!),
  ``CONGESTION`` (503), also ``CHANUNAVAIL``, ``CANCEL``, ``DONTCALL``, ``TORTURE``,
  ``INVALIDARGS``.
* ``Hangup`` ``Cause`` (Q.850), read from the right leg (:func:`cause_leg`): a PJSIP originate has
  one channel and the cause is on it (17 busy, 19 no answer, 34 congestion, 1 unallocated number:
  13-16).  Through a Local channel the ``;1`` half carries ``0 Unknown`` on busy/congestion and the
  real cause (17 / 34) is on the ``;2`` half, whose Uniqueid is our ``OtherChannelId`` (13L, 15L);
  on timeout both halves say 19 (14L).  The cause is the most specific fact: a 404 gives
  DialStatus ``NOANSWER`` but cause 1, which is an invalid number (16), never to be retried.
* ``AMDSTATUS``: ``HUMAN`` / ``MACHINE`` after 2.2-3 s (21), ``NOTSURE`` (``TOOLONG-*``) after
  about 5 s (33), ``HANGUP`` when the called party left during AMD (dialplan contract).

Precedence in :func:`classify`: controller facts (link lost) > answered facts (AMD verdict,
connected to an agent or abandoned) > a specific Hangup cause (invalid number, carrier rejection)
> DialStatus > OriginateResponse Reason > any other cause > ``FAILED``.

The mapping at a glance (cause read from the PJSIP channel, or from the Local ``;2`` half)::

    what Asterisk reported                                   trace     result
    Reason 4 / DialEnd ANSWER, bridged to an agent           18, 28    human
    ... AMDSTATUS=MACHINE                                    21        machine
    ... AMDSTATUS=NOTSURE, campaign drops NOTSURE            33        not_sure
    ... AMDSTATUS=HANGUP (left during AMD)                   contract  amd_hangup
    ... live, no agent in time / left while waiting          32        abandoned
    DialEnd BUSY, Reason 5 (Local), cause 17                 13, 13L   busy
    Reason 3 and no DialEnd, DialEnd NOANSWER, cause 18/19/20 14, 14b  no_answer
    DialEnd CONGESTION, Reason 8 (Local), cause 34/38/41/42/44 15, 15L congestion
    cause 1/3/22/28 (even with DialEnd NOANSWER)             16        invalid_number
    cause 21/29/50/55/57/58, DialEnd DONTCALL/TORTURE        --        rejected
    Reason 0 with no channel (Uniqueid <unknown>), CHANUNAVAIL 17      failed
    AMI link or controller lost before the outcome           --        link_lost
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal


class CallResult(enum.StrEnum):
    """Final result of one call attempt; the value is what the ledger stores."""

    HUMAN = "human"  # answered by a person (AMD HUMAN, or no AMD) and connected to an agent
    MACHINE = "machine"  # AMD said MACHINE (hung up or message left, per campaign)
    NOT_SURE = "not_sure"  # AMD said NOTSURE and the campaign drops those
    AMD_HANGUP = "amd_hangup"  # the called party hung up during AMD
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    CONGESTION = "congestion"
    INVALID_NUMBER = "invalid_number"  # never retried
    REJECTED = "rejected"  # the carrier refused the call (cause 21, 29, 50, 57, 58 ...)
    FAILED = "failed"  # could not originate, or nothing more specific is known
    ABANDONED = "abandoned"  # live person, no agent in time (or they left while waiting)
    LINK_LOST = "link_lost"  # AMI link or controller lost before the outcome was known
    # Inbound only (issue 10); an inbound caller who reached an agent is HUMAN, one who hung up
    # while queued is ABANDONED.
    IVR_COMPLETED = "ivr_completed"  # finished in the IVR: self-service, message, callback asked
    IVR_HANGUP = "ivr_hangup"  # hung up in the IVR before reaching the queue or the end


#: Results of calls a live person answered (the pacer's abandonment denominator).
LIVE_RESULTS: frozenset[CallResult] = frozenset({CallResult.HUMAN, CallResult.ABANDONED})

#: Results where nobody picked up: what the pacer calls ``CallUnanswered``.
UNANSWERED_RESULTS: frozenset[CallResult] = frozenset(
    {
        CallResult.BUSY,
        CallResult.NO_ANSWER,
        CallResult.CONGESTION,
        CallResult.INVALID_NUMBER,
        CallResult.REJECTED,
        CallResult.FAILED,
        CallResult.LINK_LOST,
    }
)

#: Results that must never lead to another attempt on the same number.
NEVER_RETRY: frozenset[CallResult] = frozenset({CallResult.INVALID_NUMBER})

PacerReason = Literal["no_answer", "busy", "congestion", "failed"]


def pacer_reason(result: CallResult) -> PacerReason:
    """The ``CallUnanswered.reason`` the pacer expects for an unanswered result."""
    if result is CallResult.BUSY:
        return "busy"
    if result is CallResult.NO_ANSWER:
        return "no_answer"
    if result is CallResult.CONGESTION:
        return "congestion"
    return "failed"


# --- OriginateResponse Reason ------------------------------------------------------------------

#: Asterisk's ``OriginateResponse`` ``Reason`` codes (AST_CONTROL_*), as seen in traces 12-17.
REASON_ANSWERED = 4
REASON_RINGING_TIMEOUT = 3
REASON_BUSY = 5
REASON_CONGESTION = 8
REASON_HANGUP = 1
REASON_FAILURE = 0

_REASON_MAP: dict[int, CallResult] = {
    REASON_RINGING_TIMEOUT: CallResult.NO_ANSWER,  # 14, 14L
    REASON_BUSY: CallResult.BUSY,  # 13L (Local channels only)
    REASON_CONGESTION: CallResult.CONGESTION,  # 15L (Local channels only)
}


def from_originate_reason(reason: int | None) -> CallResult | None:
    """Result implied by an OriginateResponse Reason alone, or None when it says too little.

    Reason 4 (answered) is not a result by itself; 0 and 1 only say "it failed somehow".
    """
    if reason is None:
        return None
    return _REASON_MAP.get(reason)


# --- DialEnd DialStatus ------------------------------------------------------------------------

_DIALSTATUS_MAP: dict[str, CallResult] = {
    "BUSY": CallResult.BUSY,  # 13, 13L
    "NOANSWER": CallResult.NO_ANSWER,  # 14b (480); a 404 also says NOANSWER, the cause refines it
    "CONGESTION": CallResult.CONGESTION,  # 15, 15L
    "CHANUNAVAIL": CallResult.FAILED,
    "CANCEL": CallResult.NO_ANSWER,  # we gave up while it rang
    "DONTCALL": CallResult.REJECTED,
    "TORTURE": CallResult.REJECTED,
    "INVALIDARGS": CallResult.FAILED,
}


def from_dial_status(status: str | None) -> CallResult | None:
    """Result implied by a DialEnd DialStatus, or None (ANSWER, or absent as on a timeout)."""
    if not status:
        return None
    return _DIALSTATUS_MAP.get(status.strip().upper())


# --- Hangup cause (Q.850) ----------------------------------------------------------------------

#: Causes that are more specific than any DialStatus: they decide the result on their own.
_SPECIFIC_CAUSES: dict[int, CallResult] = {
    1: CallResult.INVALID_NUMBER,  # unallocated number (16: 404)
    3: CallResult.INVALID_NUMBER,  # no route to destination
    22: CallResult.INVALID_NUMBER,  # number changed
    28: CallResult.INVALID_NUMBER,  # invalid number format
    21: CallResult.REJECTED,  # call rejected
    29: CallResult.REJECTED,  # facility rejected
    50: CallResult.REJECTED,  # requested facility not subscribed
    55: CallResult.REJECTED,  # incoming calls barred
    57: CallResult.REJECTED,  # bearer capability not authorised
    58: CallResult.REJECTED,  # bearer capability not presently available
}

#: Causes that only confirm a category; used when DialStatus and Reason are silent.
_GENERAL_CAUSES: dict[int, CallResult] = {
    17: CallResult.BUSY,  # user busy (13, 13L ;2)
    18: CallResult.NO_ANSWER,  # no user responding
    19: CallResult.NO_ANSWER,  # user alerting, no answer (14, 14b, 14L)
    20: CallResult.NO_ANSWER,  # subscriber absent (mobile off): worth a retry later
    34: CallResult.CONGESTION,  # circuit/channel congestion (15, 15L ;2)
    38: CallResult.CONGESTION,  # network out of order
    41: CallResult.CONGESTION,  # temporary failure
    42: CallResult.CONGESTION,  # switching equipment congestion
    44: CallResult.CONGESTION,  # requested channel not available
    27: CallResult.FAILED,  # destination out of order
    102: CallResult.FAILED,  # recovery on timer expiry
    127: CallResult.FAILED,  # interworking, unspecified
}


def from_hangup_cause(cause: int | None, *, specific_only: bool = False) -> CallResult | None:
    """Result implied by a Q.850 Hangup cause (None for 0, 16, 31 and unknown codes)."""
    if cause is None:
        return None
    if cause in _SPECIFIC_CAUSES:
        return _SPECIFIC_CAUSES[cause]
    if specific_only:
        return None
    return _GENERAL_CAUSES.get(cause)


Leg = Literal["self", "other"]


def cause_leg(originate_channel: str) -> Leg:
    """Which leg's Hangup carries the real cause for an originate on this dial string.

    ``"self"``: the channel whose Uniqueid is our call id (PJSIP/SIP/IAX/DAHDI: one channel).
    ``"other"``: the ``;2`` half of a Local channel, whose Uniqueid is our ``OtherChannelId``;
    its ``;1`` half says ``0 Unknown`` on busy and congestion (13L, 15L).
    """
    return "other" if originate_channel.strip().lower().startswith("local/") else "self"


def pick_cause(self_cause: int | None, other_cause: int | None, leg: Leg) -> int | None:
    """The cause to classify: the preferred leg's, else the other leg's if it is informative."""
    first, second = (other_cause, self_cause) if leg == "other" else (self_cause, other_cause)
    if first not in (None, 0):
        return first
    if second not in (None, 0):
        return second
    return first if first is not None else second


# --- AMD ---------------------------------------------------------------------------------------

AmdStatus = Literal["HUMAN", "MACHINE", "NOTSURE", "HANGUP"]


def normalise_amd_status(raw: str | None) -> AmdStatus | None:
    """AMDSTATUS as read from a VarSet, UserEvent or GET VARIABLE; None when absent or unknown."""
    value = (raw or "").strip().upper()
    if value == "HUMAN":
        return "HUMAN"
    if value == "MACHINE":
        return "MACHINE"
    if value == "NOTSURE":
        return "NOTSURE"
    if value == "HANGUP":
        return "HANGUP"
    return None


def amd_is_live(status: AmdStatus | None, *, notsure_is_live: bool) -> bool:
    """Whether an answered call with this AMD verdict needs an agent (no AMD counts as live)."""
    if status is None or status == "HUMAN":
        return True
    if status == "NOTSURE":
        return notsure_is_live
    return False


# --- the whole picture -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallFacts:
    """Everything the engine learned about one originate, as Asterisk reported it."""

    answered: bool = False  # OriginateResponse Reason 4, DialEnd ANSWER, or Newstate Up
    originate_reason: int | None = None
    dial_status: str | None = None
    hangup_cause: int | None = None  # already picked from the right leg (see pick_cause)
    amd_status: str | None = None
    notsure_is_live: bool = True
    connected: bool = False  # bridged to an agent
    abandoned: bool = False  # live, but no agent in time / hung up while waiting
    link_lost: bool = False  # AMI link or controller lost before the outcome was known


def classify(facts: CallFacts) -> CallResult:
    """The one result for an originate, from the facts (precedence in the module docstring)."""
    if facts.connected:
        return CallResult.HUMAN
    answered = facts.answered or facts.originate_reason == REASON_ANSWERED
    if answered or facts.amd_status:
        amd = normalise_amd_status(facts.amd_status)
        if amd == "MACHINE":
            return CallResult.MACHINE
        if amd == "HANGUP":
            return CallResult.AMD_HANGUP
        if amd == "NOTSURE" and not facts.notsure_is_live:
            return CallResult.NOT_SURE
        if facts.abandoned:
            return CallResult.ABANDONED
        if facts.link_lost:
            return CallResult.LINK_LOST
        # A live answered call that was neither connected nor abandoned: the person left
        # before the engine decided, which counts as abandoned (DESIGN: the pacer's rule).
        return CallResult.ABANDONED
    if facts.link_lost:
        return CallResult.LINK_LOST
    return (
        from_hangup_cause(facts.hangup_cause, specific_only=True)
        or from_dial_status(facts.dial_status)
        or from_originate_reason(facts.originate_reason)
        or from_hangup_cause(facts.hangup_cause)
        or CallResult.FAILED
    )


def parse_result(value: str) -> CallResult:
    """A result from its stored value; raises ValueError naming the valid values."""
    try:
        return CallResult(value.strip().lower())
    except ValueError:
        valid = ", ".join(r.value for r in CallResult)
        raise ValueError(f"unknown call result {value!r} (valid: {valid})") from None
