"""Getting a rendered message to its recipient: email by SMTP or as .eml files, SMS by provider."""

from __future__ import annotations

import json
import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlparse

from gather_shared.config import VAR_DIR, Settings

EMAIL_DIR = VAR_DIR / "outbox" / "email"
SMS_FILE = VAR_DIR / "outbox" / "sms.jsonl"


def send_email(settings: Settings, message: EmailMessage) -> None:
    if settings.smtp_url is None:
        EMAIL_DIR.mkdir(parents=True, exist_ok=True)
        name = message["Message-ID"].strip("<>").replace("@", "_at_")
        path = EMAIL_DIR / f"{name}.eml"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(bytes(message))
        tmp.rename(path)  # readers never see half a file
        return
    url = urlparse(settings.smtp_url)
    query = parse_qs(url.query)
    host, port = url.hostname or "localhost", url.port
    if url.scheme == "smtps":
        client: smtplib.SMTP = smtplib.SMTP_SSL(host, port or 465, timeout=30, context=ssl.create_default_context())
    else:
        client = smtplib.SMTP(host, port or 25, timeout=30)
    with client:
        if url.scheme == "smtp" and query.get("starttls", ["0"])[0] in ("1", "true"):
            client.starttls(context=ssl.create_default_context())
        if url.username:
            client.login(unquote(url.username), unquote(url.password or ""))
        client.send_message(message)


def send_sms(settings: Settings, to: str, body: str) -> None:
    SMS_FILE.parent.mkdir(parents=True, exist_ok=True)
    with open(SMS_FILE, "a") as f:
        f.write(json.dumps({"to": to, "body": body}) + "\n")


