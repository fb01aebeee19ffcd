"""wstrio: WebSocket server and client for Trio, one supervised nursery per connection."""

from ._apps.chat import Chat
from ._apps.echo import echo, page
from ._client.connect import connect
from ._client.reconnect import RECONNECT_CODES, reconnecting
from ._conn.closecodes import CLOSE_TABLE, CloseCode, Closed, Ending
from ._conn.config import Config
from ._conn.errors import (
    CloseConnection,
    ConnectError,
    ConnectionClosed,
    HandshakeRejected,
    HandshakeTimeout,
    InternalError,
    OutboxFull,
    WstrioError,
)
from ._conn.headers import Headers
from ._conn.session import Session
from ._conn.stats import ServerStatistics, SessionStatistics
from ._http.routes import Route, Static
from ._rooms.hub import Hub, HubStatistics, Room, RoomStatistics, SlowConsumerPolicy
from ._server import Server, serve

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
