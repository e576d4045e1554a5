"""What one running Hearth window works with: the database, settings, conversations, the
engine host and the job runner, created and shut down in the right order."""
from __future__ import annotations

from PySide6.QtCore import QObject

from engines.store.conversations import ConversationStore
from engines.store.settings import Settings
from engines.store.storage import Database
from desktop.host_process import HostManager
from desktop.jobs import JobRunner


class Session(QObject):
    def __init__(self, host_command: list[str] | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.db = Database()
        self.settings = Settings(self.db)
        self.conversations = ConversationStore(self.db)
        self.host = HostManager(host_command, self)
        self.runner = JobRunner(self)
        self.host.ready.connect(self.runner.set_endpoint)
        self.host.restarting.connect(lambda: self.runner.set_endpoint(None))
        self.host.crashed.connect(lambda _message: self.runner.set_endpoint(None))
        self._shut = False

    def start_host(self) -> None:
        self.host.start()
        self.runner.prepare(("chat.text", "chat.host", "image.generate", "image.host"))

    def shutdown(self) -> None:
        """Stop jobs, then the host (which ends any stream still open), then join the workers."""
        if self._shut:
            return
        self._shut = True
        self.runner.cancel_all()
        self.host.stop()
        self.runner.shutdown()
        self.db.close()
