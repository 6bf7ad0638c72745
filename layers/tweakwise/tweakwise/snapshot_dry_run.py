"""A snapshot's dry run (`{"dryRun": true}` in the execution's input): validation, the plan and the
orphans run as usual, no batch and no delete runs, and the report says what the snapshot would create,
update and delete (the first PLANNED_IDS ids of each) and whether the shrink guard would stop it.
Tweakwise gets no write: the categories step does not run either (a category the snapshot would create
leaves its items counted as changed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from .entity import EntityKey
from .ledger import Ledger
from .snapshot_contract import FinishInput
from .snapshot_plan import LedgerIndex, item_lines
from .snapshot_store import SnapshotStore, report_key, work_key

PLANNED_IDS = 100  # ids a dry run's report lists per change, with their count


def _listed(ids: list[Any]) -> dict[str, Any]:
    return {"count": len(ids), "ids": ids[:PLANNED_IDS]}


def plan_report(store: SnapshotStore, ledger: Ledger, step: FinishInput) -> dict[str, Any]:
    """Write the dry run's report (reports/, as a run's) and answer it, less its invalid lines."""
    run = step["run"]
    validation = store.get_json(work_key(run, "validation.json"), default={})
    index = LedgerIndex(ledger.scan())
    new: list[str] = []
    updated: list[str] = []
    for raw in item_lines(store.lines(work_key(run, "changed.json"))):
        line = json.loads(raw)
        item_id = str((line["item"] if "type" in line else line)["id"])
        (updated if index.holds(EntityKey.item(item_id)) else new).append(item_id)
    deletes = [
        EntityKey.parse(o["entity"]) for o in store.get_json(work_key(run, "orphans.json"), default=[])
    ]
    items = validation.get("items", 0)
    report = {
        "snapshot": step["snapshot"],
        "execution": step["execution"],
        "outcome": "planned",
        "reason": step["reason"],
        "dryRun": True,
        "takenAt": step.get("takenAt"),
        "lines": validation.get("lines", 0),
        "invalid": validation.get("invalid", 0),
        "categories": validation.get("categories", 0),
        "wouldCreate": _listed(new),
        "wouldUpdate": _listed(updated),
        "unchanged": max(0, items - len(new) - len(updated)),
        "wouldDelete": _listed(
            [str(key.shop_id) if key.kind == "item" else f"category:{key.shop_id}" for key in deletes]
        ),
        "guard": step["reason"] or None,  # the shrink guard's reason: it would stop the deletes
        "durations": {
            "totalSeconds": round(
                (datetime.now(UTC) - datetime.fromisoformat(step["started"])).total_seconds(), 3
            )
        },
        "reportKey": report_key(run),
        "invalidLines": validation.get("invalid_lines", []),
    }
    store.put_json(report["reportKey"], report)
    return {k: v for k, v in report.items() if k != "invalidLines"}
