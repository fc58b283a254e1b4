"""The flow of one host and of a fleet: the journaled step engine, its steps, waits and the fleet."""
