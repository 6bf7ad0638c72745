"""The worker's pure parts: field mapping, category key lookups."""

from __future__ import annotations

import pytest


def test_every_item_field_is_mapped_to_its_tweakwise_name():
    from tweakwise.catalog import Item
    from tweakwise.mapping import to_item_fields

    item = Item.model_validate(
        {
            "id": "A",
            "name": "N",
            "price": 2.5,
            "stock": -1,
            "brand": "B",
            "groupCode": "G",
            "image": "https://i",
            "url": "https://u",
            "categories": [1],
            "attributes": {"color": "red", "size": ["S", "M"]},
        }
    )
    assert to_item_fields(item, [7]) == {
        "Name": "N",
        "Price": 2.5,
        "Stock": -1,
        "Brand": "B",
        "GroupCode": "G",
        "Image": "https://i",
        "Url": "https://u",
        "Categories": [7],
        "Attributes": [{"Key": "color", "Values": ["red"]}, {"Key": "size", "Values": ["S", "M"]}],
    }
    bare = Item.model_validate({"id": "A", "name": "N", "price": 1, "stock": 0, "brand": ""})
    assert to_item_fields(bare, None) == {"Name": "N", "Price": 1, "Stock": 0, "Brand": ""}


def test_an_unknown_category_key_says_which():
    from tweakwise.errors import NotFoundError, UnknownCategoryError
    from tweakwise.mapping import CategoryRefs

    class Client:
        def get_category_by_key(self, key):
            if key == "known":
                return {"CategoryId": "7"}
            raise NotFoundError("GET", "/category/getbykey/{key}", 404)

    refs = CategoryRefs(Client())
    assert refs.require([3, "known"]) == [3, 7]
    with pytest.raises(UnknownCategoryError, match=r"^category key 'new' is not in Tweakwise \(yet\)$"):
        refs.require(["known", "new"])
    refs.forget("known")
    assert refs._ids == {}


def test_many_keys_are_resolved_by_one_listing_and_a_look_up_for_each_it_lacks():
    from tweakwise.errors import NotFoundError
    from tweakwise.mapping import CategoryRefs

    class Client:
        def __init__(self):
            self.calls = []

        def list_categories(self):
            self.calls.append("list")
            return [
                {"CategoryId": 7, "Key": "shoes"},
                {"CategoryId": 8, "Key": "boots"},
                {"CategoryId": 9},  # no key: numeric ids only
                {"CategoryId": 10, "Key": "other"},  # not asked for
            ]

        def get_category_by_key(self, key):
            self.calls.append(key)
            if key == "late":
                return {"CategoryId": 11}
            raise NotFoundError("GET", "/category/getbykey/{key}", 404)

    client = Client()
    refs = CategoryRefs(client)
    refs.seed({"known": 3})
    refs.find_all(["shoes", "boots", "known", "late", "gone"])
    assert client.calls == ["list", "gone", "late"]  # listed once; looked up: what the listing lacked
    assert refs.known() == {"known": 3, "shoes": 7, "boots": 8, "late": 11}
    refs.find_all(["shoes", "late"])  # all known: no request
    refs.find_all(["one"])  # a single key: its look-up, not a listing
    assert client.calls == ["list", "gone", "late", "one"]
    refs.find_all(["two", "three"], look_up_rest=False)  # the listing alone: no look-up of what it lacks
    assert client.calls == ["list", "gone", "late", "one", "list"]


def test_a_field_left_out_is_not_sent_and_a_null_is_sent_empty():
    from tweakwise.catalog import ItemPatchFields
    from tweakwise.mapping import to_item_fields

    patch = ItemPatchFields.model_validate({"id": "A", "stock": 3, "brand": None, "categories": None})
    assert to_item_fields(patch, None) == {"Stock": 3, "Brand": "", "Categories": []}
    cleared = ItemPatchFields.model_validate({"id": "A", "attributes": None})
    assert to_item_fields(cleared, None) == {"Attributes": []}
