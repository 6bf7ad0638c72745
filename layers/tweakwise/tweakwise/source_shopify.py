"""Shopify webhooks delivered to EventBridge (`detail` = {"metadata": {X-Shopify-*}, "payload": {...}}) as
catalog events. Pure: the payload and the relations kept in the source map in, events out (docs/sources.md).

- `item_per` "product": one item per product (its variants' options as attributes, the lowest variant
  price, the stock summed); "variant": one item per variant, the product id its groupCode.
- The product's `product_type` is its category (key `shopify-type-<hash>`): collections' payloads do not
  say which products they hold. A draft or archived product leaves Tweakwise.
- Order: `X-Shopify-Triggered-At`; dedup: the topic with `X-Shopify-Event-Id` (one merchant action shares
  its event id across every topic it triggers).
"""

from __future__ import annotations

import hashlib
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from .errors import SourcePayloadError
from .sources import Level, Mapped, Payload, StockSum, category_upsert, delete, upsert

TOPICS = ("products/create", "products/update", "products/delete", "inventory_levels/update")
DEFAULT_VARIANT_TITLE = "Default Title"  # a product without options has one variant of this title


class Shape(Protocol):
    shopify_item_per: str


def product_key(product_id: str) -> str:
    return f"shopify#product#{product_id}"


def inventory_key(inventory_item_id: str) -> str:
    return f"shopify#inventory#{inventory_item_id}"


def levels_key(inventory_item_id: str) -> str:
    return f"shopify#levels#{inventory_item_id}"


def type_key(product_type: str) -> str:
    return "shopify-type-" + hashlib.sha256(product_type.encode()).hexdigest()[:16]


def keys(topic: str, payload: dict[str, Any]) -> list[str]:
    """The source-map relations `events` needs for this webhook."""
    if topic == "products/delete":
        return [product_key(str(payload.get("id", "")))]
    if topic == "inventory_levels/update":
        return [inventory_key(str(payload.get("inventory_item_id", "")))]
    return []


class _Webhook:
    def __init__(self, detail: Payload, shape: Shape):
        metadata = detail.at("metadata")
        self.topic = metadata.require("X-Shopify-Topic", str)
        self.event = metadata.require("X-Shopify-Event-Id", str)
        self.payload = detail.at("payload")
        self.at = metadata.get("X-Shopify-Triggered-At") or self.payload.require("updated_at", str)
        self.per_variant = shape.shopify_item_per == "variant"

    def event_id(self, suffix: str = "") -> str:
        return f"shopify:{self.topic}:{self.event}" + (f":{suffix}" if suffix else "")


def events(detail: dict[str, Any], known: dict[str, dict], shape: Shape) -> Mapped:
    hook = _Webhook(Payload(detail, "detail"), shape)
    if hook.topic in ("products/create", "products/update"):
        return _product(hook)
    if hook.topic == "products/delete":
        return _deleted(hook, known)
    if hook.topic == "inventory_levels/update":
        return _level(hook, known)
    return Mapped(skipped=f"Shopify {hook.topic} is not a topic this source maps")


def _money(variant: Payload) -> float:
    raw = variant.require("price", (str, int, float))
    try:
        return float(Decimal(str(raw)))
    except InvalidOperation:
        raise SourcePayloadError(f"{variant.path}.price is not a number: {raw!r}") from None


def _quantity(variant: Payload) -> int:
    quantity = variant.get("inventory_quantity", 0)
    return quantity if isinstance(quantity, int) else 0


def _image(product: Payload) -> str | None:
    image = product.optional("image").get("src")
    images = product.optional("images").items()
    return image or (images[0].get("src") if images else None)


def _options(product: Payload) -> list[tuple[int, str]]:
    """(position, name) of each option: a variant's value of it is its `option<position>`."""
    given = enumerate(product.optional("options").items())
    return [(option.get("position", index + 1), option.require("name", str)) for index, option in given]


def _base(hook: _Webhook, product: Payload, product_id: str) -> dict[str, Any]:
    product_type = product.get("product_type", "")
    item: dict[str, Any] = {
        "brand": product.get("vendor", ""),
        "url": f"/products/{product.require('handle', str)}",
        "image": _image(product),
        "categories": [type_key(product_type)] if product_type else [],
    }
    if hook.per_variant:
        item["groupCode"] = product_id
    return item


