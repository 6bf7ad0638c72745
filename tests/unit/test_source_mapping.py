"""The native sources' mappings, pure: documented platform payloads (events/sources/) in, catalog events out,
each validated by the webhook's own models."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass

import pytest

from tweakwise import source_commercetools as ct
from tweakwise import source_shopify as shopify
from tweakwise.catalog import EVENT_ADAPTER
from tweakwise.errors import SourcePayloadError
from tweakwise_local.template import ROOT

EVENTS = ROOT / "events" / "sources"
PRODUCT = "e7ba4c75-b1bb-483d-94d8-2c4a10f78472"
SHIRT = "788032119674292922"
SMALL, MEDIUM = "642667041472713922", "757650484644203962"


@dataclass(frozen=True)
class Settings:
    commercetools_locale: str = "en"
    commercetools_currency: str = "EUR"
    commercetools_country: str = ""
    shopify_item_per: str = "product"


def _event(name: str) -> dict:
    return json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))


def _ct(kind: str, known: dict | None = None, settings: Settings = Settings(), change=None):
    event = _event(f"commercetools-{kind}")
    if change:
        change(event["detail"])
    return ct.events(event["detail-type"], event["detail"], known or {}, settings)


def _shopify(name: str, known: dict | None = None, settings: Settings = Settings(), change=None):
    event = _event(f"shopify-{name}")
    if change:
        change(event["detail"])
    return shopify.events(event["detail"], known or {}, settings)


def _valid(events: list[dict]) -> list:
    return [EVENT_ADAPTER.validate_python(event) for event in events]


def test_a_published_product_is_an_item_per_variant_in_the_chosen_locale_currency_and_country():
    mapped = _ct("ProductPublished")
    medium, large = (event["item"] for event in mapped.events)
    assert [e["type"] for e in mapped.events] == ["item.upsert", "item.upsert"]
    assert medium == {
        "id": "JKT-BLUE-M", "name": "Rain Jacket", "price": 129.99, "stock": 12, "groupCode": PRODUCT,
        "url": "rain-jacket", "image": "https://images.example.com/JKT-BLUE-M.jpg",
        "categories": ["c0ffee00-1111-4222-8333-444455556666"],
        "attributes": {"color": "Blue", "size": "M", "waterproof": "true", "care": "Machine wash cold"},
    }  # fmt: skip
    assert large["id"] == "JKT-BLUE-L" and large["stock"] == 0
    assert mapped.remember == {ct.product_key(PRODUCT): {"items": {"1": "JKT-BLUE-M", "2": "JKT-BLUE-L"}}}
    assert {e["occurredAt"] for e in mapped.events} == {"2026-11-30T10:15:22.123Z"}
    assert len({e["id"] for e in mapped.events}) == 2
    _valid(mapped.events)
    german = _ct("ProductPublished", settings=Settings(commercetools_locale="de", commercetools_country="DE"))
    assert german.events[0]["item"]["name"] == "Regenjacke"
    assert german.events[0]["item"]["price"] == 119.99  # the country's own price wins
    assert german.events[0]["item"]["attributes"]["care"] == "Kalt waschen"


def test_a_published_price_scope_is_a_price_patch_per_variant():
    mapped = _ct("ProductPublished", change=lambda d: d.update(scope="Prices"))
    assert [(e["type"], e["item"]) for e in mapped.events] == [
        ("item.patch", {"id": "JKT-BLUE-M", "price": 129.99}),
        ("item.patch", {"id": "JKT-BLUE-L", "price": 129.99}),
    ]
    _valid(mapped.events)


def test_unknown_fields_are_ignored_and_a_missing_needed_field_is_named():
    def extra(detail):
        detail["productProjection"]["someFutureField"] = {"x": 1}
        detail["productProjection"]["masterVariant"]["newThing"] = [1, 2]

    assert len(_ct("ProductPublished", change=extra).events) == 2
    with pytest.raises(SourcePayloadError, match=r"detail\.productProjection\.name\.fr"):
        _ct("ProductPublished", settings=Settings(commercetools_locale="fr"))
    with pytest.raises(
        SourcePayloadError, match=r"detail\.productProjection\.masterVariant\.prices has no price in GBP"
    ):
        _ct("ProductPublished", settings=Settings(commercetools_currency="GBP"))
    with pytest.raises(SourcePayloadError, match=r"detail\.lastModifiedAt"):
        _ct("ProductPublished", change=lambda d: d.pop("lastModifiedAt"))


def test_a_price_change_patches_the_known_variant_and_skips_staged_or_unknown_ones():
    known = {ct.product_key(PRODUCT): {"items": {"1": "JKT-BLUE-M"}}}
    mapped = _ct("ProductPriceChanged", known)
    assert [(e["type"], e["item"]) for e in mapped.events] == [
        ("item.patch", {"id": "JKT-BLUE-M", "price": 99.99})
    ]
    _valid(mapped.events)
    assert "not known" in _ct("ProductPriceChanged").skipped
    assert "staged" in _ct("ProductPriceChanged", known, change=lambda d: d.update(staged=True)).skipped
    assert ct.keys("ProductPriceChanged", _event("commercetools-ProductPriceChanged")["detail"]) == [
        ct.product_key(PRODUCT)
    ]


def test_unpublished_and_deleted_products_delete_every_variant_item():
    known = {ct.product_key(PRODUCT): {"items": {"1": "JKT-BLUE-M", "2": "JKT-BLUE-L"}}}
    unpublished = _ct("ProductUnpublished", known)
    assert [(e["type"], e["itemId"]) for e in unpublished.events] == [
        ("item.delete", "JKT-BLUE-L"), ("item.delete", "JKT-BLUE-M")
    ]  # fmt: skip
    assert "never published" in _ct("ProductUnpublished").skipped
    deleted = _ct("ProductDeleted")  # carries its last projection: no relation needed
    assert sorted(e["itemId"] for e in deleted.events) == ["JKT-BLUE-L", "JKT-BLUE-M"]
    _valid(unpublished.events + deleted.events)


def test_inventory_messages_are_stock_patches_and_a_sku_less_one_goes_through_the_map():
    created = _ct("InventoryEntryCreated")
    assert [(e["type"], e["item"]) for e in created.events] == [
        ("item.patch", {"id": "JKT-BLUE-M", "stock": 20})
    ]
    entry = ct.inventory_key("a5e7c9b1-2222-4333-8444-555566667777")
    assert created.remember == {entry: {"item": "JKT-BLUE-M"}}
    detail = _event("commercetools-InventoryEntryQuantitySet")["detail"]
    assert ct.keys("InventoryEntryQuantitySet", detail) == [entry]
    quantity = _ct("InventoryEntryQuantitySet", created.remember)
    assert [e["item"] for e in quantity.events] == [{"id": "JKT-BLUE-M", "stock": 7}]
    unresolved = _ct("InventoryEntryQuantitySet")
    assert not unresolved.events and "SKU is not known" in unresolved.skipped
    assert [e["item"] for e in _ct("InventoryEntryDeleted").events] == [{"id": "JKT-BLUE-M", "stock": 0}]
    channel = _ct(
        "InventoryEntryQuantitySet", created.remember, change=lambda d: d.update(supplyChannel={"id": "x"})
    )
    assert "supply channel" in channel.skipped
    _valid(created.events + quantity.events)


def test_categories_are_created_with_their_parent_and_deleted_by_key():
    created = _ct("CategoryCreated")
    assert created.events[0]["category"] == {
        "id": "c0ffee00-1111-4222-8333-444455556666", "name": "Jackets",
        "parents": ["c0ffee00-0000-4222-8333-444455556666"],
    }  # fmt: skip
    deleted = _ct("CategoryDeleted")
    assert deleted.events[0]["type"] == "category.delete"
    assert deleted.events[0]["categoryId"] == "c0ffee00-1111-4222-8333-444455556666"
    _valid(created.events + deleted.events)
    slug = ct.events("CategorySlugChanged", _event("commercetools-CategoryDeleted")["detail"], {}, Settings())
    assert not slug.events and slug.skipped


def test_a_shopify_product_is_one_item_with_its_type_as_category():
    mapped = _shopify("products-update")
    category, item = mapped.events
    key = shopify.type_key("Shirts")
    assert category["type"] == "category.upsert" and category["category"] == {"id": key, "name": "Shirts"}
    assert item["item"] == {
        "id": SHIRT, "name": "Example T-Shirt", "price": 19.99, "stock": 125, "brand": "Acme",
        "url": "/products/example-t-shirt", "image": None, "categories": [key],
        "attributes": {"Size": ["Small", "Medium"]},
    }  # fmt: skip
    assert item["occurredAt"] == "2026-11-30T10:15:22.123456Z"
    levels = ["271878346596884015", "271878346596884016"]
    assert mapped.remember == {
        shopify.product_key(SHIRT): {"items": [SHIRT]},
        shopify.inventory_key(levels[0]): {"item": SHIRT, "levels": levels},
        shopify.inventory_key(levels[1]): {"item": SHIRT, "levels": levels},
    }
    _valid(mapped.events)


def test_a_shopify_product_is_an_item_per_variant_when_asked():
    mapped = _shopify("products-update", settings=Settings(shopify_item_per="variant"))
    items = [e["item"] for e in mapped.events if e["type"] == "item.upsert"]
    assert [(i["id"], i["name"], i["price"], i["stock"], i["groupCode"], i["attributes"]) for i in items] == [
        (SMALL, "Example T-Shirt - Small", 19.99, 75, SHIRT, {"Size": "Small"}),
        (MEDIUM, "Example T-Shirt - Medium", 21.99, 50, SHIRT, {"Size": "Medium"}),
    ]
    assert mapped.remember[shopify.inventory_key("271878346596884015")] == {
        "item": SMALL, "levels": ["271878346596884015"]
    }  # fmt: skip
    _valid(mapped.events)


def test_a_draft_product_leaves_tweakwise_and_a_deleted_one_deletes_every_item():
    draft = _shopify("products-update", change=lambda d: d["payload"].update(status="draft"))
    assert [(e["type"], e["itemId"]) for e in draft.events] == [("item.delete", SHIRT)]
    assert [e["itemId"] for e in _shopify("products-delete").events] == [SHIRT]
    variant = Settings(shopify_item_per="variant")
    known = {shopify.product_key(SHIRT): {"items": [SMALL, MEDIUM]}}
    assert [e["itemId"] for e in _shopify("products-delete", known, variant).events] == [SMALL, MEDIUM]
    assert _shopify("products-delete", settings=variant).skipped
    _valid(draft.events)


def test_an_inventory_level_is_kept_per_location_and_summed_by_the_flow():
    relation = {"item": SHIRT, "levels": ["271878346596884015", "271878346596884016"]}
    mapped = _shopify("inventory_levels-update", {shopify.inventory_key("271878346596884015"): relation})
    assert not mapped.events
    [level] = mapped.levels
    assert (level.key, level.location, level.available) == (
        shopify.levels_key("271878346596884015"),
        "24826418",
        6,
    )
    assert mapped.stock.item_id == SHIRT
    assert mapped.stock.levels == [shopify.levels_key(i) for i in relation["levels"]]
    unknown = _shopify("inventory_levels-update")
    assert not unknown.levels and "no product of this source" in unknown.skipped


def test_one_merchant_action_on_two_topics_makes_two_distinct_event_ids():
    update = _shopify("products-update")
    create = _shopify("products-create", change=lambda d: d["metadata"].update(
        {"X-Shopify-Event-Id": "4f5c8d7e-6a1b-4c3d-9e2f-1a2b3c4d5e6f"}
    ))  # fmt: skip
    assert {e["id"] for e in update.events}.isdisjoint({e["id"] for e in create.events})
    with pytest.raises(SourcePayloadError, match=r"detail\.metadata\.X-Shopify-Event-Id"):
        _shopify("products-update", change=lambda d: d["metadata"].pop("X-Shopify-Event-Id"))


def test_every_documented_fixture_maps_or_says_why_not():
    known = {
        ct.product_key(PRODUCT): {"items": {"1": "JKT-BLUE-M", "2": "JKT-BLUE-L"}},
        ct.inventory_key("a5e7c9b1-2222-4333-8444-555566667777"): {"item": "JKT-BLUE-M"},
        shopify.inventory_key("271878346596884015"): {"item": SHIRT, "levels": ["271878346596884015"]},
    }
    for path in sorted(EVENTS.glob("*.json")):
        event = json.loads(path.read_text(encoding="utf-8"))
        detail = copy.deepcopy(event["detail"])
        if event["source"].startswith("aws.partner/commercetools.com/"):
            mapped = ct.events(event["detail-type"], detail, known, Settings())
        else:
            mapped = shopify.events(detail, known, Settings())
        assert mapped.events or mapped.levels, path.name
        _valid(mapped.events)
