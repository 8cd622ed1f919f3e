"""Core services: configs and profiles, seeding, results and claims, the results store, figures,
checkpoints, progress and the runner. Library code (everything outside ``core``, ``topics``,
``site`` and ``cli``) does not import from here except for pure types."""

from shiyan.core.checkpoint import load_checkpoint, save_checkpoint
from shiyan.core.config import PROFILES, ConfigError, TopicConfig, apply_overrides, field_docs
from shiyan.core.context import RunContext
from shiyan.core.figures import new_figure
from shiyan.core.result import BenchRow, Claim, FigureRef, Metric, Result, Table
from shiyan.core.store import RunRecord, Store, data_dir
from shiyan.core.topic import CATEGORIES, Topic, TopicMeta

__all__ = [
    "CATEGORIES",
    "PROFILES",
    "BenchRow",
    "Claim",
    "ConfigError",
    "FigureRef",
    "Metric",
    "Result",
    "RunContext",
    "RunRecord",
    "Store",
    "Table",
    "Topic",
    "TopicConfig",
    "TopicMeta",
    "apply_overrides",
    "data_dir",
    "field_docs",
    "load_checkpoint",
    "new_figure",
    "save_checkpoint",
]
