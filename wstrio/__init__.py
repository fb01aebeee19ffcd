"""wstrio: WebSocket server and client for Trio, one supervised nursery per connection."""

from ._apps import echo, page
from ._chat import Chat
from ._client import connect
from ._closecodes import CLOSE_TABLE, CloseCode, Closed, Ending
from ._config import Config
from ._errors import (
    CloseConnection,
    ConnectError,
    ConnectionClosed,
    HandshakeRejected,
    HandshakeTimeout,
    InternalError,
    OutboxFull,
    WstrioError,
)
from ._hub import Hub, HubStatistics, Room, RoomStatistics, SlowConsumerPolicy
from ._reconnect import RECONNECT_CODES, reconnecting
from ._routes import Route, Static
from ._server import Server, ServerStatistics, serve
from ._session import Session, SessionStatistics
from ._transport import Headers

__all__ = [
    "CLOSE_TABLE",
    "RECONNECT_CODES",
    "Chat",
    "CloseCode",
    "CloseConnection",
    "Closed",
    "Config",
    "ConnectError",
    "ConnectionClosed",
    "Ending",
    "HandshakeRejected",
    "HandshakeTimeout",
    "Headers",
    "Hub",
    "HubStatistics",
    "InternalError",
    "OutboxFull",
    "Room",
    "RoomStatistics",
    "Route",
    "Server",
    "ServerStatistics",
    "Session",
    "SessionStatistics",
    "SlowConsumerPolicy",
    "Static",
    "WstrioError",
    "connect",
    "echo",
    "page",
    "reconnecting",
    "serve",
]
__version__ = "0.1.0"