def _product(hook: _Webhook) -> Mapped:
    product = hook.payload
    product_id = str(product.require("id", int))
    variants = product.at("variants").items()
    if not variants:
        raise SourcePayloadError(f"{product.path}.variants is empty: a Shopify product has at least one")
    owners = [str(v.require("id", int)) if hook.per_variant else product_id for v in variants]
    items = list(dict.fromkeys(owners))
    mapped = Mapped(remember=_relations(product_id, variants, owners, items))
    if product.get("status", "active") != "active":  # draft or archived: shoppers cannot buy it
        mapped.events = [delete(hook.event_id(item), hook.at, item) for item in items]
        return mapped
    product_type = product.get("product_type", "")
    if product_type:  # before the items that name it (a category's upsert may still be on its way)
        category = {"id": type_key(product_type), "name": product_type}
        mapped.events.append(category_upsert(hook.event_id("type"), hook.at, category))
    base = _base(hook, product, product_id)
    for item in _variant_items(product, variants) if hook.per_variant else [_product_item(product, variants)]:
        mapped.events.append(upsert(hook.event_id(item["id"]), hook.at, {**base, **item}))
    return mapped


def _relations(product_id: str, variants: list[Payload], owners: list[str], items: list[str]) -> dict:
    """The product's items (to delete them), and each inventory item's Tweakwise item and the inventory
    items whose levels make that item's stock."""
    remember: dict[str, dict[str, Any]] = {product_key(product_id): {"items": items}}
    inventory = {
        str(v.get("inventory_item_id")): owner
        for v, owner in zip(variants, owners, strict=True)
        if isinstance(v.get("inventory_item_id"), int)
    }
    for inventory_id, owner in inventory.items():
        siblings = sorted(i for i, other in inventory.items() if other == owner)
        remember[inventory_key(inventory_id)] = {"item": owner, "levels": siblings}
    return remember


def _variant_items(product: Payload, variants: list[Payload]) -> list[dict[str, Any]]:
    title, options = product.require("title", str), _options(product)
    found = []
    for variant in variants:
        name = variant.get("title", "")
        found.append(
            {
                "id": str(variant.require("id", int)),
                "name": title if name in ("", DEFAULT_VARIANT_TITLE) else f"{title} - {name}",
                "price": _money(variant),
                "stock": _quantity(variant),
                "attributes": {
                    option: str(variant.get(f"option{position}"))
                    for position, option in options
                    if variant.get(f"option{position}")
                },
            }
        )
    return found


def _product_item(product: Payload, variants: list[Payload]) -> dict[str, Any]:
    attributes = {}
    given_options = product.optional("options").items()
    for (_position, option), given in zip(_options(product), given_options, strict=True):
        values = [str(value) for value in given.get("values", [])]
        if values and values != [DEFAULT_VARIANT_TITLE]:
            attributes[option] = values
    return {
        "id": str(product.require("id", int)),
        "name": product.require("title", str),
        "price": min(_money(v) for v in variants),  # "from" the lowest price
        "stock": sum(_quantity(v) for v in variants),
        "attributes": attributes,
    }


def _deleted(hook: _Webhook, known: dict[str, dict]) -> Mapped:
    product_id = str(hook.payload.require("id", int))
    items = known.get(product_key(product_id), {}).get("items") or ([] if hook.per_variant else [product_id])
    if not items:
        return Mapped(skipped=f"product {product_id}: its variants are not known to this source")
    return Mapped(events=[delete(hook.event_id(item), hook.at, item) for item in items])


def _level(hook: _Webhook, known: dict[str, dict]) -> Mapped:
    """One location's `available` of one inventory item: kept per location, the stock patch (made by the
    flow, `stock_patch`) sums every location of every inventory item of the Tweakwise item."""
    inventory_id = str(hook.payload.require("inventory_item_id", int))
    location = str(hook.payload.require("location_id", int))
    available = hook.payload.get("available")
    relation = known.get(inventory_key(inventory_id))
    if relation is None:
        return Mapped(skipped=f"inventory item {inventory_id}: no product of this source holds it yet")
    at = hook.payload.get("updated_at") or hook.at  # the level's own time orders one location's updates
    level = Level(levels_key(inventory_id), location, available if isinstance(available, int) else 0, at)
    item = relation["item"]
    levels = [levels_key(i) for i in relation.get("levels", [inventory_id])]
    return Mapped(levels=[level], stock=StockSum(item, hook.event_id(item), levels))
