"""Notifications: events from the store's outbox delivered to owners' and operators'
subscriptions — signed webhooks, email and chat through Apprise — at least once.

Writers: the store's fact writers call ``autometa.store.notifications`` hooks in their own
transaction. Readers: ``DeliveryWorker`` (see ``service.serve``). Receivers verify with
``autometa.notify.signing.verify``.
"""

from autometa.notify.signing import verify
from autometa.store.notifications import EVENT_KINDS, OPERATOR_EVENTS, OWNER_EVENTS

__all__ = ["EVENT_KINDS", "OPERATOR_EVENTS", "OWNER_EVENTS", "verify"]
