"""commercetools Messages (a Subscription with an EventBridge destination) as catalog events. Pure: the
message and the relations kept in the source map in, events out (docs/sources.md has the table).

- One item per product variant: its SKU is the item id (a variant without one: `<product id>-<variant
  id>`), the product id its groupCode. Names and slugs in `locale`; the price that `currency` and
  `country` select; the stock from the variant's availability (no inventory entry: 0).
- Order: the message's `lastModifiedAt` (its creation: messages of one resource come in `sequenceNumber`
  order, each later); dedup: the message id, with the item id when one message makes several events.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

from .errors import SourcePayloadError
from .sources import Mapped, Payload, category_delete, category_upsert, delete, patch, upsert

PRODUCT_MESSAGES = ("ProductPublished", "ProductUnpublished", "ProductDeleted", "ProductPriceChanged")
INVENTORY_MESSAGES = ("InventoryEntryCreated", "InventoryEntryQuantitySet", "InventoryEntryDeleted")
CATEGORY_MESSAGES = ("CategoryCreated", "CategorySlugChanged", "CategoryDeleted")
MESSAGE_TYPES = PRODUCT_MESSAGES + INVENTORY_MESSAGES + CATEGORY_MESSAGES
MAX_ATTRIBUTE_VALUE = 400  # the contract's limit: a longer value (a description) is left out


class Selection(Protocol):
    commercetools_locale: str
    commercetools_currency: str
    commercetools_country: str


def product_key(product_id: str) -> str:
    return f"ct#product#{product_id}"


def inventory_key(entry_id: str) -> str:
    return f"ct#inventory#{entry_id}"


def keys(message_type: str, detail: dict[str, Any]) -> list[str]:
    """The source-map relations `events` needs for this message."""
    resource = Payload(detail, "detail").optional("resource").get("id", "")
    if message_type in ("ProductUnpublished", "ProductPriceChanged") or (
        message_type == "ProductDeleted" and not detail.get("currentProjection")
    ):
        return [product_key(resource)]
    if message_type == "InventoryEntryQuantitySet" and not detail.get("sku"):
        return [inventory_key(resource)]
    return []


def events(message_type: str, detail: dict[str, Any], known: dict[str, dict], select: Selection) -> Mapped:
    message = Payload(detail, "detail")
    ctx = _Message(message_type, message.require("id", str), message.require("lastModifiedAt", str), select)
    resource = message.at("resource").require("id", str)
    handler = _HANDLERS.get(message_type)
    if handler is None:
        return Mapped(skipped=f"commercetools {message_type} is not a message this source maps")
    return handler(ctx, message, resource, known)


class _Message:
    def __init__(self, kind: str, message_id: str, at: str, select: Selection):
        self.kind, self.message_id, self.at, self.select = kind, message_id, at, select

    def event_id(self, suffix: str = "") -> str:
        return f"commercetools:{self.message_id}" + (f":{suffix}" if suffix else "")


def _item_id(product_id: str, variant: Payload) -> str:
    sku = variant.get("sku")
    return sku if isinstance(sku, str) and sku else f"{product_id}-{variant.require('id', int)}"


def _variants(projection: Payload) -> list[Payload]:
    return [projection.at("masterVariant"), *projection.optional("variants").items()]


def _localized(value: Payload, name: str, locale: str) -> str:
    return value.at(name).require(locale, str)


def _price(variant: Payload, select: Selection) -> float:
    """The variant's embedded price in `currency`: for `country` if it has one, else the one for every
    country; prices for a channel or customer group are not the shop's list price."""
    found: dict[bool, Payload] = {}
    for price in variant.optional("prices").items():
        value = price.optional("value")
        if value.get("currencyCode") != select.commercetools_currency:
            continue
        if price.get("channel") or price.get("customerGroup"):
            continue
        country = price.get("country")
        if country is None or (select.commercetools_country and country == select.commercetools_country):
            found.setdefault(country is not None, value)
    if not found:
        currency, country = select.commercetools_currency, select.commercetools_country
        where = f"for {country} or all countries" if country else "for all countries"
        raise SourcePayloadError(f"{variant.path}.prices has no price in {currency} {where}")
    return _amount(found.get(True) or found[False])


def _amount(value: Payload) -> float:
    cents = value.require("centAmount", int)
    return float(Decimal(cents).scaleb(-value.get("fractionDigits", 2)))


def _stock(variant: Payload) -> int:
    quantity = variant.optional("availability").get("availableQuantity", 0)
    return quantity if isinstance(quantity, int) else 0


def _attribute_value(value: Any, locale: str) -> str | list[str] | None:
    if isinstance(value, list):
        values = [v for v in (_attribute_value(e, locale) for e in value) if isinstance(v, str)]
        return values or None
    if isinstance(value, dict):
        label = value.get("label", value)  # enum: {key, label}; lenum: {key, label: {locale}}; ltext
        value = label.get(locale) if isinstance(label, dict) else label
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        text = str(value)
        return text if len(text) <= MAX_ATTRIBUTE_VALUE else None
    return None


def _attributes(variant: Payload, locale: str) -> dict[str, Any]:
    found = {}
    for attribute in variant.optional("attributes").items():
        value = _attribute_value(attribute.get("value"), locale)
        if value is not None:
            found[attribute.require("name", str)] = value
    return found


