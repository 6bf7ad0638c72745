"""Catalog health: the counts the scheduled monitor publishes as CloudWatch metrics."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .client import TweakwiseClient

PRODUCTS_METRIC = "TotalProducts"
CATEGORIES_METRIC = "TotalCategories"


@dataclass(frozen=True)
class CatalogStats:
    """The catalog's size as Tweakwise reports it."""

    total_products: int
    total_categories: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def read_catalog_stats(client: TweakwiseClient) -> CatalogStats:
    return CatalogStats(client.total_products(), client.total_categories())
