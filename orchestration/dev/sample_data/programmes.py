"""Where each tenant's work happens and whom it concerns: verticals, sites (with region and
country), connectors' home sites, subjects, and the governed columns of every incident.

Everything here draws from its own random streams, never from the world's or an existing
table's: adding these columns leaves every value the seed produced before exactly as it was.
"""

from __future__ import annotations

import random

from orchestration.dev.sample_data.programmes_vocabulary import (
    FACILITY,
    HOME_REGION,
    HOME_REGION_SHARE,
    NAMED_VERTICALS,
    REGIONS,
    SUBJECT_SHARE,
    SUSPENSION_REASONS,
    SUSPENSION_SHARE,
    VERTICALS,
)
from orchestration.dev.sample_data.sampling import weighted_pool
from orchestration.dev.sample_data.vocabulary import FIRST_NAMES, LAST_NAMES

SITE_BITS = 10


class Site:
    __slots__ = ("site_id", "tenant_id", "name", "region", "country", "vertical", "opened")


class Subject:
    __slots__ = ("subject_id", "tenant_id", "site", "pseudonym", "enrolled")


class TenantLayout:
    __slots__ = ("verticals", "sites", "site_pool", "connector_site", "subjects", "site_subjects")


def _sites(rng: random.Random, tenant, verticals: list[str], start: int) -> list[Site]:
    home = HOME_REGION.get(tenant.timezone, "emea")
    others = [r for r in REGIONS if r != home]
    plan = [v for v in verticals for _ in range(rng.randint(1, 3))]
    sites = []
    for j, vertical in enumerate(plan):
        region = home if rng.random() < HOME_REGION_SHARE else rng.choice(others)
        if j == len(plan) - 1 and all(s.region == region for s in sites):
            region = rng.choice([r for r in REGIONS if r != region])  # every tenant spans two regions or more
        country, cities = rng.choice(REGIONS[region])
        s = Site()
        s.site_id, s.tenant_id = f"{tenant.id}-site{j + 1:02d}", tenant.id
        s.vertical, s.region, s.country = vertical, region, country
        s.name = f"{rng.choice(cities)} {FACILITY[vertical]}"
        s.opened = min(tenant.created + rng.randint(0, 400) * 86400 + rng.randint(-14400, 14400), start - 86400)
        sites.append(s)
    return sites


def _subjects(rng: random.Random, tenant, sites: list[Site], site_pool: list[int], start: int) -> list[Subject]:
    subjects = []
    for j in range(rng.randint(80, 160)):
        s = Subject()
        s.subject_id, s.tenant_id = f"{tenant.id}-p{j + 1:04d}", tenant.id
        s.site = sites[site_pool[rng.getrandbits(SITE_BITS)]]
        s.pseudonym = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)[0]}."
        s.enrolled = start - rng.randint(1, 200) * 86400 + rng.randint(8 * 3600, 17 * 3600)
        subjects.append(s)
    return subjects


def build_layouts(world) -> list[TenantLayout]:
    """One layout per tenant, in the order of `world.tenants` (a sample_data.world.World, which
    imports this module: hence no annotation)."""
    rng = random.Random(f"nexus-seed:{world.seed}:programmes")
    layouts = []
    for t in world.tenants:
        layout = TenantLayout()
        layout.verticals = list(NAMED_VERTICALS.get(t.id) or rng.sample(VERTICALS, rng.randint(2, 3)))
        layout.sites = _sites(rng, t, layout.verticals, world.start_epoch)
        layout.site_pool = weighted_pool(list(range(len(layout.sites))),
                                         [rng.uniform(0.4, 2.0) for _ in layout.sites], bits=SITE_BITS)
        layout.connector_site = {c[0]: layout.sites[layout.site_pool[rng.getrandbits(SITE_BITS)]] for c in t.connectors}
        layout.subjects = _subjects(rng, t, layout.sites, layout.site_pool, world.start_epoch)
        layout.site_subjects = [[s for s in layout.subjects if s.site is site] for site in layout.sites]
        layouts.append(layout)
    return layouts


class IncidentGovernance:
    """The governed columns of each incident, drawn in incident order from one stream.

    The incidents load and the alerts load each make their own and call `draw(tenant index)`
    once per incident in the same order, so an escalated alert knows its incident's vertical
    and region without either load keeping incidents in memory.
    """

    def __init__(self, world):
        self._rng = random.Random(f"nexus-seed:{world.seed}:incident-governance")
        self._layouts = world.layouts
        # per tenant, per site: ",vertical,region,site_id"
        self._site_text = [[f",{s.vertical},{s.region},{s.site_id}" for s in lay.sites] for lay in world.layouts]
        self._region_text = [[f",{s.vertical},{s.region}" for s in lay.sites] for lay in world.layouts]
        self.vertical_region = ""   # the last draw's ",vertical,region"

    def draw(self, tenant: int) -> str:
        """',vertical,region,site_id,suspension_status,suspension_reason,subject_id' of the next incident."""
        rng = self._rng
        layout = self._layouts[tenant]
        site = layout.site_pool[rng.getrandbits(SITE_BITS)]
        self.vertical_region = self._region_text[tenant][site]
        u = rng.random()
        suspension = (",suspended," + SUSPENSION_REASONS[int(u / SUSPENSION_SHARE * len(SUSPENSION_REASONS))]
                      if u < SUSPENSION_SHARE else ",active,")
        subject = ""
        if rng.random() < SUBJECT_SHARE:
            candidates = layout.site_subjects[site] or layout.subjects
            subject = candidates[int(rng.random() * len(candidates))].subject_id
        return f"{self._site_text[tenant][site]}{suspension},{subject}"
