"""Where a PACS is and how to reach it: a profile file, secrets from the environment.

A profile is a small YAML (or JSON) file::

    name: research-orthanc
    kind: research            # or clinical: de-identified results are never pushed there
    dicomweb: http://127.0.0.1:8042/dicom-web
    host: 127.0.0.1           # DIMSE (C-FIND, C-GET, C-STORE), for PACS without DICOMweb
    port: 4242
    called_aet: ORTHANC
    calling_aet: RADIMT
    username: radimt
    password_env: RADIMT_PACS_PASSWORD   # the password itself is never on the command line

``password`` may be written in the file instead (keep the file private).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from radimt.errors import ConfigError
from radimt.io.yamlfiles import safe_load

KINDS = ("research", "clinical")
_KEYS = {
    "name",
    "kind",
    "dicomweb",
    "host",
    "port",
    "called_aet",
    "calling_aet",
    "username",
    "password",
    "password_env",
    "timeout_s",
}


@dataclass(frozen=True)
class PacsProfile:
    """How to reach one PACS.

    Attributes
    ----------
    name
        Named in every message.
    kind
        ``research`` or ``clinical``.
    dicomweb
        The DICOMweb base URL (QIDO-RS, WADO-RS, STOW-RS), or ``None``.
    host, port, called_aet, calling_aet
        DIMSE: the PACS' address and AE title, and radimt's.
    username, password
        HTTP basic authentication for DICOMweb (``None``: none).
    timeout_s
        Seconds a connection may stay silent.
    """

    name: str
    kind: str = "research"
    dicomweb: str | None = None
    host: str | None = None
    port: int | None = None
    called_aet: str = "ANY-SCP"
    calling_aet: str = "RADIMT"
    username: str | None = None
    password: str | None = None
    timeout_s: float = 30.0

    def __repr__(self) -> str:  # never print the password
        where = self.dicomweb or f"{self.host}:{self.port}"
        return f"PacsProfile({self.name!r}, {self.kind}, {where})"

    @property
    def dimse(self) -> bool:
        """Whether DIMSE (host and port) is configured."""
        return self.host is not None and self.port is not None


def load_profile(path: str | os.PathLike[str]) -> PacsProfile:
    """Read a PACS profile; the password from ``password_env`` (an environment variable).

    Raises
    ------
    ConfigError
        Not readable, unknown keys, no DICOMweb URL and no DIMSE address, a missing variable.
    """
    path = Path(path)
    try:
        data = safe_load(path.read_text()) or {}
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read this PACS profile ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a PACS profile is a mapping of settings")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {unknown}; settings are {sorted(_KEYS)}")
    kind = str(data.get("kind", "research"))
    if kind not in KINDS:
        raise ConfigError(f"{path}: kind {kind!r}: research or clinical")
    password = data.get("password")
    if data.get("password_env"):
        password = os.environ.get(str(data["password_env"]))
        if password is None:
            raise ConfigError(
                f"{path}: the environment variable {data['password_env']} (the password) is not set"
            )
    if not data.get("dicomweb") and not (data.get("host") and data.get("port")):
        raise ConfigError(f"{path}: give the PACS' dicomweb URL, or its host and port (DIMSE)")
    return PacsProfile(
        name=str(data.get("name", path.stem)),
        kind=kind,
        dicomweb=str(data["dicomweb"]).rstrip("/") if data.get("dicomweb") else None,
        host=str(data["host"]) if data.get("host") else None,
        port=int(data["port"]) if data.get("port") else None,
        called_aet=str(data.get("called_aet", "ANY-SCP")),
        calling_aet=str(data.get("calling_aet", "RADIMT")),
        username=str(data["username"]) if data.get("username") else None,
        password=str(password) if password is not None else None,
        timeout_s=float(data.get("timeout_s", 30.0)),
    )
