"""What work an agent takes: inbound callers, outbound calls, or both, and which comes first.

A supervisor sets it per agent (``dialer queue assign``, issue 9); it is kept in the record, so
it outlives a re-login and a controller restart.  Four modes:

* ``inbound_first`` (the default, "blended"): waiting inbound callers take the agent before any
  outbound call is launched for them; the campaign's pacer counts them.
* ``outbound_first`` (blended, outbound priority): the pacer counts them; an inbound caller gets
  them only as *overflow*: no inbound-first agent can take the caller and the caller has waited
  at least ``inbound.overflow_after_seconds``.
* ``inbound_only``: never counted by a pacer, never given an outbound call.
* ``outbound_only``: never given an inbound caller.

Pure: no I/O, the clock is an input.
"""

from __future__ import annotations

import enum


class WorkMode(enum.StrEnum):
    """An agent's work assignment (stored as this value)."""

    INBOUND_FIRST = "inbound_first"
    OUTBOUND_FIRST = "outbound_first"
    INBOUND_ONLY = "inbound_only"
    OUTBOUND_ONLY = "outbound_only"

    @property
    def takes_inbound(self) -> bool:
        """May be handed an inbound caller (first or as overflow)."""
        return self is not WorkMode.OUTBOUND_ONLY

    @property
    def takes_outbound(self) -> bool:
        """Counted by the campaign's pacer and given answered outbound calls."""
        return self is not WorkMode.INBOUND_ONLY

    @property
    def inbound_first(self) -> bool:
        """Takes waiting inbound callers before anything else."""
        return self in (WorkMode.INBOUND_FIRST, WorkMode.INBOUND_ONLY)

    @property
    def overflow(self) -> bool:
        """Takes inbound callers only as overflow (outbound first)."""
        return self is WorkMode.OUTBOUND_FIRST

    @property
    def label(self) -> str:
        """How people read it: ``blended, inbound first``, ``inbound only`` ..."""
        return _LABELS[self]

    @property
    def short(self) -> str:
        """For a table column: ``in first``, ``out first``, ``in only``, ``out only``."""
        return self.value.replace("inbound", "in").replace("outbound", "out").replace("_", " ")


_LABELS = {
    WorkMode.INBOUND_FIRST: "blended, inbound first",
    WorkMode.OUTBOUND_FIRST: "blended, outbound first",
    WorkMode.INBOUND_ONLY: "inbound only",
    WorkMode.OUTBOUND_ONLY: "outbound only",
}

DEFAULT = WorkMode.INBOUND_FIRST

#: The ``work`` argument of ``queue.assign`` and the ``priority`` argument, as typed.
WORK_CHOICES = ("blended", "inbound_only", "outbound_only")
PRIORITY_CHOICES = ("inbound", "outbound")


class WorkError(ValueError):
    """An assignment that makes no sense (conflicting or unknown options); nothing changed."""

    code = "bad_arguments"


def parse_mode(value: str) -> WorkMode:
    """A stored value back to a mode; anything unknown reads as the default (never fails)."""
    try:
        return WorkMode(value)
    except ValueError:
        return DEFAULT


def choose(
    current: WorkMode,
    *,
    work: str | None = None,
    priority: str | None = None,
    campaign: bool = False,
) -> WorkMode:
    """The mode after a supervisor's ``work`` / ``priority`` request (raises WorkError).

    ``work`` is one of :data:`WORK_CHOICES` (None: keep the kind of work); ``priority`` one of
    :data:`PRIORITY_CHOICES` and only for blended agents (it makes an agent blended when
    ``work`` is not given); ``campaign`` says a campaign is being assigned too, which an
    inbound-only agent would never dial for.
    """
    if work is not None and work not in WORK_CHOICES:
        raise WorkError(f"work {work!r}: use one of {', '.join(WORK_CHOICES)}")
    if priority is not None and priority not in PRIORITY_CHOICES:
        raise WorkError(f"priority {priority!r}: use one of {', '.join(PRIORITY_CHOICES)}")
    if priority is not None and work in ("inbound_only", "outbound_only"):
        raise WorkError(f"priority applies to blended agents only, not {work.replace('_', '-')}")
    if work == "inbound_only":
        if campaign:
            raise WorkError("an inbound-only agent takes no campaign calls: leave out the campaign")
        return WorkMode.INBOUND_ONLY
    if work == "outbound_only":
        return WorkMode.OUTBOUND_ONLY
    if work == "blended" or priority is not None:
        if priority == "outbound":
            return WorkMode.OUTBOUND_FIRST
        if priority == "inbound":
            return WorkMode.INBOUND_FIRST
        return current if current in (WorkMode.INBOUND_FIRST, WorkMode.OUTBOUND_FIRST) else DEFAULT
    # Only a campaign: an inbound-only agent moved to a campaign becomes blended (default).
    if campaign and current is WorkMode.INBOUND_ONLY:
        return DEFAULT
    return current


def inbound_share(waiting: int, overdue: int, first_takers: int, overflow_takers: int) -> int:
    """How many of the inbound callers waiting will take one of this campaign's agents.

    The pacer counts that many as live calls waiting (DESIGN: a waiting call takes the next
    agent who frees up).  ``first_takers``: the campaign's agents (logged in, not paused) who
    take inbound callers first; ``overflow_takers``: its outbound-first agents, who take only the
    ``overdue`` callers (waited past the overflow time).  Outbound-only agents take none.  Each
    caller takes one agent, so the share never exceeds ``waiting``.
    """
    extra = min(max(0, overdue), max(0, overflow_takers))
    return max(0, min(waiting, max(0, first_takers) + extra))
