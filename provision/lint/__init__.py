"""The lint rules: profiles, the inventory and the burn-in plans against the taxonomy and the
hardware's limits, as findings. Pure; imports only the model."""
