"""The acceptance engine: pre-OS inspection, validation against the profile's contract, the golden
reference, run files, the telemetry series, the inventory diff and the reports."""
