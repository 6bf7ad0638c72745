"""The snapshot state machine and the snapshot function agree on every name they pass: each Payload key
of a step is a key of that step's input type, each ResultSelector field a key of its answer's type. And the
shrink guard's decision at its edges, the entity key and the staleness rule."""

from __future__ import annotations

import typing

import pytest

from tweakwise.entity import NOT_NEWER, EntityKey, is_stale
from tweakwise.snapshot_contract import INPUTS, OUTPUTS, Action, action_of
from tweakwise.snapshot_guard import GuardInput, shrink_guard
from tweakwise_local.template import load_template, state_machine_definition

TEMPLATE = load_template()
DEFINITION = state_machine_definition(TEMPLATE, "SnapshotStateMachine")
FUNCTION = "${SnapshotFunctionArn}"


def _tasks(states: dict) -> dict:
    """Every Task state that invokes the snapshot function, Map children included."""
    found = {}
    for name, state in states.items():
        if state.get("Type") == "Task" and state.get("Parameters", {}).get("FunctionName") == FUNCTION:
            found[name] = state
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            found.update(_tasks(processor["States"]))
    return found


def _keys(kind: type) -> set[str]:
    return set(typing.get_type_hints(kind))


def _names(block: dict) -> set[str]:
    return {name.removesuffix(".$") for name in block}


TASKS = _tasks(DEFINITION["States"])


def test_the_state_machine_invokes_the_function_for_every_action():
    payload_actions = {
        s["Parameters"]["Payload"]["action"]
        for s in TASKS.values()
        if "action" in s["Parameters"].get("Payload", {})
    }
    batch_actions = {
        s["ItemBatcher"]["BatchInput"]["action"] for s in DEFINITION["States"].values() if "ItemBatcher" in s
    }
    assert payload_actions | batch_actions == set(Action)


@pytest.mark.parametrize("state", sorted(TASKS))
def test_each_payload_key_and_result_selector_field_is_in_the_steps_types(state):
    task = TASKS[state]
    payload = task["Parameters"].get("Payload")
    if payload is None:  # a Map child: its payload is the Map's batch, {"Items": [...], "BatchInput": ...}
        assert task["Parameters"]["Payload.$"] == "$"
        return
    action = Action(payload["action"])
    assert _names(payload) <= _keys(INPUTS[action]), _names(payload) - _keys(INPUTS[action])
    selected = {value.removeprefix("$.Payload.") for value in task.get("ResultSelector", {}).values()}
    for answer in OUTPUTS.get(action, ()):
        assert selected <= _keys(answer), (answer.__name__, selected - _keys(answer))
    if selected:
        assert action in OUTPUTS


def test_each_batch_input_key_is_in_the_batch_type():
    for name, state in DEFINITION["States"].items():
        if "ItemBatcher" in state:
            batch = state["ItemBatcher"]["BatchInput"]
            assert _names(batch) <= _keys(INPUTS[Action(batch["action"])]), name


def test_a_misnamed_key_would_be_caught():
    assert "takenAtt" not in _keys(INPUTS[Action.ORPHANS]) and "takenAt" in _keys(INPUTS[Action.ORPHANS])


def test_an_event_names_its_action_or_is_no_step():
    assert action_of({"action": "finish"}, "b") is Action.FINISH
    assert action_of({"Items": [], "BatchInput": {"action": "apply"}}, "b") is Action.APPLY
    for event in ({"action": "nope"}, {"action": None}, [], {"Records": [{"s3": {}}]}):
        with pytest.raises(Exception, match="snapshot"):
            action_of(event, "b")


# -- the shrink guard at its edges -----------------------------------------------------------------------


def _guard(**changes) -> str | None:
    found = {
        "items": 100, "applied": 100, "keeps": "", "orphans": {"item": 5, "category": 0},
        "before": {"item": 100, "category": 10}, "allow_mass_delete": False, "max_delete_percent": 5.0,
        "min_product_count": 1,
    }  # fmt: skip
    return shrink_guard(GuardInput(**{**found, **changes}))


def test_the_guard_lets_exactly_the_limit_through_and_stops_one_more():
    assert _guard() is None  # 5 of 100 items: exactly 5 %
    assert _guard(orphans={"item": 6, "category": 0}) == (
        "6 of the 100 items that existed before this snapshot would be deleted, above "
        "SnapshotMaxDeletePercent (5 %): nothing was deleted"
    )


