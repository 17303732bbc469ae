"""The hotline's bounded contexts, registered here by name and nowhere else.

Each is a package of the same parts: ``aggregate.py`` (or one module per aggregate where
a context has several), ``commands.py`` and ``handlers.py``. Adding a context means adding
its handlers module to :data:`CONTEXTS`.
"""

from __future__ import annotations

from eventsourcing.utils import register_topic

from domain.calendars import handlers as calendars
from domain.catalogue import handlers as catalogue
from domain.citizens import handlers as citizens
from domain.contact_center import handlers as contact_center
from domain.handling import CommandHandlers
from domain.notifications import handlers as notifications
from domain.requests import handlers as requests
from domain.work_orders import handlers as work_orders

CONTEXTS = (requests, work_orders, citizens, catalogue, calendars, notifications, contact_center)

HANDLERS = CommandHandlers(*(context.handles for context in CONTEXTS))


def _keep_old_topics() -> None:
    """Events stored before the contexts became packages name their classes by the old
    module paths (``domain.requests:ServiceRequest.Registered``): map those to the classes."""
    from domain.calendars.aggregate import JurisdictionCalendar
    from domain.catalogue.aggregate import Catalogue
    from domain.citizens.aggregate import Citizen, CitizenIdentity
    from domain.notifications.aggregate import Notification
    from domain.requests.aggregate import ServiceRequest
    from domain.work_orders.aggregate import WorkOrder

    for old_module, cls in (
        ("domain.requests", ServiceRequest),
        ("domain.work_orders", WorkOrder),
        ("domain.citizens", Citizen),
        ("domain.citizens", CitizenIdentity),
        ("domain.catalogue", Catalogue),
        ("domain.calendars", JurisdictionCalendar),
        ("domain.notifications", Notification),
    ):
        register_topic(f"{old_module}:{cls.__qualname__}", cls)


_keep_old_topics()
