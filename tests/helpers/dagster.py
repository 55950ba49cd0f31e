"""Dagster contexts for calling sensors and materializing assets directly in tests, with the
product's resources (the same ones definitions.py binds)."""

import dagster as dg

from orchestration.defs.resources import RESOURCES


def sensor_context(instance=None, **kwargs) -> dg.SensorEvaluationContext:
    return dg.build_sensor_context(instance=instance, resources=RESOURCES, **kwargs)
