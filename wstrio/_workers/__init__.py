"""Workers on one port: a supervising parent, N worker processes, one listening socket.

Theory of operation: the parent binds the listening sockets once (``sockets``:
on Linux one ``SO_REUSEPORT`` socket per worker number, so the kernel spreads
connections evenly) and starts each worker with ``multiprocessing``'s spawn
method, which hands the sockets' file descriptors down (``pass_fds``). The
parent keeps its own descriptors open, so a socket's queue outlives any worker
and no connection attempt is ever refused while workers come and go. A worker
(``worker``) is a full wstrio server in its own ``trio.run``; it tells the
parent on a pipe once it serves, stops with 1001 on SIGTERM or SIGINT and with
1012 on SIGHUP, and stops by itself if the parent dies. The parent (``pool``)
supervises them like a nursery: restarts a worker that dies with backoff,
forwards a stop, and turns its own SIGHUP into a rolling restart (a new worker
serves before the old one stops accepting). ``serve_workers`` (``entry``) is the
library's entry point; ``python -m wstrio serve --workers N`` runs the same pool
with a worker that parses the command line again.
"""
