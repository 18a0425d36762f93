"""Talking to a PACS: DICOMweb (QIDO-RS, WADO-RS, STOW-RS with ``dicomweb-client``) and DIMSE
(C-FIND, C-GET, C-STORE with ``pynetdicom``), behind one small interface.

Every failure becomes a :class:`radimt.errors.PacsError` naming the PACS and what was asked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from pydicom import Dataset

from radimt.errors import PacsError
from radimt.pacs.profile import PacsProfile

PROTOCOLS = ("dicomweb", "dimse")


class Transport(Protocol):
    """What pull and push need from a PACS."""

    profile: PacsProfile

    def find_studies(self, query: dict[str, str]) -> list[str]: ...

    def list_instances(self, study_uid: str) -> dict[str, str]: ...

    def retrieve(
        self, study_uid: str, series_uid: str, sop_uids: Sequence[str], keep: Callable[[Dataset], None]
    ) -> None: ...

    def store(self, dataset: Dataset) -> None: ...


def connect(profile: PacsProfile, protocol: str | None = None) -> Transport:
    """A transport for ``profile``: DICOMweb when it has a URL (unless ``protocol`` says dimse)."""
    protocol = protocol or ("dicomweb" if profile.dicomweb else "dimse")
    if protocol not in PROTOCOLS:
        raise PacsError(f"unknown protocol {protocol!r}: dicomweb or dimse")
    if protocol == "dicomweb":
        if not profile.dicomweb:
            raise PacsError(f"PACS {profile.name}: its profile gives no dicomweb URL")
        return DicomWeb(profile)
    if not profile.dimse:
        raise PacsError(f"PACS {profile.name}: its profile gives no host and port for DIMSE")
    return Dimse(profile)


def _tag(item: dict[str, Any], tag: str) -> str:
    values = (item.get(tag) or {}).get("Value") or [""]
    return str(values[0])


class DicomWeb:
    """QIDO-RS search, WADO-RS retrieve, STOW-RS store."""

    def __init__(self, profile: PacsProfile) -> None:
        self.profile = profile
        self._local = threading.local()

    @property
    def client(self) -> Any:
        """This thread's DICOMweb client (an HTTP session is not shared between threads)."""
        if not hasattr(self._local, "client"):
            from dicomweb_client.api import DICOMwebClient
            from dicomweb_client.session_utils import create_session, create_session_from_user_pass

            profile = self.profile
            session = (
                create_session_from_user_pass(profile.username, profile.password or "")
                if profile.username
                else create_session()
            )
            self._local.client = DICOMwebClient(url=str(profile.dicomweb), session=session)
            self._local.client.set_http_retry_params(retry=False)
        return self._local.client

    @contextmanager
    def _asking(self, what: str) -> Iterator[None]:
        import requests

        where = f"PACS {self.profile.name} ({self.profile.dicomweb})"
        try:
            yield
        except requests.exceptions.HTTPError as exc:
            code = exc.response.status_code if exc.response is not None else 0
            if code in (401, 403):
                raise PacsError(
                    f"{where} refused the credentials ({code}) for {what}; check the profile"
                ) from None
            if code == 404:
                raise PacsError(f"{where} has no {what}") from None
            raise PacsError(f"{where}: {what} failed (HTTP {code})") from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise PacsError(f"{where} cannot be reached for {what} ({type(exc).__name__})") from None

    def find_studies(self, query: dict[str, str]) -> list[str]:
        with self._asking(f"studies matching {query}"):
            found = self.client.search_for_studies(search_filters=dict(query), fields=["StudyInstanceUID"])
        return sorted({_tag(item, "0020000D") for item in found if _tag(item, "0020000D")})

    def list_instances(self, study_uid: str) -> dict[str, str]:
        with self._asking(f"study {study_uid}"):
            found = self.client.search_for_instances(study_instance_uid=study_uid)
        return {_tag(item, "00080018"): _tag(item, "0020000E") for item in found}

    def retrieve(
        self, study_uid: str, series_uid: str, sop_uids: Sequence[str], keep: Callable[[Dataset], None]
    ) -> None:
        for sop in sop_uids:
            with self._asking(f"instance {sop} of study {study_uid}"):
                dataset = self.client.retrieve_instance(study_uid, series_uid, sop)
            keep(dataset)

    def store(self, dataset: Dataset) -> None:
        with self._asking(f"storing {dataset.SOPInstanceUID} (study {dataset.StudyInstanceUID})"):
            self.client.store_instances(datasets=[dataset])


def _storage_contexts() -> list[Any]:
    """The storage SOP classes radimt reads and writes (DIMSE allows at most 128 contexts)."""
    from pynetdicom import sop_class as sc

    names = (
        "CTImageStorage",
        "EnhancedCTImageStorage",
        "MRImageStorage",
        "EnhancedMRImageStorage",
        "DigitalMammographyXRayImageStorageForPresentation",
        "DigitalMammographyXRayImageStorageForProcessing",
        "DigitalXRayImageStorageForPresentation",
        "ComputedRadiographyImageStorage",
        "UltrasoundImageStorage",
        "UltrasoundMultiFrameImageStorage",
        "SecondaryCaptureImageStorage",
        "SegmentationStorage",
        "ComprehensiveSRStorage",
        "EnhancedSRStorage",
        "RTStructureSetStorage",
    )
    return [getattr(sc, n) for n in names]


