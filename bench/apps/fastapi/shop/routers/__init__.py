"""One router per domain."""

from . import catalog, content, customers, inventory, orders, staff

ROUTERS = [catalog.router, customers.router, orders.router, inventory.router, staff.router, content.router]
