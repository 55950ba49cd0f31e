"""Export pipelines: a tenant's report definitions and templates exported as one batch to one
destination (a bucket prefix, a webhook, an e-mail address through the delivery outbox).

models.py holds the typed shapes, store.py the only SQL on the pipeline tables (in the caller's
transaction); services/pipelines.py and services/pipeline_runs.py are the use cases.
"""
