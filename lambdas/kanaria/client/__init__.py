"""Clients a chatbot service imports (no CDK app needed): the embedded assignment client and the fail-open
Kanaria client (assignment, background observation recording, SigV4 signing)."""

from kanaria.client.chatbot import KanariaClient
from kanaria.client.embedded import EmbeddedClient
from kanaria.client.models import FALLBACK_REFUSED, FALLBACK_UNAVAILABLE, ClientSettings, ClientStats
from kanaria.client.transport import HttpResponse, SigV4Transport, Transport, TransportError

__all__ = [
    "FALLBACK_REFUSED",
    "FALLBACK_UNAVAILABLE",
    "ClientSettings",
    "ClientStats",
    "EmbeddedClient",
    "HttpResponse",
    "KanariaClient",
    "SigV4Transport",
    "Transport",
    "TransportError",
]
