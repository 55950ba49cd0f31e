"""The vocabulary of the governed sample data: verticals (business lines or programmes),
regions and their sites, suspension reasons, consent reasons and awareness programmes."""

from __future__ import annotations

VERTICALS = ["healthcare", "finance", "public_sector", "retail", "energy", "manufacturing"]
# The named tenants' verticals are fixed, so tests and demos can name them; acme has three
# (a multi-vertical programme to intersect), the others two or three.
NAMED_VERTICALS = {
    "acme": ["healthcare", "finance", "public_sector"],
    "globex": ["finance", "retail"],
    "initech": ["public_sector", "energy", "finance"],
    "umbrella": ["healthcare", "manufacturing"],
    "hooli": ["retail", "finance", "energy"],
    "stark": ["manufacturing", "energy"],
    "wayne": ["finance", "public_sector", "healthcare"],
    "wonka": ["manufacturing", "retail"],
}
# region -> (country, cities)
REGIONS = {
    "emea": [("DE", ["Berlin", "Munich", "Hamburg"]), ("GB", ["London", "Manchester"]), ("FR", ["Paris", "Lyon"]),
             ("NL", ["Amsterdam"])],
    "amer": [("US", ["New York", "Chicago", "Austin", "Seattle"]), ("CA", ["Toronto"]), ("BR", ["São Paulo"])],
    "apac": [("JP", ["Tokyo", "Osaka"]), ("SG", ["Singapore"]), ("AU", ["Sydney", "Melbourne"])],
}
HOME_REGION = {"America/New_York": "amer", "Europe/Berlin": "emea", "Asia/Tokyo": "apac", "UTC": "emea"}
HOME_REGION_SHARE = 0.55    # a site is in the tenant's home region this often
FACILITY = {"healthcare": "Hospital", "finance": "Branch", "public_sector": "Agency Office", "retail": "Store",
            "energy": "Plant", "manufacturing": "Factory"}

SUBJECT_SHARE = 0.40        # incidents that concern a person (a subject)
SUSPENSION_SHARE = 0.03     # incidents suspended (legal hold, law enforcement, ...)
SUSPENSION_REASONS = ["legal_hold", "law_enforcement_request", "internal_investigation", "customer_dispute"]

# Consent histories: every subject grants at enrolment; some withdraw (the latest event decides).
WITHDRAWN_SHARE = 0.07      # latest state withdrawn
REGRANTED_SHARE = 0.05      # withdrew, then granted again: visible again
GRANT_REASONS = ["programme_enrolment", "renewed_consent"]
WITHDRAW_REASONS = ["subject_request", "left_programme", "erasure_request"]

AWARENESS_PROGRAMMES = ["phishing_simulation", "security_training"]
