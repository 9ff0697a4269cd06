"""A web3 contract error as one line a person can act on (decoding lives in `revert.py`)."""

from __future__ import annotations

from autometa.chain.revert import decode_revert, default_errors, revert_data_from_exception
from autometa.chain.sentences import human


def describe_revert(exc: BaseException) -> str:
    """The decoded revert reason of a web3 error as a sentence (`sentences.py`), or the error's own
    text if it is no revert."""
    data = revert_data_from_exception(exc)
    if data is None:
        return str(exc)
    return human(decode_revert(data, default_errors()))