def _item(product_id: str, projection: Payload, variant: Payload, select: Selection) -> dict[str, Any]:
    locale = select.commercetools_locale
    images = variant.optional("images").items()
    return {
        "id": _item_id(product_id, variant),
        "name": _localized(projection, "name", locale),
        "price": _price(variant, select),
        "stock": _stock(variant),
        "groupCode": product_id,
        "url": _localized(projection, "slug", locale),
        "image": images[0].require("url", str) if images else None,
        "categories": [c.require("id", str) for c in projection.optional("categories").items()],
        "attributes": _attributes(variant, locale),
    }


def _variant_items(product_id: str, projection: Payload) -> dict[str, str]:
    return {str(v.require("id", int)): _item_id(product_id, v) for v in _variants(projection)}


def _published(ctx: _Message, message: Payload, product_id: str, known: dict) -> Mapped:
    projection = message.at("productProjection")
    remember = {product_key(product_id): {"items": _variant_items(product_id, projection)}}
    if message.get("scope") == "Prices":  # only prices were published: a price patch per variant
        made = []
        for variant in _variants(projection):
            item = _item_id(product_id, variant)
            made.append(patch(ctx.event_id(item), ctx.at, item, price=_price(variant, ctx.select)))
        return Mapped(events=made, remember=remember)
    made = [
        upsert(ctx.event_id(_item_id(product_id, v)), ctx.at, _item(product_id, projection, v, ctx.select))
        for v in _variants(projection)
    ]
    return Mapped(events=made, remember=remember)


def _removed(ctx: _Message, message: Payload, product_id: str, known: dict) -> Mapped:
    """Unpublished or deleted: every variant's item leaves Tweakwise (shoppers can no longer buy it)."""
    projection = message.get("currentProjection")
    if projection:
        items = _variant_items(product_id, Payload(projection, f"{message.path}.currentProjection"))
    else:
        items = known.get(product_key(product_id), {}).get("items", {})
    if not items:
        return Mapped(skipped=f"product {product_id} was never published through this source")
    return Mapped(events=[delete(ctx.event_id(item), ctx.at, item) for item in sorted(items.values())])


def _price_changed(ctx: _Message, message: Payload, product_id: str, known: dict) -> Mapped:
    if message.get("staged", False):
        return Mapped(skipped="a staged price: shoppers see it only once the product is published")
    variant_id = str(message.require("variantId", int))
    item = known.get(product_key(product_id), {}).get("items", {}).get(variant_id)
    if item is None:
        return Mapped(skipped=f"variant {variant_id} of product {product_id} is not known to this source yet")
    price = Payload({"prices": [message.require("newPrice", dict)]}, message.path)
    try:
        amount = _price(price, ctx.select)
    except SourcePayloadError:
        return Mapped(skipped="the new price is not the one this stack's currency and country select")
    return Mapped(events=[patch(ctx.event_id(), ctx.at, item, price=amount)])


def _inventory(ctx: _Message, message: Payload, entry_id: str, known: dict) -> Mapped:
    """The stock of an inventory entry without a supply channel (the one availability counts)."""
    entry = message.optional("inventoryEntry")
    if (entry.get("supplyChannel") or message.get("supplyChannel")) is not None:
        return Mapped(skipped="an inventory entry of a supply channel: the stock counts entries without one")
    sku = entry.get("sku") or message.get("sku") or known.get(inventory_key(entry_id), {}).get("item")
    if not sku:
        return Mapped(skipped=f"inventory entry {entry_id}: its SKU is not known to this source yet")
    remember = {inventory_key(entry_id): {"item": sku}}
    if ctx.kind == "InventoryEntryDeleted":
        return Mapped(events=[patch(ctx.event_id(), ctx.at, sku, stock=0)], remember=remember)
    quantity = entry.get("availableQuantity", message.get("newAvailableQuantity"))
    if not isinstance(quantity, int):
        raise SourcePayloadError(f"{message.path} has no available quantity (newAvailableQuantity)")
    return Mapped(events=[patch(ctx.event_id(), ctx.at, sku, stock=quantity)], remember=remember)


def _category(ctx: _Message, message: Payload, category_id: str, known: dict) -> Mapped:
    if ctx.kind == "CategoryDeleted":
        return Mapped(events=[category_delete(ctx.event_id(), ctx.at, category_id)])
    if ctx.kind == "CategorySlugChanged":
        return Mapped(skipped="a category's slug: Tweakwise holds no field of it")
    category = message.at("category")
    parent = category.optional("parent").get("id")
    body: dict[str, Any] = {
        "id": category_id,
        "name": _localized(category, "name", ctx.select.commercetools_locale),
    }
    if parent:
        body["parents"] = [parent]
    return Mapped(events=[category_upsert(ctx.event_id(), ctx.at, body)])


_HANDLERS: dict[str, Any] = {
    "ProductPublished": _published,
    "ProductUnpublished": _removed,
    "ProductDeleted": _removed,
    "ProductPriceChanged": _price_changed,
    **dict.fromkeys(INVENTORY_MESSAGES, _inventory),
    **dict.fromkeys(CATEGORY_MESSAGES, _category),
}
