"""The burn-in agent seen from the controller: its plan (derived from the profile) and driving it
on a remote host over SSH with the host key pinned."""
