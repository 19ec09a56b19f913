"""The demo's dataset on the source: several indices (one nested, one routed), templates and aliases."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from opensearchpy import OpenSearch

from migration_pipeline.sandbox import loader
from migration_pipeline.sandbox.datagen import profile
from workers.common.cluster_info import observe


@dataclass(frozen=True)
class DemoIndex:
    """One index of the demo data."""

    index: str
    profile: str
    docs: int
    shards: int
    routing: bool
    alias: str


def demo_indices(scale: float) -> list[DemoIndex]:
    """About 200,000 documents at scale 1 over four indices and nine shards."""
    def n(docs: int) -> int:
        return max(1, int(docs * scale))

    return [
        DemoIndex("logs-2024.01", "logs", n(100_000), 3, False, "logs"),
        DemoIndex("logs-2024.02", "logs", n(60_000), 2, False, "logs"),
        DemoIndex("products", "products", n(30_000), 2, True, "catalog"),
        DemoIndex("orders", "nested", n(10_000), 2, True, "sales"),
    ]


def install_templates(client: OpenSearch) -> None:
    """A component template and a composable index template for logs-*, and a legacy template for orders*."""
    client.cluster.put_component_template(name="demo-logs-settings", body={
        "template": {"settings": {"index": {"refresh_interval": "5s"}}}})
    client.indices.put_index_template(name="demo-logs", body={
        "index_patterns": ["logs-*"], "composed_of": ["demo-logs-settings"], "priority": 10,
        "template": {"mappings": profile("logs").mapping, "aliases": {"logs": {}}}})
    client.indices.put_template(name="demo-orders", body={
        "index_patterns": ["orders*"], "order": 1, "settings": {"index": {"max_result_window": 20000}}})


def load_demo_data(url: str, scale: float, say: Callable[[str], None]) -> list[DemoIndex]:
    """Create the templates and load every index that does not already hold its documents."""
    client = OpenSearch(hosts=[url], timeout=120)
    install_templates(client)
    present = observe(client, url).indices
    indices = demo_indices(scale)
    for ds in indices:
        if present.get(ds.index) == ds.docs:
            say(f"data: {ds.index} already holds {ds.docs} documents")
        else:
            if ds.index in present:
                client.indices.delete(index=ds.index)
            result = loader.load(url, ds.index, ds.docs, profile_name=ds.profile, shards=ds.shards,
                                 routing=ds.routing, seed=42)
            say(f"data: loaded {result.docs} {ds.profile} documents into {ds.index} "
                f"({result.docs_per_s:.0f} docs/s)")
        client.indices.put_alias(index=ds.index, name=ds.alias)
    return indices
