"""The scheduler's trigger evaluators, one module per kind (see docs/TRIGGERS.md). Importing the
package registers them."""

from autometa.worker.triggers import cron, interval, log, price, state, time  # noqa: F401  (each registers itself)
from autometa.worker.triggers.registry import (
    ConditionBook,
    Evaluator,
    TriggerEntry,
    evaluator_for,
    evaluators,
)

__all__ = ["ConditionBook", "Evaluator", "TriggerEntry", "evaluator_for", "evaluators"]
