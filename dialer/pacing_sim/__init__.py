"""The pacing benchmark: a discrete-event simulation of campaign days that drives any pacer."""
