"""The tweakwise layer: this bundle's domain, shared by every function. The Tweakwise backend API client
(client, transport, credentials, responses), the catalog contract (catalog, entity), the real-time path
(signatures, queueing, webhook, worker, sync, state, ledger), whole-catalog snapshots (snapshot_*),
Tweakwise tasks and publish after sync (tasks, publish), the monitor, and what every function shares
(settings, errors, secrecy, observability, lazy)."""

__version__ = "0.1.0"
