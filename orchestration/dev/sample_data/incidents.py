"""Incidents and their alerts, generated in blocks from one shared stream of facts."""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterator

from orchestration.dev.sample_data.formatting import csv_quote, day_prefix, hms_table
from orchestration.dev.sample_data.programmes import IncidentGovernance
from orchestration.dev.sample_data.sampling import LOGNORMAL_BITS, POOL_BITS, lognormal_factors
from orchestration.dev.sample_data.vocabulary import (
    ACK_MEDIAN_OF_SLA,
    ACK_SIGMA,
    CLOSED_AFTER_SECONDS,
    GENERIC_TITLES,
    RESOLVE_MEDIAN_OF_SLA,
    RESOLVE_SIGMA,
    RULE_TEMPLATES,
    SEVERITIES,
    SLA_ACK_MINUTES,
    SLA_RESOLVE_MINUTES,
    STUCK_SHARE,
    TECHNIQUES,
    TRICKY_TITLE_SHARE,
    TRICKY_TITLES,
)
from orchestration.dev.sample_data.world import World

BLOCK = 8192               # incidents generated per block


def incident_core(world: World, n: int) -> Iterator[tuple[int, list, list, list, list]]:
    """The facts incidents and alerts share, in blocks: (first id, tenant indexes, severity
    indexes, technique indexes, opening epochs). Ids follow opening time.

    Both the incidents and the alerts load call this: it only uses its own random stream, so
    the second pass regenerates exactly the same incidents without keeping them in memory.
    """
    rng = random.Random(f"nexus-seed:{world.seed}:incident-core")
    rand, bits = rng.random, rng.getrandbits
    tenant_pool, severity_pool = world.tenant_pool, world.severity_pool
    technique_pools = [t.technique_pool for t in world.tenants]
    cdf, scale = world.hour_cdf, world.hour_scale
    start, last = world.start_epoch, world.end_epoch - 1
    find = bisect.bisect_right
    # Ascending uniform order statistics, streamed: x runs through the sorted sample from the
    # top (x_n = U^(1/n), x_{k} = x_{k+1} * U^(1/k)), so 1 - x ascends. No sorting, no memory.
    x = 1.0
    remaining = n
    first_id = 1
    while remaining:
        m = min(BLOCK, remaining)
        tenants = [tenant_pool[bits(POOL_BITS)] for _ in range(m)]
        severities = [severity_pool[bits(POOL_BITS)] for _ in range(m)]
        techniques = [technique_pools[t][bits(12)] for t in tenants]
        opened = []
        append = opened.append
        for k in range(remaining, remaining - m, -1):
            x *= rand() ** (1.0 / k)
            u = 1.0 - x
            h = find(cdf, u) - 1
            o = start + h * 3600 + int((u - cdf[h]) * scale[h])
            append(o if o <= last else last)
        yield first_id, tenants, severities, techniques, opened
        first_id += m
        remaining -= m


INCIDENT_COLUMNS = ["incident_id", "opened_at", "acknowledged_at", "resolved_at", "_loaded_at", "status",
                    "assignee_id", "title", "tenant_id", "attack_technique_id", "severity",
                    "sla_ack_minutes", "sla_resolve_minutes",
                    "vertical", "region", "site_id", "suspension_status", "suspension_reason", "subject_id"]


