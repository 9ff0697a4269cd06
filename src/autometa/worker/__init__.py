"""The off-chain worker: trigger index, scheduler, job queue and executor."""
