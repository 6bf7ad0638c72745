"""`tweakwise-ops`: the operator's console for a deployed stack (or `make run`)."""
