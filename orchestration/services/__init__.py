"""The use cases, one function each, typed in and out; each owns its transaction.

The CLI (`cli/`), Dagster (`defs/`) and the API (`api/`) call these and nothing below them for
anything that changes state. A service opens (or is given) a connection, does its work, and
commits once at the end; the domain functions it calls never commit, except the audit append
of a refusal, which must survive the rollback of the refused work.
Refusals are the errors of `orchestration.errors`.
"""
