"""The container engine: container records, tasks run by a per-container monitor, logs, restart, health."""
