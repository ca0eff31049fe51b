"""Development mail also lands in var/log/mail.log (issue 14), not only on the web process's stdout."""
from __future__ import annotations

from django.core import mail


def test_console_mail_is_also_written_to_the_log_folder(settings, tmp_path, capsys):
    settings.EMAIL_BACKEND = "config.mail.EmailBackend"
    settings.LOG_DIR = tmp_path / "log"
    sent = mail.send_mail("You are invited to Acme", "Open http://127.0.0.1:8000/invite/abc/ to join.",
                          "noreply@localhost", ["newhire@example.com"])
    assert sent == 1
    logged = (tmp_path / "log" / "mail.log").read_text()
    assert "Subject: You are invited to Acme" in logged and "/invite/abc/" in logged and "newhire@example.com" in logged
    assert "/invite/abc/" in capsys.readouterr().out  # still on the console too
    mail.send_mail("Second", "Another body", "noreply@localhost", ["x@example.com"])
    assert (tmp_path / "log" / "mail.log").read_text().startswith(logged)  # appended
