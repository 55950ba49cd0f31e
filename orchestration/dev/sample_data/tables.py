"""The smaller tables: tenants, analysts, detections, connectors and their hourly health,
compliance controls and evidence."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

from orchestration.dev.sample_data.formatting import day_prefix, email_ascii, hms_table, timestamp
from orchestration.dev.sample_data.vocabulary import (
    CONTROLS,
    DOWN_LATENCY_MS,
    EVIDENCE_VALID_DAYS,
    HEALTH_DAYS,
    RULE_TEMPLATES,
    TECHNIQUES,
)
from orchestration.dev.sample_data.world import World


def tenant_rows(world: World) -> Iterator[tuple]:
    rng = random.Random(f"nexus-seed:{world.seed}:tenants")
    for t in world.tenants:
        yield (t.id, t.name, t.plan, t.timezone, timestamp(t.created), timestamp(t.created + rng.randint(60, 1800)))


def analyst_rows(world: World) -> Iterator[tuple]:
    rng = random.Random(f"nexus-seed:{world.seed}:analysts")
    for t in world.tenants:
        domain = f"{t.id}.example.com"
        for analyst_id, first, last, team, hired in t.analysts:
            local = email_ascii(f"{first}.{last}".lower())
            yield (analyst_id, t.id, f"{first} {last}", f"{local}@{domain}", team,
                   day_prefix(hired // 86400).strip(), timestamp(hired + 9 * 3600 + rng.randint(60, 1800)))



def detection_rows(world: World) -> Iterator[tuple]:
    """Per tenant, rules for a subset of the techniques (popular ones more likely covered);
    most predate the window, some are added during it, about 10% are disabled."""
    rng = random.Random(f"nexus-seed:{world.seed}:detections")
    end = world.end_epoch
    for t in world.tenants:
        coverage = rng.uniform(0.4, 0.85)
        j = 0
        for k, (tech_id, name, _, _) in enumerate(TECHNIQUES):
            if rng.random() > coverage * (1.3 if k < 10 else 0.9):
                continue
            for variant in rng.sample(RULE_TEMPLATES, rng.choice([1, 1, 1, 2])):
                j += 1
                created = max(t.created, end - rng.randint(2, 700) * 86400) + rng.randint(0, 86399)
                created = min(created, end - 86400)
                enabled = rng.random() >= 0.1
                changed = created if enabled else created + rng.randint(0, (end - 60 - created) // 60) * 60
                yield (f"{t.id}-d{j:03d}", t.id, tech_id, variant.format(name=name), enabled,
                       timestamp(created), timestamp(min(changed + rng.randint(60, 1800), end - 1)))


def connector_rows(world: World) -> Iterator[tuple]:
    """Each connector with the vertical and region of its home site."""
    rng = random.Random(f"nexus-seed:{world.seed}:connectors")
    for t, layout in zip(world.tenants, world.layouts, strict=True):
        for connector_id, kind, name, created in t.connectors:
            site = layout.connector_site[connector_id]
            yield (connector_id, t.id, name, kind, timestamp(created), timestamp(created + rng.randint(60, 1800)),
                   site.vertical, site.region)


HEALTH_COLUMNS = ["event_id", "observed_at", "_loaded_at", "status", "latency_ms", "events_ingested",
                  "tenant_id", "connector_id"]


def health_lines(world: World) -> Iterator[str]:
    """One observation per connector per hour over the last HEALTH_DAYS days, ids in time
    order. Each connector is a Markov chain: mostly healthy, degraded spells, outage streaks."""
    rng = random.Random(f"nexus-seed:{world.seed}:health")
    rand = rng.random
    hours = HEALTH_DAYS * 24
    first = world.end_epoch - hours * 3600
    end = world.end_epoch
    connectors = []  # [tail, base latency, hourly volume, flakiness, state]
    for t in world.tenants:
        for connector_id, kind, _, _ in t.connectors:
            base = {"edr": 2_000, "siem": 40_000, "firewall": 120_000, "cloud": 15_000,
                    "identity": 5_000, "email": 3_000}[kind]
            connectors.append([f"{t.id},{connector_id}\n", rng.randint(40, 600),
                               base * rng.uniform(0.3, 3.0), rng.uniform(0.3, 2.0), "healthy"])
    diurnal = [0.45 + math.exp(-(((h - 13.5) / 5.0) ** 2)) for h in range(24)]
    day = {d: day_prefix(d) for d in range(first // 86400, end // 86400)}
    hms = hms_table()
    event_id = 0
    for h in range(hours):
        observed = first + h * 3600
        observed_s = timestamp(observed)
        day_factor = diurnal[h % 24]
        for c in connectors:
            tail, latency, volume, flaky, state = c
            x = rand()
            if state == "healthy":
                state = "down" if x < 0.0015 * flaky else "degraded" if x < 0.012 * flaky else "healthy"
            elif state == "degraded":
                state = "down" if x < 0.04 else "healthy" if x < 0.40 else "degraded"
            else:
                state = "healthy" if x < 0.22 else "down"
            c[4] = state
            if state == "healthy":
                ms = int(latency * (0.7 + 0.6 * rand()))
                events = int(volume * day_factor * (0.85 + 0.3 * rand()))
            elif state == "degraded":
                ms = int(latency * (3 + 7 * rand()))
                events = int(volume * day_factor * (0.1 + 0.5 * rand()))
            else:
                ms, events = DOWN_LATENCY_MS, 0
            loaded = observed + 30 + int(rand() * 270)
            if loaded >= end:
                loaded = end - 1
            event_id += 1
            yield f"{event_id},{observed_s},{day[loaded // 86400]}{hms[loaded % 86400]},{state},{ms},{events},{tail}"


def control_rows(world: World) -> Iterator[tuple]:
    """Each control with the vertical and region of the programme that owns it (its own stream:
    the other columns stay as they were)."""
    rng = random.Random(f"nexus-seed:{world.seed}:controls")
    governed = random.Random(f"nexus-seed:{world.seed}:controls-governance")
    for t, layout in zip(world.tenants, world.layouts, strict=True):
        owners = [a for a in t.analysts if a[3] in ("tier2", "ir", "threat_hunting")] or t.analysts
        chosen = sorted(rng.sample(range(len(CONTROLS)), rng.randint(15, min(30, len(CONTROLS)))))
        for index in chosen:
            framework, control, title = CONTROLS[index]
            loaded = world.start_epoch - rng.randint(1, 60) * 86400 + rng.randint(0, 86399)
            site = governed.choice(layout.sites)
            yield (t.id, f"{framework}-{control}", framework, title, rng.choice(owners)[0], timestamp(loaded),
                   site.vertical, site.region)


def evidence_rows(world: World) -> Iterator[tuple]:
    """Evidence per control on a 3-7 week cadence through the window. Older than
    EVIDENCE_VALID_DAYS is expired; a few are rejected; some controls stop getting evidence."""
    rng = random.Random(f"nexus-seed:{world.seed}:evidence")
    start, end = world.start_epoch, world.end_epoch
    tenants = {t.id: t for t in world.tenants}
    evidence_id = 0
    for tenant_id, control_id, *_ in control_rows(world):
        reviewers = [a[0] for a in tenants[tenant_id].analysts]
        cadence = rng.randint(21, 49) * 86400
        stop = end if rng.random() >= 0.12 else end - rng.randint(60, 150) * 86400
        collected = start + rng.randint(0, cadence)
        while collected < stop - 3600:
            evidence_id += 1
            if rng.random() < 0.07:
                status = "rejected"
            elif collected < end - EVIDENCE_VALID_DAYS * 86400:
                status = "expired"
            else:
                status = "valid"
            reviewed = min(collected + rng.randint(600, 3 * 86400), end - 1)
            yield (evidence_id, tenant_id, control_id, timestamp(collected), status, rng.choice(reviewers),
                   timestamp(reviewed))
            collected += cadence + rng.randint(-3, 3) * 86400 + rng.randint(-7200, 7200)
