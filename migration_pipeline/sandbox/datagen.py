"""Realistic, deterministic documents for the sandbox: the same seed always gives the same bytes."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from workers.common.errors import ConfigurationError

_BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)
_WORDS = (
    "request", "handled", "order", "payment", "user", "session", "cache", "miss", "hit", "retry", "timeout",
    "upstream", "backend", "service", "checkout", "cart", "inventory", "shipment", "customer", "invoice",
    "refund", "token", "auth", "login", "logout", "profile", "search", "query", "index", "shard", "replica",
    "node", "cluster", "latency", "throughput", "queue", "worker", "batch", "job", "scheduled", "completed",
    "failed", "started", "connection", "pool", "database", "transaction", "commit", "rollback", "lock",
    "deadlock", "partition", "offset", "consumer", "producer", "message", "event", "stream", "window",
    "aggregate", "metric", "gauge", "counter", "histogram", "trace", "span", "context", "deadline", "exceeded",
    "unavailable", "internal", "error", "warning", "notice", "debug", "config", "reload", "feature", "flag",
    "rollout",
)
_SERVICES = ("checkout", "payments", "search", "inventory", "accounts", "shipping", "gateway", "recommendations")
_LEVELS = ("INFO",) * 14 + ("DEBUG",) * 3 + ("WARN",) * 2 + ("ERROR",)
_METHODS = ("GET",) * 7 + ("POST",) * 2 + ("PUT", "DELETE")
_STATUSES = (200,) * 16 + (201, 204, 301, 304, 400, 401, 403, 404, 404, 429, 500, 502, 503)
_PATHS = ("/api/v1/orders", "/api/v1/orders/{id}", "/api/v1/cart", "/api/v2/search", "/api/v1/users/{id}",
          "/api/v1/payments", "/healthz", "/api/v1/inventory/{id}", "/static/app.{id}.js", "/api/v1/shipments")
_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 "
    "Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "okhttp/4.12.0", "python-requests/2.31.0", "curl/8.5.0",
)
_CITIES = (("DE", "Berlin", 52.52, 13.405), ("FR", "Paris", 48.8566, 2.3522), ("US", "Seattle", 47.6062, -122.3321),
           ("JP", "Tokyo", 35.6762, 139.6503), ("BR", "São Paulo", -23.5505, -46.6333),
           ("IN", "Bengaluru", 12.9716, 77.5946), ("ZA", "Cape Town", -33.9249, 18.4241))
_BRANDS = ("Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Soylent", "Tyrell")
_CATEGORIES = ("electronics", "books", "garden", "kitchen", "toys", "sports", "fashion", "beauty", "automotive")
_ORDER_STATES = ("created", "paid", "shipped", "delivered", "cancelled", "refunded")


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choices(_WORDS, k=n))


def _hex(rng: random.Random, nbytes: int) -> str:
    return rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()


def _stack_trace(rng: random.Random) -> str:
    frames = [
        f"\tat com.example.{rng.choice(_SERVICES)}.{_words(rng, 1).title()}Service."
        f"{rng.choice(_WORDS)}({_words(rng, 1).title()}Service.java:{rng.randrange(20, 900)})"
        for _ in range(rng.randrange(8, 24))
    ]
    return f"java.lang.IllegalStateException: {_words(rng, 6)}\n" + "\n".join(frames)


def logs_document(rng: random.Random, i: int) -> dict[str, Any]:
    """An application/access log event; about 2.4 KB of JSON on average."""
    ts = _BASE_TIME + timedelta(milliseconds=i * 250 + rng.randrange(250))
    service = rng.choice(_SERVICES)
    level = rng.choice(_LEVELS)
    status = rng.choice(_STATUSES)
    country, city, lat, lon = rng.choice(_CITIES)
    path = rng.choice(_PATHS).replace("{id}", str(rng.randrange(1, 10**6)))
    user_id = rng.randrange(1, 5000)
    doc: dict[str, Any] = {
        "@timestamp": ts.isoformat().replace("+00:00", "Z"),
        "event": {"dataset": f"{service}.log", "duration": rng.randrange(10**5, 10**9),
                  "outcome": "failure" if status >= 500 or level == "ERROR" else "success",
                  "sequence": i},
        "host": {"name": f"{service}-{rng.randrange(1, 12):02d}",
                 "ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                 "os": {"family": "linux", "kernel": f"6.1.0-{rng.randrange(10, 30)}-amd64"}},
        "service": {"name": service, "version": f"{rng.randrange(1, 4)}.{rng.randrange(20)}.{rng.randrange(10)}",
                    "environment": rng.choice(("production", "production", "staging"))},
        "log": {"level": level, "logger": f"com.example.{service}.{rng.choice(_WORDS).title()}Handler"},
        "http": {"request": {"method": rng.choice(_METHODS), "bytes": rng.randrange(0, 4096)},
                 "response": {"status_code": status, "bytes": rng.randrange(64, 65536)}},
        "url": {"path": path, "query": f"page={rng.randrange(1, 50)}&size={rng.choice((10, 20, 50))}"},
        "user_agent": {"original": rng.choice(_AGENTS)},
        "client": {"ip": f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
                   "geo": {"country_iso_code": country, "city_name": city,
                           "location": {"lat": round(lat + rng.uniform(-0.2, 0.2), 4),
                                        "lon": round(lon + rng.uniform(-0.2, 0.2), 4)}}},
        "trace": {"id": _hex(rng, 16)},
        "span": {"id": _hex(rng, 8)},
        "user": {"id": f"u{user_id:05d}", "name": f"user{user_id}"},
        "message": f"{service} {_words(rng, rng.randrange(85, 245))}",
        "tags": rng.sample(_WORDS, rng.randrange(1, 5)),
        "labels": {"team": rng.choice(("core", "growth", "platform")), "region": rng.choice(("eu", "us", "ap"))},
    }
    if level == "ERROR" or status >= 500:
        doc["error"] = {"type": "IllegalStateException", "message": _words(rng, 8), "stack_trace": _stack_trace(rng)}
    return doc


def products_document(rng: random.Random, i: int) -> dict[str, Any]:
    """A catalogue product with attributes and a free-text description."""
    brand = rng.choice(_BRANDS)
    return {
        "sku": f"SKU-{i:08d}",
        "name": f"{brand} {_words(rng, 3).title()}",
        "brand": brand,
        "description": _words(rng, rng.randrange(20, 80)),
        "categories": rng.sample(_CATEGORIES, rng.randrange(1, 3)),
        "price": round(rng.uniform(1, 2000), 2),
        "currency": rng.choice(("EUR", "USD", "GBP")),
        "stock": rng.randrange(0, 1000),
        "rating": round(rng.uniform(1, 5), 1),
        "attributes": {"color": rng.choice(("red", "blue", "black", "white", "green")),
                       "weight_g": rng.randrange(10, 20000), "size": rng.choice(("S", "M", "L", "XL"))},
        "created_at": (_BASE_TIME + timedelta(minutes=i * 7)).isoformat().replace("+00:00", "Z"),
        "tags": rng.sample(_WORDS, rng.randrange(1, 6)),
    }


def nested_document(rng: random.Random, i: int) -> dict[str, Any]:
    """An order whose line items are ``nested`` objects (each becomes a hidden Lucene document)."""
    items: list[dict[str, Any]] = [
        {"sku": f"SKU-{rng.randrange(10**6):08d}", "name": _words(rng, 2).title(), "quantity": rng.randrange(1, 5),
         "unit_price": round(rng.uniform(1, 300), 2)}
        for _ in range(rng.randrange(1, 6))
    ]
    customer = rng.randrange(1, 2000)
    return {
        "order_id": f"ORD-{i:09d}",
        "customer": {"id": f"c{customer:05d}", "name": f"Customer {customer}", "tier": rng.choice(("gold", "silver"))},
        "status": rng.choice(_ORDER_STATES),
        "created_at": (_BASE_TIME + timedelta(seconds=i * 41)).isoformat().replace("+00:00", "Z"),
        "items": items,
        "total": round(sum(it["quantity"] * it["unit_price"] for it in items), 2),
        "note": _words(rng, rng.randrange(0, 20)),
    }


_KEYWORD = {"type": "keyword"}
_MAPPINGS: dict[str, dict[str, Any]] = {
    "logs": {"properties": {
        "@timestamp": {"type": "date"}, "message": {"type": "text"},
        "service": {"properties": {"name": _KEYWORD, "version": _KEYWORD, "environment": _KEYWORD}},
        "log": {"properties": {"level": _KEYWORD, "logger": _KEYWORD}},
        "host": {"properties": {"name": _KEYWORD, "ip": {"type": "ip"}}},
        "client": {"properties": {"ip": {"type": "ip"},
                                  "geo": {"properties": {"location": {"type": "geo_point"}}}}},
        "http": {"properties": {"response": {"properties": {"status_code": {"type": "short"}}}}},
        "trace": {"properties": {"id": _KEYWORD}}, "user": {"properties": {"id": _KEYWORD}},
        "tags": _KEYWORD,
    }},
    "products": {"properties": {
        "sku": _KEYWORD, "name": {"type": "text", "fields": {"raw": _KEYWORD}}, "brand": _KEYWORD,
        "description": {"type": "text"}, "categories": _KEYWORD, "price": {"type": "scaled_float",
                                                                         "scaling_factor": 100},
        "created_at": {"type": "date"}, "tags": _KEYWORD,
    }},
    "nested": {"properties": {
        "order_id": _KEYWORD, "status": _KEYWORD, "created_at": {"type": "date"},
        "customer": {"properties": {"id": _KEYWORD, "tier": _KEYWORD}},
        "items": {"type": "nested", "properties": {"sku": _KEYWORD, "quantity": {"type": "integer"},
                                                   "unit_price": {"type": "double"}}},
    }},
}


@dataclass(frozen=True)
class Profile:
    """A kind of document: how to make one, its mapping, and which field routes it."""

    name: str
    make: Callable[[random.Random, int], dict[str, Any]]
    mapping: dict[str, Any]
    routing_of: Callable[[dict[str, Any]], str]


PROFILES: dict[str, Profile] = {
    "logs": Profile("logs", logs_document, _MAPPINGS["logs"], lambda d: d["user"]["id"]),
    "products": Profile("products", products_document, _MAPPINGS["products"], lambda d: d["brand"]),
    "nested": Profile("nested", nested_document, _MAPPINGS["nested"], lambda d: d["customer"]["id"]),
}


def profile(name: str) -> Profile:
    """Look up a profile by name, with an error listing the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigurationError(f"unknown profile {name!r}; use one of {', '.join(PROFILES)}") from None


@dataclass(frozen=True)
class GeneratedDoc:
    """One document: its id, optional routing and source bytes."""

    id: str
    routing: str | None
    source: bytes


def generate(profile_name: str, count: int, *, seed: int = 0, start: int = 0,
             routing: bool = False) -> Iterator[GeneratedDoc]:
    """Yield documents ``start`` .. ``start+count-1``; document ``i`` depends only on (profile, seed, i)."""
    prof = profile(profile_name)
    for i in range(start, start + count):
        rng = random.Random((seed << 40) ^ i)
        doc = prof.make(rng, i)
        yield GeneratedDoc(f"{profile_name}-{i:09d}", prof.routing_of(doc) if routing else None, orjson.dumps(doc))
