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

Every profile id appears in exactly one of the three files. The profiles' pieces (names,
emails, times, memberships) come from `target_azure_eventhubs.testing.profiles`.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from target_azure_eventhubs.testing import profiles as gen

SEED = 20240517
HERE = Path(__file__).resolve().parent
SHAPE1_PROFILES = 200
SHAPE2_PROFILES = 150
SHAPE3_PROFILES = 100
# profiles.singer gets a STATE line after about this many RECORD lines, at the next profile
# boundary (the target groups the adjacent rows of one profile into one event; a STATE between
# them makes it send what it holds, which would split that profile into two events).
STATE_EVERY = 100


def shape1(rng: random.Random, segments: list[tuple[str, str]]) -> list[dict]:
    rows = []
    for n in range(1, SHAPE1_PROFILES + 1):
        first, last, email = gen.person(rng, n)
        birth = gen.birth_date(rng)
        for seg_id, seg_name in gen.memberships(rng, segments):
            rows.append(
                {
                    "profile_id": f"cust-{n:05d}",
                    "email": email,
                    "first_name": first,
                    "last_name": last,
                    "birth_date": birth,
                    "segment_id": seg_id,
                    "status": gen.status(rng),
                    "last_qualification_time": gen.qualification_time(rng),
                    "segment_name": seg_name,
                }
            )
    return rows


def shape2(rng: random.Random, segments: list[tuple[str, str]]) -> list[dict]:
    records = []
    for n in range(SHAPE1_PROFILES + 1, SHAPE1_PROFILES + SHAPE2_PROFILES + 1):
        first, last, email = gen.person(rng, n)
        # A few profiles have no membership at all: an identity/attribute update.
        chosen = [] if n % 37 == 0 else gen.memberships(rng, segments)
        records.append(
            {
                "profile_id": f"cust-{n:05d}",
                "email": email,
                "first_name": first,
                "last_name": last,
                "birth_date": gen.birth_date(rng),
                "segments": [
                    {
                        "id": seg_id,
                        "name": seg_name,
                        "status": gen.status(rng),
                        "lastQualificationTime": gen.qualification_time(rng),
                    }
                    for seg_id, seg_name in chosen
                ],
            }
        )
    return records


def shape3(rng: random.Random, segments: list[tuple[str, str]]) -> list[dict]:
    records = []
    start = SHAPE1_PROFILES + SHAPE2_PROFILES + 1
    for n in range(start, start + SHAPE3_PROFILES):
        first, last, email = gen.person(rng, n)
        hashed = hashlib.sha256(email.strip().lower().encode()).hexdigest()
        ecid = str(rng.randrange(10**37, 10**38))
        person: dict = {"name": {"firstName": first, "lastName": last}}
        birth = gen.birth_date(rng)
        if birth:
            person["birthDate"] = birth
        records.append(
            {
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
                            "lastQualificationTime": gen.qualification_time(rng),
                        }
                        for seg_id, _ in gen.memberships(rng, segments)
                    }
                },
            }
        )
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
    lines = [
        _dump(
            {
                "type": "SCHEMA",
                "stream": "profiles",
                "schema": SINGER_SCHEMA,
                "key_properties": ["profile_id"],
            }
        )
    ]
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
    segments = gen.segments(rng)
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
