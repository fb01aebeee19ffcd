"""The interactive client's input line: prompt_toolkit in a worker thread.

Theory of operation: ``prompt_toolkit`` owns the terminal while the user types
(line editing, history with the arrow keys, Ctrl-R search). It runs its own
asyncio loop in a worker thread, one prompt at a time. While a prompt is up,
``patch_stdout`` routes every ``print`` (the incoming messages, printed from
Trio's thread) through prompt_toolkit, which draws them above the input line
and redraws what was being typed: output never clobbers input. When Trio
cancels a prompt (the server closed the connection), the prompt is told to
exit in its own loop and the thread is awaited, so the terminal is always
given back in its normal mode.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import trio
from prompt_toolkit import PromptSession
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.patch_stdout import patch_stdout


class Interrupted(Exception):
    """Ctrl-C at the prompt (prompt_toolkit reads it as a key, not as SIGINT)."""


class LineEditor:
    """Read lines with editing and history; ``readline()`` is None at Ctrl-D (end of input)."""

    def __init__(self, prompt: str = "> ") -> None:
        self._session: PromptSession[str] = PromptSession(history=InMemoryHistory())
        self._prompt = prompt

    @contextlib.contextmanager
    def output_above(self) -> Iterator[None]:
        """While active, prints go above the input line instead of into it."""
        with patch_stdout(raw=True):
            yield

    def _read(self) -> str | None:
        try:
            return self._session.prompt(self._prompt, handle_sigint=False)
        except EOFError:
            return None
        except KeyboardInterrupt:
            raise Interrupted from None

    async def readline(self) -> str | None:
        """The next line typed; raises :class:`Interrupted` on Ctrl-C."""
        done = trio.Event()
        outcome: list[str | BaseException | None] = []

        def run() -> None:
            try:
                outcome.append(self._read())
            except BaseException as exc:  # handed back to Trio's thread below
                outcome.append(exc)
            finally:
                trio.from_thread.run_sync(done.set, trio_token=token)

        token = trio.lowlevel.current_trio_token()
        thread = threading.Thread(target=run, name="wstrio-prompt", daemon=True)
        thread.start()
        try:
            await done.wait()
        except trio.Cancelled:
            with trio.CancelScope(shield=True):
                while not done.is_set():  # the prompt may still be starting: ask until it ends
                    self._exit_prompt()
                    with trio.move_on_after(0.05):
                        await done.wait()
            raise
        (result,) = outcome
        if isinstance(result, BaseException):
            raise result
        return result

    def _exit_prompt(self) -> None:
        """Make the running prompt return (as at Ctrl-D), from any thread."""
        app = self._session.app
        loop = getattr(app, "loop", None)
        if loop is not None and app.is_running:
            loop.call_soon_threadsafe(self._exit_if_running)

    def _exit_if_running(self) -> None:
        app = self._session.app
        if app.is_running and not app.future.done():  # type: ignore[union-attr]
            app.exit(exception=EOFError())
