"""The job schema lives in ``engines.core.tune_job`` (stdlib only, so the GUI checks jobs too); re-exported here."""
from engines.core.tune_job import (  # noqa: F401
    LAYOUTS, METHODS, PRESETS, LoraSettings, TrainJob, count_parameters, estimate_training_bytes, read_dataset, world_rank,
)
