"""INTERVAL on the scheduler's side: due every interval (the index's time heap alone)."""

from autometa.domain.kinds import TriggerType
from autometa.worker.triggers.registry import Evaluator, register, time_entry

register(Evaluator(int(TriggerType.INTERVAL), time_entry))
