"""The world every table shares: tenants, their analysts, connectors and habits."""

from __future__ import annotations

import datetime as dt
import math
import random
from functools import cached_property

from orchestration.dev.sample_data.formatting import epoch_of
from orchestration.dev.sample_data.programmes import TenantLayout, build_layouts
from orchestration.dev.sample_data.sampling import weighted_pool
from orchestration.dev.sample_data.vocabulary import (
    CONNECTOR_ALERT_WEIGHT,
    CONNECTOR_KINDS,
    CONNECTOR_PRODUCTS,
    FIRST_NAMES,
    LAST_NAMES,
    NAMED_TENANTS,
    PLANS,
    SEVERITY_WEIGHTS,
    TEAM_WEIGHTS,
    TEAMS,
    TECHNIQUE_SKEW,
    TECHNIQUES,
    TIMEZONES,
    WINDOW_DAYS,
    tenant_ids,
)


class Tenant:
    __slots__ = ("index", "id", "name", "plan", "timezone", "created", "weight", "ack_factor",
                 "resolve_factor", "analysts", "analyst_pool", "connectors", "connector_pool",
                 "technique_pool", "noise_technique_pool")


class World:
    def __init__(self, n_tenants: int, seed: int, end: dt.date):
        rng = random.Random(f"nexus-seed:{seed}:world")
        self.seed = seed
        self.end = end
        self.end_epoch = epoch_of(end)
        self.start_epoch = self.end_epoch - WINDOW_DAYS * 86400
        technique_index = list(range(len(TECHNIQUES)))
        base_popularity = [1.0 / (r + 1) ** TECHNIQUE_SKEW for r in technique_index]
        self.tenants: list[Tenant] = []
        for i, tenant_id in enumerate(tenant_ids(n_tenants)):
            t = Tenant()
            t.index, t.id = i, tenant_id
            if i < len(NAMED_TENANTS):
                _, t.name, t.plan, t.timezone = NAMED_TENANTS[i]
            else:
                t.name = f"Tenant {i + 1:03d} Inc."
                t.plan = rng.choice(PLANS)
                t.timezone = rng.choice(TIMEZONES)
            t.created = self.start_epoch - rng.randint(200, 1500) * 86400 + rng.randint(8 * 3600, 18 * 3600)
            # Volume falls with the position, with some noise: tenants clearly differ.
            t.weight = rng.uniform(0.8, 1.25) / (i + 1) ** 0.6
            t.ack_factor = rng.uniform(0.6, 1.35)  # tenants differ in speed
            t.resolve_factor = rng.uniform(0.65, 1.3)
            prefer = [p * rng.lognormvariate(0.0, 0.6) for p in base_popularity]
            t.technique_pool = weighted_pool(technique_index, prefer, bits=12)
            t.noise_technique_pool = weighted_pool(technique_index, [p ** 0.5 for p in prefer], bits=12)

            analysts = rng.randint(8, 40)
            names = rng.sample(range(len(FIRST_NAMES) * len(LAST_NAMES)), analysts)
            t.analysts = []
            for j, name_index in enumerate(names):
                first = FIRST_NAMES[name_index // len(LAST_NAMES)]
                last = LAST_NAMES[name_index % len(LAST_NAMES)]
                team = TEAMS[j % 4] if j < 4 else rng.choices(TEAMS, TEAM_WEIGHTS)[0]
                hired = max(self.start_epoch - rng.randint(14, 2500) * 86400,
                            t.created + rng.randint(0, 90) * 86400)
                t.analysts.append((f"{tenant_id}-a{j + 1:03d}", first, last, team, hired))
            # Tier 1/2 handle most incidents; some analysts are busier than others.
            workload = [{"tier1": 3.0, "tier2": 2.0, "threat_hunting": 0.5, "ir": 1.0}[a[3]]
                        * rng.uniform(0.5, 1.5) for a in t.analysts]
            t.analyst_pool = weighted_pool([a[0] for a in t.analysts], workload, bits=10)

            kinds = ["edr", "siem"] + [rng.choice(CONNECTOR_KINDS) for _ in range(rng.randint(5, 12) - 2)]
            t.connectors = []
            used_names: dict[str, int] = {}
            for j, kind in enumerate(kinds):
                product = rng.choice(CONNECTOR_PRODUCTS[kind])
                used_names[product] = used_names.get(product, 0) + 1
                name = product if used_names[product] == 1 else f"{product} ({used_names[product]})"
                created = t.created + rng.randint(1, 150) * 86400 + rng.randint(0, 86399)
                t.connectors.append((f"{tenant_id}-c{j + 1:02d}", kind, name, created))
            t.connector_pool = weighted_pool([c[0] for c in t.connectors],
                                     [CONNECTOR_ALERT_WEIGHT[c[1]] * rng.uniform(0.5, 1.5) for c in t.connectors],
                                     bits=10)
            self.tenants.append(t)
        self.tenant_pool = weighted_pool(list(range(n_tenants)), [t.weight for t in self.tenants])
        self.severity_pool = weighted_pool(list(range(4)), SEVERITY_WEIGHTS)
        self.noise_severity_pool = weighted_pool(list(range(4)), [1, 5, 25, 69])
        self._hourly_intensity(rng)

    @cached_property
    def layouts(self) -> list[TenantLayout]:
        """Each tenant's verticals, sites and subjects, from a stream of their own: nothing the
        world drew above changes because they exist."""
        return build_layouts(self)

    def _hourly_intensity(self, rng: random.Random) -> None:
        """Cumulative share of incidents per hour of the window (weekdays, working hours, a slow
        rise, a few campaign bursts), for turning uniform draws into opening times."""
        hours = WINDOW_DAYS * 24
        first_day = self.start_epoch // 86400
        bursts = [(rng.randrange(hours), rng.randint(6, 36), rng.uniform(1.8, 3.5)) for _ in range(5)]
        intensity = []
        for h in range(hours):
            weekday = (first_day + h // 24 + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
            hour = h % 24
            value = (1.0 if weekday < 5 else 0.55)
            value *= 0.5 + math.exp(-(((hour - 13.5) / 5.0) ** 2))
            value *= 0.85 + 0.3 * h / hours
            for start, length, factor in bursts:
                if start <= h < start + length:
                    value *= factor
            intensity.append(value)
        total = sum(intensity)
        cumulative = [0.0]
        for value in intensity:
            cumulative.append(cumulative[-1] + value / total)
        cumulative[-1] = 1.0
        self.hour_cdf = cumulative
        self.hour_scale = [3600.0 * total / value for value in intensity]  # seconds per unit of share
