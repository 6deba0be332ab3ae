"""Who is calling: a partner, an operator, or a store agent acting for its partner.

The principal of the call in progress is a context variable the API edge sets once per call, so
domain code can ask for it without the transport passing it down.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    PARTNER = "partner"
    OPERATOR = "operator"
    AGENT = "agent"


@dataclass(frozen=True, slots=True)
class Principal:
    partner_id: str
    name: str
    role: Role

    @property
    def is_operator(self) -> bool:
        return self.role is Role.OPERATOR


current_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar("current_principal")
