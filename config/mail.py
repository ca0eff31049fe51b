"""Development mail: printed to the console as Django's console backend does, and appended to
var/log/mail.log, so an invitation or a sign-up link is found where the other logs are."""
from __future__ import annotations

import threading
from pathlib import Path

from django.conf import settings
from django.core.mail.backends.console import EmailBackend as ConsoleEmailBackend

_file_lock = threading.Lock()


def mail_log_path() -> Path:
    return Path(settings.LOG_DIR) / "mail.log"


class EmailBackend(ConsoleEmailBackend):
    def send_messages(self, email_messages):
        sent = super().send_messages(email_messages)
        if not email_messages:
            return sent
        path = mail_log_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock, open(path, "a", encoding="utf-8") as log:
            ConsoleEmailBackend(stream=log, fail_silently=self.fail_silently).send_messages(email_messages)
        return sent
