"""Every gRPC service the platform serves, one line each: the server, reflection, health checking,
the guard's policy and the test client are all driven by this list. A new capability is a new
room with a `SERVICE` declaration in its servicer module, plus its line here."""

from __future__ import annotations

from clearpoint.platform.agents.servicer import SERVICE as AGENTS
from clearpoint.platform.campaigns.servicer import SERVICE as CAMPAIGNS
from clearpoint.platform.clearing.servicer import SERVICE as CLEARING
from clearpoint.platform.edge import Service
from clearpoint.platform.exchange.servicer import SERVICE as POINTS
from clearpoint.platform.keys.servicer import SERVICE as KEYS
from clearpoint.platform.partners.servicer import SERVICE as PARTNERS
from clearpoint.platform.redemption.servicer import SERVICE as REDEMPTION

SERVICES: tuple[Service, ...] = (
    KEYS,
    PARTNERS,
    CAMPAIGNS,
    REDEMPTION,
    AGENTS,
    POINTS,
    CLEARING,
)
