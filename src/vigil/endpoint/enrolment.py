"""The agent's enrolment in the home: which server, its own id and credential (owner-only file).

Kept apart from agent.toml, which is the operator's: Vigil never writes that one.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from vigil.errors import VigilError

AGENT_DIR = "agent"
ENROLMENT_FILE = "enrolment.json"


class NotEnrolled(VigilError):
    """The home holds no enrolment: `vigil agent enroll` first."""


@dataclass
class Enrolment:
    """What enrolling gave this agent."""

    server: str
    agent_id: str
    credential: str
    host: str
    ca_cert: str | None = None


def agent_dir(home: Path) -> Path:
    """The agent's own state directory under the home (owner-only)."""
    path = home / AGENT_DIR
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def save(home: Path, enrolment: Enrolment) -> Path:
    """Write the enrolment atomically, readable by its owner only (it holds the credential)."""
    path = agent_dir(home) / ENROLMENT_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(asdict(enrolment), f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load(home: Path) -> Enrolment:
    """The home's enrolment, or NotEnrolled with what to do."""
    path = home / AGENT_DIR / ENROLMENT_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotEnrolled(
            f"{home} is not enrolled: run `vigil agent enroll --server URL --token TOKEN`"
        ) from None
    except (OSError, ValueError) as e:
        raise VigilError(f"{path}: unreadable enrolment ({e}); enrol again") from None
    return Enrolment(**data)
