"""Stop a training run cleanly on SIGINT/SIGTERM: finish the step, validate, checkpoint."""

from __future__ import annotations

import signal
import threading
from types import FrameType


class StopOnSignal:
    """While installed, a first SIGINT/SIGTERM sets :attr:`set`; a second one raises
    KeyboardInterrupt at once. Only the main thread can install signal handlers; elsewhere
    this is a no-op (the flag is never set)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.set = False
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.set:
            raise KeyboardInterrupt
        self.set = True
        print(f"\nsignal {signum}: stopping after this step (again to stop at once)", flush=True)

    def install(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def uninstall(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous = {}