class Dimse:
    """C-FIND (study root), C-GET (instances sent back on the same association), C-STORE."""

    def __init__(self, profile: PacsProfile) -> None:
        self.profile = profile

    @contextmanager
    def _association(
        self, contexts: Sequence[Any], what: str, roles: bool = False, handlers: Sequence[Any] = ()
    ) -> Iterator[Any]:
        from pynetdicom import AE, build_role

        ae = AE(ae_title=self.profile.calling_aet)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.profile.timeout_s
        for context in contexts:
            ae.add_requested_context(context)
        where = (
            f"PACS {self.profile.name} ({self.profile.host}:{self.profile.port} {self.profile.called_aet})"
        )
        extra: list[Any] = [build_role(c, scp_role=True) for c in _storage_contexts()] if roles else []
        assoc = ae.associate(
            str(self.profile.host),
            int(self.profile.port),  # type: ignore[arg-type]
            ae_title=self.profile.called_aet,
            ext_neg=extra,
            evt_handlers=list(handlers),
        )
        if not assoc.is_established:
            why = "rejected the association" if assoc.is_rejected else "cannot be reached"
            raise PacsError(f"{where} {why} for {what}")
        try:
            yield assoc
        finally:
            if assoc.is_established:
                assoc.release()

    def _find(self, identifier: Dataset, what: str) -> list[Dataset]:
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as Find  # type: ignore[attr-defined]

        found = []
        with self._association([Find], what) as assoc:
            for status, match in assoc.send_c_find(identifier, Find):
                code = getattr(status, "Status", None)
                if code is None:
                    raise PacsError(f"PACS {self.profile.name}: the connection dropped during {what}")
                if code in (0xFF00, 0xFF01) and match is not None:
                    found.append(match)
                elif code != 0x0000:
                    raise PacsError(f"PACS {self.profile.name}: {what} failed (status 0x{code:04X})")
        return found

    def find_studies(self, query: dict[str, str]) -> list[str]:
        identifier = Dataset()
        identifier.QueryRetrieveLevel = "STUDY"
        identifier.StudyInstanceUID = ""
        for key, value in query.items():
            setattr(identifier, key, value)
        matches = self._find(identifier, f"studies matching {query}")
        return sorted({str(m.StudyInstanceUID) for m in matches if m.get("StudyInstanceUID")})

    def list_instances(self, study_uid: str) -> dict[str, str]:
        identifier = Dataset()
        identifier.QueryRetrieveLevel = "IMAGE"
        identifier.StudyInstanceUID = study_uid
        identifier.SeriesInstanceUID = ""
        identifier.SOPInstanceUID = ""
        matches = self._find(identifier, f"the instances of study {study_uid}")
        return {str(m.SOPInstanceUID): str(m.SeriesInstanceUID) for m in matches}

    def retrieve(
        self, study_uid: str, series_uid: str, sop_uids: Sequence[str], keep: Callable[[Dataset], None]
    ) -> None:
        from pynetdicom import evt
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as Get  # type: ignore[attr-defined]

        def on_store(event: Any) -> int:
            dataset = event.dataset
            dataset.file_meta = event.file_meta
            keep(dataset)
            return 0x0000

        identifier = Dataset()
        identifier.QueryRetrieveLevel = "SERIES"
        identifier.StudyInstanceUID = study_uid
        identifier.SeriesInstanceUID = series_uid
        what = f"series {series_uid} of study {study_uid}"
        handlers = [(evt.EVT_C_STORE, on_store)]
        with self._association([Get, *_storage_contexts()], what, roles=True, handlers=handlers) as assoc:
            for status, _ in assoc.send_c_get(identifier, Get):
                code = getattr(status, "Status", None)
                if code is None:
                    raise PacsError(f"PACS {self.profile.name}: the connection dropped during {what}")
                if code not in (0x0000, 0xFF00, 0xFF01, 0xB000):
                    raise PacsError(f"PACS {self.profile.name}: {what} failed (status 0x{code:04X})")

    def store(self, dataset: Dataset) -> None:
        what = f"storing {dataset.SOPInstanceUID} (study {dataset.StudyInstanceUID})"
        with self._association(_storage_contexts(), what) as assoc:
            status = assoc.send_c_store(dataset)
            code = getattr(status, "Status", None)
            if code is None:
                raise PacsError(f"PACS {self.profile.name}: the connection dropped while {what}")
            if code not in (0x0000, 0xB000, 0xB007, 0xB006):
                raise PacsError(f"PACS {self.profile.name}: {what} failed (status 0x{code:04X})")
