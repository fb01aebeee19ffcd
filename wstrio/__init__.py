"""wstrio: WebSocket server and client for Trio, one supervised nursery per connection."""

from ._apps.chat import Chat
from ._apps.echo import echo, page
from ._bus.outage import BusUnavailable
from ._bus.redis import RedisBus
from ._bus.stats import BusStatistics
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
    InvalidJSON,
    OutboxFull,
    UnexpectedMessageType,
    WstrioError,
)
from ._conn.headers import Headers
from ._conn.request import QueryParams, Request
from ._conn.session import Handler, Session
from ._conn.stats import ServerStatistics, SessionStatistics
from ._http.answers import Accept, Reject, Response
from ._http.routes import Hook, HttpHandler, HttpRoute, Route, Routes, Static
from ._http.staticdir import StaticDir
from ._rooms.history import Recovery
from ._rooms.hub import Hub
from ._rooms.policy import HubStatistics, RoomStatistics, SlowConsumerPolicy
from ._rooms.room import Room
from ._run import run, serve_until_signalled
from ._server import Server, serve
from ._workers.entry import serve_workers

__all__ = [
    "CLOSE_TABLE",
    "RECONNECT_CODES",
    "Accept",
    "BusStatistics",
    "BusUnavailable",
    "Chat",
    "CloseCode",
    "CloseConnection",
    "Closed",
    "Config",
    "ConnectError",
    "ConnectionClosed",
    "Ending",
    "Handler",
    "HandshakeRejected",
    "HandshakeTimeout",
    "Headers",
    "Hook",
    "HttpHandler",
    "HttpRoute",
    "Hub",
    "HubStatistics",
    "InternalError",
    "InvalidJSON",
    "OutboxFull",
    "QueryParams",
    "Recovery",
    "RedisBus",
    "Reject",
    "Request",
    "Response",
    "Room",
    "RoomStatistics",
    "Route",
    "Routes",
    "Server",
    "ServerStatistics",
    "Session",
    "SessionStatistics",
    "SlowConsumerPolicy",
    "Static",
    "StaticDir",
    "UnexpectedMessageType",
    "WstrioError",
    "connect",
    "echo",
    "page",
    "reconnecting",
    "run",
    "serve",
    "serve_until_signalled",
    "serve_workers",
]
__version__ = "0.1.0"
