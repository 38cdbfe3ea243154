"""Deterministic, realistic customer profiles for samples, tests and benchmarks.

Everything is drawn from a caller's `random.Random`, so a seed gives the same bytes on every
run. The sample data (`sample_data/generate.py`) and the benchmarks (`benchmarks/common.py`)
both build their records from these pieces.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

FIRST_NAMES = [
    "Jane",
    "John",
    "Amelia",
    "Oliver",
    "Sofia",
    "Liam",
    "Chloe",
    "Noah",
    "Emma",
    "Lucas",
    "Mia",
    "Ethan",
    "Zoe",
    "Mateo",
    "Hannah",
    "Arjun",
    "Yuki",
    "Fatima",
    "Lars",
    "Ines",
    "Chidi",
    "Priya",
    "Tomasz",
    "Elena",
    "Kofi",
    "Mei",
    "Rafael",
    "Aisha",
    "Sven",
    "Camille",
]
LAST_NAMES = [
    "Doe",
    "Smith",
    "Garcia",
    "Müller",
    "Rossi",
    "Kowalski",
    "Nakamura",
    "Okafor",
    "Dubois",
    "Johansson",
    "Patel",
    "Silva",
    "O'Brien",
    "Nguyen",
    "Haddad",
    "Schmidt",
    "Costa",
    "Kim",
    "Fernández",
    "Larsen",
    "Mensah",
    "Novak",
    "Ivanova",
    "Tanaka",
    "Moreau",
    "Berg",
]
DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com", "shop.example"]
SEGMENT_NAMES = [
    "High-value customers",
    "Cart abandoners (7 days)",
    "Newsletter subscribers",
    "Lapsed buyers (90 days)",
    "Loyalty gold tier",
    "Mobile app users",
    "Sale-season bargain hunters",
]
CITIES = [
    ("Amsterdam", "NL"),
    ("Berlin", "DE"),
    ("Lisbon", "PT"),
    ("Dublin", "IE"),
    ("Warsaw", "PL"),
    ("Osaka", "JP"),
    ("Lagos", "NG"),
    ("Austin", "US"),
]
TIERS = ["bronze", "silver", "gold", "platinum"]
CHANNELS = ["email", "sms", "push", "none"]
# Canonical statuses, weighted, and the synonyms the target accepts for them.
STATUSES = ["realized", "realized", "existing", "existing", "existing", "exited"]
SYNONYMS = {"realized": "qualified", "exited": "exiting"}


def segment_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def segments(rng: random.Random, names: list[str] = SEGMENT_NAMES) -> list[tuple[str, str]]:
    """(id, name) of one audience per name."""
    return [(segment_id(rng), name) for name in names]


def messy_email(rng: random.Random, first: str, last: str, n: int) -> str:
    """An email as CRM exports have them: mixed case and stray whitespace are common (the
    target trims and lower-cases before hashing, `email_lc_sha256`)."""
    local = f"{first}.{last}".replace("'", "").replace(" ", "")
    local = local.replace("ü", "ue").replace("á", "a")
    if n % 3:
        local += str(n)
    email = f"{local}@{rng.choice(DOMAINS)}"
    style = rng.random()
    if style < 0.25:
        return email.upper() if style < 0.05 else email.replace("@e", "@E")
    if style < 0.45:
        return f"  {email} "
    return email.lower()


def person(rng: random.Random, n: int) -> tuple[str, str, str]:
    """First name, last name and a messy email of profile number `n`."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    return first, last, messy_email(rng, first, last, n)


def qualification_time(rng: random.Random) -> str:
    """A time in the first 150 days of 2024; a fifth of them with a +02:00 offset."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    moment = start + timedelta(seconds=rng.randrange(0, 150 * 86400))
    if rng.random() < 0.2:  # some sources write local times with an offset
        return moment.astimezone(timezone(timedelta(hours=2))).isoformat()
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def birth_date(rng: random.Random) -> str | None:
    if rng.random() < 0.1:
        return None
    day = datetime(1950, 1, 1) + timedelta(days=rng.randrange(0, 55 * 365))
    return day.strftime("%Y-%m-%d")


def status(rng: random.Random) -> str:
    """A weighted status, sometimes written as a synonym."""
    chosen = rng.choice(STATUSES)
    if chosen in SYNONYMS and rng.random() < 0.3:
        return SYNONYMS[chosen]
    return chosen


def memberships(rng: random.Random, audiences: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """One to four of the audiences (fewer is likelier)."""
    count = rng.choices([1, 2, 3, 4], weights=[4, 3, 2, 1])[0]
    return rng.sample(audiences, count)


def wide_row(index: int, rng: random.Random, profile_id: str) -> dict[str, Any]:
    """A membership row with every attribute a benchmark maps: one profile, one segment."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    city, country = rng.choice(CITIES)
    segment = rng.randrange(len(SEGMENT_NAMES))
    return {
        "profile_id": profile_id,
        "email": f"{first}.{last}{index}@{rng.choice(DOMAINS)}",
        "phone": f"+44 7700 {rng.randrange(1_000_000):06d}",
        "first_name": first,
        "last_name": last,
        "birth_date": f"{rng.randrange(1950, 2005)}-{rng.randrange(1, 13):02d}-"
        f"{rng.randrange(1, 29):02d}",
        "city": city,
        "country": country,
        "loyalty_tier": rng.choice(TIERS),
        "preferred_channel": rng.choice(CHANNELS),
        "segment_id": segment_id(rng),
        "status": status(rng),
        "last_qualification_time": f"2024-{rng.randrange(1, 13):02d}-"
        f"{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:"
        f"{rng.randrange(60):02d}Z",
        "segment_name": SEGMENT_NAMES[segment],
    }


def member_rows(
    index: int, rng: random.Random, profile_id: str, audiences: list[str], count: int = 3
) -> list[dict[str, Any]]:
    """One profile in a "current members" table: a row per audience it is in, each with
    the profile's identities and attributes (no time: the audience is current)."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    city, country = rng.choice(CITIES)
    profile = {
        "profile_id": profile_id,
        "email": f"{first}.{last}{index}@{rng.choice(DOMAINS)}",
        "first_name": first,
        "last_name": last,
        "city": city,
        "country": country,
        "loyalty_tier": rng.choice(TIERS),
    }
    return [
        {**profile, "segment_id": audience, "status": "realized"}
        for audience in rng.sample(audiences, count)
    ]
