"""Network presets and their Chainlink feed table."""

from __future__ import annotations

from eth_utils import is_checksum_address

from autometa.networks import FEEDS, PRESETS, RETIRED, Network, by_chain_id, feeds_for


def test_every_live_network_has_a_distinct_chain_id_and_a_feed_table() -> None:
    ids = [p.chain_id for p in PRESETS.values()]
    assert len(ids) == len(set(ids))
    assert set(RETIRED).isdisjoint(PRESETS)
    for network, preset in PRESETS.items():
        assert by_chain_id(preset.chain_id) is preset
        if network is not Network.DEV:
            assert FEEDS[network]["ethereum"] and FEEDS[network]["bitcoin"], network


def test_feed_addresses_are_checksummed_and_found_by_chain_id() -> None:
    for feeds in FEEDS.values():
        assert all(is_checksum_address(address) for address in feeds.values())
    assert feeds_for(8453) == FEEDS[Network.BASE]
    assert feeds_for(31337) == {}  # the dev chain's mock feeds are in its deployment file
    assert "moonbeam" not in {asset for feeds in FEEDS.values() for asset in feeds}  # GLMR: no feed listed
