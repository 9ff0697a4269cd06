"""Chain access: web3 wiring, contract bindings, deployment, the dev chain, the transaction
sender and the event indexer."""
