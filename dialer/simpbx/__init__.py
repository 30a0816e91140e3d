"""The Asterisk 22 simulator: an AMI server and FastAGI client with statistical populations.

Public API: :class:`SimPbx` (in-process server), :class:`SimAgentSpec`, :func:`load_profile`
and :class:`Profile`.  See docs/simulator.md.
"""

from dialer.simpbx.pbx import SimAgentSpec, SimPbx
from dialer.simpbx.profile import Profile, ProfileError, load_profile

__all__ = ["Profile", "ProfileError", "SimAgentSpec", "SimPbx", "load_profile"]
