"""TIME on the scheduler's side: due when its moment comes (the index's time heap alone)."""

from autometa.domain.kinds import TriggerType
from autometa.worker.triggers.registry import Evaluator, register, time_entry

register(Evaluator(int(TriggerType.TIME), time_entry))
