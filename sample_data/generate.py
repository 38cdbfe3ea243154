"""Generate the sample customer profiles used by the demo, the README and the tests.

Deterministic (fixed seed, no clock): running it again rewrites the same bytes.

    python sample_data/generate.py

Writes, next to this script:

- `profiles_memberships.jsonl` -- input shape 1: one row per (profile, segment) membership,
  with `profile_id`, `email`, `first_name`, `last_name`, `birth_date`, `segment_id`,
  `status`, `last_qualification_time`, `segment_name`. Rows of a profile are adjacent.
- `profiles_segments.jsonl` -- input shape 2: one record per profile with a `segments` list.
- `profiles_events.jsonl` -- input shape 3: records already shaped like the event
  (`person`, `identityMap`, `segmentMembership`), identities pre-hashed.
- `profiles.singer` -- all of the above as one Singer stream `profiles` (SCHEMA, RECORD and
  STATE lines), for `cat sample_data/profiles.singer | target-azure-eventhubs --config ...`.

Every profile id appears in exactly one of the three files. Stdlib only.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

SEED = 20240517
HERE = Path(__file__).resolve().parent
SHAPE1_PROFILES = 200
SHAPE2_PROFILES = 150
SHAPE3_PROFILES = 100
# profiles.singer gets a STATE line after about this many RECORD lines, at the next profile
# boundary (the target groups the adjacent rows of one profile into one event; a STATE between
# them makes it send what it holds, which would split that profile into two events).
STATE_EVERY = 100

FIRST_NAMES = [
    "Jane", "John", "Amelia", "Oliver", "Sofia", "Liam", "Chloe", "Noah", "Emma", "Lucas",
    "Mia", "Ethan", "Zoe", "Mateo", "Hannah", "Arjun", "Yuki", "Fatima", "Lars", "Ines",
    "Chidi", "Priya", "Tomasz", "Elena", "Kofi", "Mei", "Rafael", "Aisha", "Sven", "Camille",
]
LAST_NAMES = [
    "Doe", "Smith", "Garcia", "Müller", "Rossi", "Kowalski", "Nakamura", "Okafor", "Dubois",
    "Johansson", "Patel", "Silva", "O'Brien", "Nguyen", "Haddad", "Schmidt", "Costa", "Kim",
    "Fernández", "Larsen", "Mensah", "Novak", "Ivanova", "Tanaka", "Moreau", "Berg",
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
# Canonical statuses and the synonyms the target accepts (the target maps them).
STATUSES = ["realized", "realized", "existing", "existing", "existing", "exited"]
SYNONYMS = {"realized": "qualified", "exited": "exiting"}


def _segments(rng: random.Random) -> list[tuple[str, str]]:
    return [
        (str(uuid.UUID(int=rng.getrandbits(128), version=4)), name) for name in SEGMENT_NAMES
    ]


def _email(rng: random.Random, first: str, last: str, n: int) -> str:
    local = f"{first}.{last}".replace("'", "").replace(" ", "")
    local = local.replace("ü", "ue").replace("á", "a")
    if n % 3:
        local += str(n)
    email = f"{local}@{rng.choice(DOMAINS)}"
    # Exports from CRMs are messy: mixed case and stray whitespace are common. The target
    # trims and lower-cases before hashing (`email_lc_sha256`).
    style = rng.random()
    if style < 0.25:
        return email.upper() if style < 0.05 else email.replace("@e", "@E")
    if style < 0.45:
        return f"  {email} "
    return email.lower()


def _time(rng: random.Random) -> str:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    moment = start + timedelta(seconds=rng.randrange(0, 150 * 86400))
    if rng.random() < 0.2:  # some sources write local times with an offset
        return moment.astimezone(timezone(timedelta(hours=2))).isoformat()
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _birth_date(rng: random.Random) -> str | None:
    if rng.random() < 0.1:
        return None
    day = datetime(1950, 1, 1) + timedelta(days=rng.randrange(0, 55 * 365))
    return day.strftime("%Y-%m-%d")


def _status(rng: random.Random) -> str:
    status = rng.choice(STATUSES)
    if status in SYNONYMS and rng.random() < 0.3:
        return SYNONYMS[status]
    return status


def _person(rng: random.Random, n: int) -> tuple[str, str, str]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    return first, last, _email(rng, first, last, n)


def _memberships(rng: random.Random, segments: list[tuple[str, str]]) -> list[tuple[str, str]]:
    count = rng.choices([1, 2, 3, 4], weights=[4, 3, 2, 1])[0]
    return rng.sample(segments, count)


def shape1(rng: random.Random, segments: list[tuple[str, str]]) -> list[dict]:
    rows = []
    for n in range(1, SHAPE1_PROFILES + 1):
        first, last, email = _person(rng, n)
        birth = _birth_date(rng)
        for seg_id, seg_name in _memberships(rng, segments):
            rows.append({
                "profile_id": f"cust-{n:05d}",
                "email": email,
                "first_name": first,
                "last_name": last,
                "birth_date": birth,
                "segment_id": seg_id,
                "status": _status(rng),
                "last_qualification_time": _time(rng),
                "segment_name": seg_name,
            })
    return rows


def shape2(rng: random.Random, segments: list[tuple[str, str]]) -> list[dict]:
    records = []
    for n in range(SHAPE1_PROFILES + 1, SHAPE1_PROFILES + SHAPE2_PROFILES + 1):
        first, last, email = _person(rng, n)
        # A few profiles have no membership at all: an identity/attribute update.
        chosen = [] if n % 37 == 0 else _memberships(rng, segments)
        records.append({
            "profile_id": f"cust-{n:05d}",
            "email": email,
            "first_name": first,
            "last_name": last,
            "birth_date": _birth_date(rng),
            "segments": [
                {
                    "id": seg_id,
                    "name": seg_name,
                    "status": _status(rng),
                    "lastQualificationTime": _time(rng),
                }
                for seg_id, seg_name in chosen
            ],
        })
    return records


def shape3(rng: random.Random, segments: list[tuple[str, str]]) -> list[dict]:
    records = []
    start = SHAPE1_PROFILES + SHAPE2_PROFILES + 1
    for n in range(start, start + SHAPE3_PROFILES):
        first, last, email = _person(rng, n)
        hashed = hashlib.sha256(email.strip().lower().encode()).hexdigest()
        ecid = str(rng.randrange(10**37, 10**38))
        person: dict = {"name": {"firstName": first, "lastName": last}}
        birth = _birth_date(rng)
        if birth:
            person["birthDate"] = birth
        records.append({
            "profile_id": f"cust-{n:05d}",
            "person": person,
            "identityMap": {
                "email_lc_sha256": [{"id": hashed}],
                "ecid": [{"id": ecid}],
            },
            "segmentMembership": {
                "ups": {
                    seg_id: {
                        # shape 3 already uses the event's canonical statuses
                        "status": rng.choice(["realized", "existing", "exited"]),
                        "lastQualificationTime": _time(rng),
                    }
                    for seg_id, _ in _memberships(rng, segments)
                }
            },
        })
    return records


SINGER_SCHEMA = {
    "type": "object",
    "properties": {
        "profile_id": {"type": "string"},
        "email": {"type": ["string", "null"]},
        "first_name": {"type": ["string", "null"]},
        "last_name": {"type": ["string", "null"]},
        "birth_date": {"type": ["string", "null"], "format": "date"},
        "segment_id": {"type": ["string", "null"]},
        "status": {"type": ["string", "null"]},
        "last_qualification_time": {"type": ["string", "null"], "format": "date-time"},
        "segment_name": {"type": ["string", "null"]},
        "segments": {"type": ["array", "null"], "items": {"type": "object"}},
        "person": {"type": ["object", "null"]},
        "identityMap": {"type": ["object", "null"]},
        "segmentMembership": {"type": ["object", "null"]},
    },
    "required": ["profile_id"],
}


def _dump(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.write_text("".join(_dump(r) + "\n" for r in records), encoding="utf-8")


def write_singer(path: Path, records: list[dict]) -> None:
    lines = [_dump({
        "type": "SCHEMA",
        "stream": "profiles",
        "schema": SINGER_SCHEMA,
        "key_properties": ["profile_id"],
    })]
    since_state = 0
    for i, record in enumerate(records, start=1):
        lines.append(_dump({"type": "RECORD", "stream": "profiles", "record": record}))
        since_state += 1
        last = i == len(records)
        boundary = last or records[i]["profile_id"] != record["profile_id"]
        if boundary and (since_state >= STATE_EVERY or last):
            state = {"bookmarks": {"profiles": {"line": i}}}
            lines.append(_dump({"type": "STATE", "value": state}))
            since_state = 0
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def main() -> None:
    rng = random.Random(SEED)
    segments = _segments(rng)
    one, two, three = shape1(rng, segments), shape2(rng, segments), shape3(rng, segments)
    write_jsonl(HERE / "profiles_memberships.jsonl", one)
    write_jsonl(HERE / "profiles_segments.jsonl", two)
    write_jsonl(HERE / "profiles_events.jsonl", three)
    write_singer(HERE / "profiles.singer", one + two + three)
    profiles = {r["profile_id"] for r in one + two + three}
    print(
        f"{len(one)} membership rows, {len(two)} + {len(three)} profile records, "
        f"{len(profiles)} distinct profiles, {len(segments)} segments"
    )


if __name__ == "__main__":
    main()
