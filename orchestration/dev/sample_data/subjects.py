"""Sites, subjects, their consent histories and the security-awareness programme they take part in.

Each table draws from its own stream. Consent: every subject grants at enrolment; about
WITHDRAWN_SHARE withdraw later (some of them after an earlier withdrawal and re-grant), about
REGRANTED_SHARE withdraw and grant again. The latest event decides. Awareness: per programme a
subject takes, a baseline at enrolment, follow-ups every three to six weeks and, for most, an
outcome measurement; scores improve and phishing clicks fall as the programme goes on.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from orchestration.dev.sample_data.formatting import timestamp
from orchestration.dev.sample_data.programmes_vocabulary import (
    AWARENESS_PROGRAMMES,
    GRANT_REASONS,
    REGRANTED_SHARE,
    WITHDRAW_REASONS,
    WITHDRAWN_SHARE,
)
from orchestration.dev.sample_data.world import World

SITE_COLUMNS = ["site_id", "tenant_id", "name", "region", "country", "vertical", "opened_at", "_loaded_at"]
SUBJECT_COLUMNS = ["subject_id", "tenant_id", "pseudonym", "site_id", "vertical", "region", "enrolled_at", "_loaded_at"]
CONSENT_COLUMNS = ["tenant_id", "subject_id", "state", "changed_at", "reason", "_loaded_at"]
AWARENESS_COLUMNS = ["measurement_id", "tenant_id", "subject_id", "programme", "measured_at", "measurement_type",
                     "score", "clicked", "reported", "vertical", "region", "_loaded_at"]


def site_rows(world: World) -> Iterator[tuple]:
    rng = random.Random(f"nexus-seed:{world.seed}:sites")
    for layout in world.layouts:
        for s in layout.sites:
            yield (s.site_id, s.tenant_id, s.name, s.region, s.country, s.vertical, timestamp(s.opened),
                   timestamp(s.opened + rng.randint(60, 1800)))


def subject_rows(world: World) -> Iterator[tuple]:
    rng = random.Random(f"nexus-seed:{world.seed}:subjects")
    for layout in world.layouts:
        for s in layout.subjects:
            yield (s.subject_id, s.tenant_id, s.pseudonym, s.site.site_id, s.site.vertical, s.site.region,
                   timestamp(s.enrolled), timestamp(s.enrolled + rng.randint(60, 1800)))


def _consent_history(rng: random.Random, enrolled: int, start: int, end: int) -> list[tuple[str, int, str]]:
    """(state, changed_at, reason) events of one subject, oldest first."""
    events = [("granted", enrolled, GRANT_REASONS[0])]
    u = rng.random()
    if u >= WITHDRAWN_SHARE + REGRANTED_SHARE:
        return events
    withdrawn = start + rng.randint(0, (end - start) // 2)
    events.append(("withdrawn", withdrawn, rng.choice(WITHDRAW_REASONS)))
    if u < REGRANTED_SHARE + WITHDRAWN_SHARE * 0.2:
        regranted = min(withdrawn + rng.randint(3, 40) * 86400, end - 7200)
        events.append(("granted", regranted, GRANT_REASONS[1]))
        if u >= REGRANTED_SHARE:  # a few withdraw a second time: the latest event still decides
            again = min(regranted + rng.randint(1, 30) * 86400, end - 60)
            events.append(("withdrawn", again, rng.choice(WITHDRAW_REASONS)))
    return events


def consent_rows(world: World) -> Iterator[tuple]:
    rng = random.Random(f"nexus-seed:{world.seed}:consent")
    for layout in world.layouts:
        for s in layout.subjects:
            for state, changed, reason in _consent_history(rng, s.enrolled, world.start_epoch, world.end_epoch):
                yield (s.tenant_id, s.subject_id, state, timestamp(changed), reason,
                       timestamp(min(changed + rng.randint(30, 900), world.end_epoch - 1)))


def _measurements(rng: random.Random, phishing: bool, begin: int, end: int) -> Iterator[tuple]:
    """(measured_at, type, score, clicked, reported) of one subject in one programme."""
    skill = rng.gauss(55, 14)
    click, report = rng.uniform(0.2, 0.5), rng.uniform(0.1, 0.35)
    when, kind = begin, "baseline"
    while when < end:
        score = min(100.0, max(0.0, round(skill + rng.gauss(0, 6), 1)))
        clicked = phishing and rng.random() < click
        reported = phishing and not clicked and rng.random() < report
        yield when, kind, score, clicked, reported
        if kind == "outcome":
            return
        skill += rng.uniform(1, 7)
        click, report = click * 0.8, min(0.9, report + 0.08)
        when += rng.randint(21, 42) * 86400 + rng.randint(-7200, 7200)
        kind = "outcome" if rng.random() < 0.2 else "follow_up"


def awareness_rows(world: World) -> Iterator[tuple]:
    rng = random.Random(f"nexus-seed:{world.seed}:awareness")
    start, end = world.start_epoch, world.end_epoch
    measurement_id = 0
    for layout in world.layouts:
        for s in layout.subjects:
            for programme in AWARENESS_PROGRAMMES:
                if rng.random() < 0.35:
                    continue  # not every subject takes every programme
                begin = start + rng.randint(0, 60) * 86400 + rng.randint(8 * 3600, 17 * 3600)
                for when, kind, score, clicked, reported in _measurements(
                        rng, programme == "phishing_simulation", begin, end):
                    measurement_id += 1
                    yield (measurement_id, s.tenant_id, s.subject_id, programme, timestamp(when), kind,
                           f"{score:.1f}", clicked, reported, s.site.vertical, s.site.region,
                           timestamp(min(when + rng.randint(60, 3600), end - 1)))