def incident_lines(world: World, n: int) -> Iterator[str]:
    rng = random.Random(f"nexus-seed:{world.seed}:incidents")
    rand, bits = rng.random, rng.getrandbits
    end = world.end_epoch
    day = {d: day_prefix(d) for d in range(world.start_epoch // 86400, end // 86400)}
    hms = hms_table()
    n_tech = len(TECHNIQUES)
    # "tenant,technique,severity,sla_ack,sla_resolve" for every combination.
    tails = [f"{t.id},{TECHNIQUES[k][0]},{s},{SLA_ACK_MINUTES[s]},{SLA_RESOLVE_MINUTES[s]}"
             for t in world.tenants for k in range(n_tech) for s in SEVERITIES]
    titles = [[csv_quote(title), csv_quote(title)] + [csv_quote(g.format(name=name)) for g in GENERIC_TITLES]
              for _, name, _, title in TECHNIQUES]
    tricky = [csv_quote(t) for t in TRICKY_TITLES]
    tricky_scale = len(tricky) / TRICKY_TITLE_SHARE
    ack_median = [SLA_ACK_MINUTES[s] * 60 * ACK_MEDIAN_OF_SLA * t.ack_factor
                  for t in world.tenants for s in SEVERITIES]
    resolve_median = [SLA_RESOLVE_MINUTES[s] * 60 * RESOLVE_MEDIAN_OF_SLA * t.resolve_factor
                      for t in world.tenants for s in SEVERITIES]
    ack_factor, resolve_factor = lognormal_factors(ACK_SIGMA), lognormal_factors(RESOLVE_SIGMA)
    analyst_pools = [t.analyst_pool for t in world.tenants]
    closed_before = end - CLOSED_AFTER_SECONDS
    governed = IncidentGovernance(world).draw
    for iid, tenants, severities, techniques, opened in incident_core(world, n):
        for t, s, k, o in zip(tenants, severities, techniques, opened, strict=True):
            ts = t * 4 + s
            a = o + 20 + int(ack_median[ts] * ack_factor[bits(LOGNORMAL_BITS)])
            r = o + int(resolve_median[ts] * resolve_factor[bits(LOGNORMAL_BITS)])
            if r < a + 60:
                r = a + 60
            u = rand()
            o_s = day[o // 86400] + hms[o % 86400]
            if a >= end:
                a_s = r_s = assignee = ""
                status, last = "new", o
            else:
                a_s = day[a // 86400] + hms[a % 86400]
                assignee = analyst_pools[t][bits(10)]
                if r >= end or u < STUCK_SHARE:
                    r_s = ""
                    status, last = ("acknowledged" if rand() < 0.35 else "in_progress"), a
                else:
                    r_s = day[r // 86400] + hms[r % 86400]
                    status, last = ("closed" if r < closed_before and u < 0.9 else "resolved"), r
            loaded = last + 60 + int(rand() * 1740)
            if loaded >= end:
                loaded = end - 1
            v = rand()
            title = tricky[int(v * tricky_scale)] if v < TRICKY_TITLE_SHARE else titles[k][bits(2)]
            yield (f"{iid},{o_s},{a_s},{r_s},{day[loaded // 86400]}{hms[loaded % 86400]},{status},"
                   f"{assignee},{title},{tails[(t * n_tech + k) * 4 + s]}{governed(t)}\n")
            iid += 1


ALERT_COLUMNS = ["alert_id", "incident_id", "created_at", "_loaded_at", "connector_id", "rule_name",
                 "tenant_id", "attack_technique_id", "severity", "vertical", "region"]


def alert_lines(world: World, n: int) -> Iterator[str]:
    """1-3 alerts shortly before each incident opened (mean 1.2) and, around the same time,
    alerts nobody escalated (0.3 per incident): about 1.5 alerts per incident, 20% unlinked.
    An escalated alert belongs to its incident's vertical and region (the case's business line);
    one nobody escalated to its connector's home site's."""
    rng = random.Random(f"nexus-seed:{world.seed}:alerts")
    rand, bits = rng.random, rng.getrandbits
    start, end = world.start_epoch, world.end_epoch
    day = {d: day_prefix(d) for d in range(start // 86400, end // 86400)}
    hms = hms_table()
    n_tech = len(TECHNIQUES)
    tails = [f"{t.id},{TECHNIQUES[k][0]},{s}" for t in world.tenants for k in range(n_tech) for s in SEVERITIES]
    rules = [[csv_quote(r.format(name=name)) for r in RULE_TEMPLATES] for _, name, _, _ in TECHNIQUES]
    connector_pools = [t.connector_pool for t in world.tenants]
    noise_techniques = [t.noise_technique_pool for t in world.tenants]
    noise_severity = world.noise_severity_pool
    governance = IncidentGovernance(world)
    connector_region = {c: f",{site.vertical},{site.region}\n"
                        for layout in world.layouts for c, site in layout.connector_site.items()}
    alert_id = 0
    for iid, tenants, severities, techniques, opened in incident_core(world, n):
        for t, s, k, o in zip(tenants, severities, techniques, opened, strict=True):
            connectors = connector_pools[t]
            tail = tails[(t * n_tech + k) * 4 + s]
            rule = rules[k]
            governance.draw(t)
            region = governance.vertical_region + "\n"
            u = rand()
            c = o - 5 - int(rand() * 600)  # the last alert before the incident opened
            if u < 0.85:
                times = (c,)
            else:
                b = c - 1 - int(rand() * 900)
                times = (b, c) if u < 0.95 else (b - 1 - int(rand() * 900), b, c)
            for c in times:
                if c < start:
                    c = start
                loaded = o + 60 + int(rand() * 1740)
                if loaded >= end:
                    loaded = end - 1
                alert_id += 1
                yield (f"{alert_id},{iid},{day[c // 86400]}{hms[c % 86400]},{day[loaded // 86400]}"
                       f"{hms[loaded % 86400]},{connectors[bits(10)]},{rule[bits(2)]},{tail}{region}")
            if rand() < 0.3:
                c = o - int(rand() * 3600)
                if c < start:
                    c = start
                loaded = c + 60 + int(rand() * 1740)
                if loaded >= end:
                    loaded = end - 1
                nk = noise_techniques[t][bits(12)]
                connector = connectors[bits(10)]
                alert_id += 1
                yield (f"{alert_id},,{day[c // 86400]}{hms[c % 86400]},{day[loaded // 86400]}"
                       f"{hms[loaded % 86400]},{connector},{rules[nk][bits(2)]},"
                       f"{tails[(t * n_tech + nk) * 4 + noise_severity[bits(POOL_BITS)]]}{connector_region[connector]}")
            iid += 1
