"""The worker's composition root: every long-running part is built and closed here, once.

- `ChainTarget` names one chain a worker serves (chain id, RPC endpoints, contract, start block).
- `ChainLink` is what every runtime on that chain shares in one process: the store claimed for
  the chain's genesis, the queue (Redis, or in memory for a single process), the genesis watch.
- `SchedulerRuntime` / `ExecutorRuntime` are async context managers built from the settings and
  a link; they own their start-up (lease, follower, alerts, heartbeat; the executor's key check
  and sender recovery) and their close order.
- `run_worker` hosts any set of roles (scheduler, executor, API) on one link until `stop`: what
  `autometa scheduler`, `autometa executor`, `autometa worker --role …`, `autometa up` and the
  tests run; `run_chains` runs it once per configured chain on one store. One scheduler lease
  and one executor key per chain; a process may host several links
  (one per chain) side by side.

Modules import what a role needs only when that role is started, so a scheduler-only process
never loads the API or the transaction sender.
"""

from autometa.runtime.chain import ChainLink, ChainTarget, StartError
from autometa.runtime.chains import ChainRun, run_chains
from autometa.runtime.host import ROLES, ApiRunner, ServiceFailed, run_worker

__all__ = [
    "ROLES",
    "ApiRunner",
    "ChainLink",
    "ChainRun",
    "ChainTarget",
    "ServiceFailed",
    "StartError",
    "run_chains",
    "run_worker",
]
