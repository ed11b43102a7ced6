"""Acquirer host link: ISO 8583:1987 over TCP with a 2-byte length prefix (terminal side).

``spec`` is the field table (pyiso8583), ``messages`` the pure codec between ``flows.ports`` values and framed
ISO 8583 bytes, ``client`` the socket shell implementing ``flows.ports.HostPort``.

>>> from drivers.host import HostClient, describe_response
>>> describe_response("55")
'Incorrect PIN'
"""

from __future__ import annotations

from drivers.host.client import HostClient
from drivers.host.spec import RESPONSE_CODES, describe_response

__all__ = ["HostClient", "RESPONSE_CODES", "describe_response"]
