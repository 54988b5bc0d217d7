"""server.toml: every setting read, every mistake a clear error naming file, table and key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from vigil.server.settings import SettingsError, parse_duration, read

GOOD = """
[server]
public_url = "https://vigil.example.org/"

[agents]
silent_after = "2m"
stale_after = "2d"

[flood]
hosts = 5
window = "90s"

[outbox]
retry_base = "500ms"
retry_max = "10m"

[[notify]]
name = "security-team"
type = "email"
host = "smtp.example.org"
port = 587
starttls = true
username = "vigil"
password = "pw"
from = "vigil@example.org"
to = ["a@example.org"]
categories = ["A", "B"]
include_path = true

[[notify]]
type = "webhook"
url = "https://siem.example.org/hook"
secret = "whsec_dGVzdC1zZWNyZXQ="
sets = ["police"]

[[notify]]
type = "syslog"
address = "tcp://10.0.0.5:6514"
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "server.toml").write_text(text)
    return tmp_path


def test_everything_is_read(tmp_path: Path) -> None:
    s = read(write(tmp_path, GOOD))
    assert s.public_url == "https://vigil.example.org"
    assert s.silent_after == timedelta(minutes=2) and s.stale_after == timedelta(days=2)
    assert (s.flood_hosts, s.flood_window) == (5, timedelta(seconds=90))
    assert (s.retry_base, s.retry_max) == (timedelta(milliseconds=500), timedelta(minutes=10))
    mail, hook, syslog = s.channels
    assert (mail.name, mail.type, mail.source, mail.key) == (
        "security-team",
        "email",
        "toml",
        "toml:security-team",
    )
    assert mail.include_path and mail.options["to"] == ["a@example.org"]
    assert mail.public()["options"]["password"] == "********"
    assert (hook.name, syslog.name) == ("notify-2", "notify-3")
    assert syslog.options == {
        "address": "tcp://10.0.0.5:6514",
        "protocol": "tcp",
        "host": "10.0.0.5",
        "port": 6514,
    }
    assert mail.wants("A", "police") and not mail.wants("C", "police")
    assert hook.wants("C", "police") and not hook.wants("C", "other")
    # Incidents the server raises itself have no category or set: every channel wants them.
    assert mail.wants(None, "")


def test_no_file_means_defaults(tmp_path: Path) -> None:
    s = read(tmp_path)
    assert s.channels == () and s.silent_after == timedelta(minutes=15)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("[agents]\nsilent_afer = '15m'\n", ["[agents]", "silent_afer", "unknown"]),
        ("[agents]\nsilent_after = 15\n", ["[agents] key 'silent_after'", "a string"]),
        ("[agents]\nsilent_after = '15 minutes'\n", ["[agents] key 'silent_after'", "15m"]),
        ("[flood]\nhosts = true\n", ["[flood] key 'hosts'", "boolean"]),
        ("[flood]\nhosts = 1\n", ["[flood] key 'hosts'", "at least 2"]),
        ("[server]\npublic_url = 'vigil.example.org'\n", ["[server] key 'public_url'"]),
        ("[mail]\nx = 1\n", ["unknown table", "mail"]),
        ("[[notify]]\ntype = 'pager'\n", ["[notify #1] key 'type'", "email, webhook, syslog"]),
        ("[[notify]]\ntype = 'syslog'\naddress = 'udp://h'\n", ["[notify #1] key 'address'"]),
        (
            "[[notify]]\ntype = 'syslog'\naddress = 'udp://h:514'\nport = 1\n",
            ["[notify #1]", "unknown key(s): port"],
        ),
        (
            "[[notify]]\ntype = 'webhook'\nurl = 'https://h/x'\nsecret = 'plain'\n",
            ["[notify #1] key 'secret'", "whsec_"],
        ),
        (
            "[[notify]]\ntype = 'email'\nhost = 'h'\nfrom = 'a@b'\n",
            ["[notify #1] key 'to'", "required"],
        ),
        (
            "[[notify]]\ntype = 'email'\nhost = 'h'\nfrom = 'a@b'\nto = 'x@y'\n",
            ["[notify #1] key 'to'", "a list"],
        ),
        (
            "[[notify]]\ntype = 'email'\nhost = 'h'\nfrom = 'a@b'\nto = ['x@y']\nport = 99999\n",
            ["[notify #1] key 'port'"],
        ),
        (
            "[[notify]]\ntype = 'email'\nhost = 'h'\nfrom = 'a@b'\nto = ['x@y']\nusername = 'u'\n",
            ["[notify #1] key 'password'", "together"],
        ),
        (
            "[[notify]]\nname='x'\ntype='syslog'\naddress='udp://h:1'\n"
            "[[notify]]\nname='x'\ntype='syslog'\naddress='udp://h:2'\n",
            ["[notify #2] key 'name'", "twice"],
        ),
        ("[agents\n", ["not valid TOML"]),
    ],
)
def test_mistakes_name_the_file_table_and_key(tmp_path: Path, text: str, names: list[str]) -> None:
    with pytest.raises(SettingsError) as raised:
        read(write(tmp_path, text))
    message = str(raised.value)
    assert message.startswith(str(tmp_path / "server.toml"))
    for name in names:
        assert name in message, message


def test_a_secret_is_never_echoed_in_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as raised:
        read(write(tmp_path, "[[notify]]\ntype='webhook'\nurl='https://h'\nsecret='whsec_!!!'\n"))
    assert "!!!" not in str(raised.value)


@pytest.mark.parametrize(
    ("text", "seconds"), [("15m", 900), ("60s", 60), ("24h", 86400), ("2d", 172800), ("500ms", 0.5)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["15", "m", "1 week", "-5m", ""])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