def test_the_guard_takes_each_kind_against_its_own_base():
    # 6 orphans of 110 entities would pass a shared base; 1 of the 10 categories is 10 % of its own.
    assert _guard(orphans={"item": 5, "category": 1}) == (
        "1 of the 10 categories that existed before this snapshot would be deleted, above "
        "SnapshotMaxDeletePercent (5 %): nothing was deleted"
    )
    assert _guard(orphans={"item": 5, "category": 1}, max_delete_percent=10.0) is None


def test_an_empty_base_stops_any_orphan_and_no_orphan_needs_no_guard():
    assert _guard(before={"item": 0, "category": 0}).startswith("5 of the 0 items")
    assert _guard(orphans={"item": 0, "category": 0}, items=0, min_product_count=10) is None


def test_failed_batches_stop_deletes_even_with_allow_mass_delete():
    expected = "1 of 100 items were not applied (failed batches)"
    assert _guard(applied=99, allow_mass_delete=True).startswith(expected)
    assert _guard(applied=99, orphans={"item": 0, "category": 0}).startswith(expected)


def test_allow_mass_delete_passes_the_share_the_keeps_and_the_minimum():
    many = {"item": 90, "category": 10}
    assert _guard(orphans=many, keeps="unreadable lines", items=0, allow_mass_delete=True) is None
    assert _guard(orphans=many, keeps="unreadable lines") == "unreadable lines"


def test_the_minimum_product_count_is_checked_last_and_inclusive():
    assert _guard(items=100, applied=100, min_product_count=100) is None
    assert _guard(items=99, applied=99, min_product_count=100) == (
        "the snapshot holds 99 items, fewer than MinProductCount (100): nothing was deleted"
    )


# -- one entity key, one staleness rule -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "text", "shop_id"),
    [
        (EntityKey.item("A#1"), "item#A#1", "A#1"),
        (EntityKey.category(5), "category#id:5", 5),
        (EntityKey.category("5"), "category#key:5", "5"),
        (EntityKey.category("key:x"), "category#key:key:x", "key:x"),
    ],
)
def test_an_entity_key_is_written_and_read_one_way(key, text, shop_id):
    assert str(key) == text and EntityKey.parse(text) == key and key.shop_id == shop_id


@pytest.mark.parametrize("text", ["product#1", "item", "", "__publish__"])
def test_anything_else_is_no_entity_key(text):
    with pytest.raises(ValueError, match="not an entity key"):
        EntityKey.parse(text)


def test_a_change_is_stale_only_when_a_newer_one_was_recorded():
    assert not is_stale(None, 10.0) and not is_stale(10.0, 10.0) and not is_stale(9.0, 10.0)
    assert is_stale(10.5, 10.0)
    assert NOT_NEWER == "(attribute_not_exists(occurredAt) OR occurredAt <= :t)"  # the same rule in DynamoDB


def test_the_snapshot_lock_lasts_exactly_as_long_as_an_execution_may():
    from tweakwise.settings import SnapshotSettings

    variables = TEMPLATE["Resources"]["CatalogSnapshotFunction"]["Properties"]["Environment"]["Variables"]
    timeout = DEFINITION["TimeoutSeconds"]
    # Shorter, and a second execution could take over the lock of one still running; longer, and a
    # crashed execution would block every upload for longer than any execution lasts.
    assert int(variables[SnapshotSettings.variable("lock_seconds")]) == timeout
    assert SnapshotSettings.default("lock_seconds") == timeout


def test_a_fields_clock_is_its_own_or_the_entitys_whichever_is_later():
    from tweakwise.entity import Clocks

    clocks = Clocks(whole=5.0, fields={"Stock": 9.0, "Name": 3.0})
    assert clocks.of("Stock") == 9.0 and clocks.of("Name") == 5.0 and clocks.of("Price") == 5.0
    assert clocks.fresh(["Name", "Stock", "Price"], 6.0) == ["Name", "Price"]  # stock was set at 9
    assert clocks.fresh(["Stock"], 9.0) == ["Stock"]  # equal: a retry applies again
    assert clocks.newest() == 9.0 and Clocks().newest() is None and Clocks().fresh(["Name"], 0.0) == ["Name"]
