"""Studies from a PACS and results back to it, against a real Orthanc (Debian's ``orthanc`` and
``orthanc-dicomweb``, installed by .ci/run) started here on 127.0.0.1 with random ports and a
temporary storage folder: DICOMweb and DIMSE pulls equal to the originals, a batch's SEG and SR
pushed (idempotently) and read back with highdicom, clear failures, a cut transfer resumed."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import highdicom as hd
import pydicom
import pytest

from radimt.errors import PacsError
from radimt.pacs import connect, load_profile, pull, push_run
from tests.conftest import REPO, SAMPLE_DICOM

ORTHANC = shutil.which("Orthanc") or next((p for p in ("/usr/sbin/Orthanc",) if os.path.exists(p)), None)
PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
pytestmark = pytest.mark.skipif(
    ORTHANC is None or not PLUGIN.exists(),
    reason="orthanc and orthanc-dicomweb are not installed (.ci/run installs them)",
)
USER, PASSWORD = "radimt", "s3cret-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Orthanc:
    """One Orthanc process on 127.0.0.1; stop() and start() keep its storage."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.http, self.dicom = _free_port(), _free_port()
        config = {
            "Name": "radimt-test",
            "StorageDirectory": str(folder / "db"),
            "IndexDirectory": str(folder / "db"),
            "HttpPort": self.http,
            "DicomPort": self.dicom,
            "DicomAet": "ORTHANC",
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {USER: PASSWORD},
            "DicomCheckCalledAet": False,
            "DicomAlwaysAllowGet": True,
            "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowStore": True,
            "UnknownSopClassAccepted": True,
            "Plugins": [str(PLUGIN)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        }
        (folder / "orthanc.json").write_text(json.dumps(config))
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http}"

    def start(self) -> None:
        log = open(self.folder / "orthanc.log", "a")
        self.process = subprocess.Popen(
            [str(ORTHANC), str(self.folder / "orthanc.json")], stdout=log, stderr=log
        )
        deadline = time.monotonic() + 60  # a bound on a broken install, not a measured time
        while time.monotonic() < deadline:
            try:
                self.rest("/system")
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        raise RuntimeError(f"Orthanc did not start: {(self.folder / 'orthanc.log').read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=60)
            self.process = None

    def rest(self, path: str, data: bytes | None = None) -> bytes:
        request = urllib.request.Request(self.url + path, data=data, method="POST" if data else "GET")
        request.add_header(
            "Authorization", "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()

    def profile(self, folder: Path, **changes: object) -> Path:
        values = {
            "name": "test-orthanc",
            "kind": "research",
            "dicomweb": f"{self.url}/dicom-web",
            "host": "127.0.0.1",
            "port": self.dicom,
            "called_aet": "ORTHANC",
            "username": USER,
            "password_env": "RADIMT_TEST_PACS_PASSWORD",
            **changes,
        }
        path = folder / f"pacs-{len(list(folder.glob('pacs-*')))}.yaml"
        path.write_text("".join(f"{k}: {v}\n" for k, v in values.items()))
        return path


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    server = Orthanc(tmp_path_factory.mktemp("orthanc"))
    server.start()
    os.environ["RADIMT_TEST_PACS_PASSWORD"] = PASSWORD
    for study in ("carcinoma_washout", "fibroadenoma_persistent"):
        for path in sorted((SAMPLE_DICOM / study).rglob("*")):
            if path.is_file() and path.suffix != ".json":
                server.rest("/instances", path.read_bytes())
    yield server
    server.stop()


def _originals(study: str) -> dict[str, pydicom.Dataset]:
    found = {}
    for path in (SAMPLE_DICOM / study).rglob("*"):
        if path.is_file() and path.suffix != ".json":
            ds = pydicom.dcmread(path)
            found[str(ds.SOPInstanceUID)] = ds
    return found


def _study_uid(study: str) -> str:
    return str(next(iter(_originals(study).values())).StudyInstanceUID)


@pytest.mark.parametrize("protocol", ["dicomweb", "dimse"])
def test_a_study_pulled_by_uid_equals_the_originals(orthanc, tmp_path, protocol):
    transport = connect(load_profile(orthanc.profile(tmp_path)), protocol)
    uid = _study_uid("carcinoma_washout")
    [pulled] = pull(transport, [{"StudyInstanceUID": uid}], tmp_path / "cache", show_progress=False)
    originals = _originals("carcinoma_washout")
    files = sorted(Path(pulled.folder).glob("*.dcm"))
    assert pulled.instances == len(originals) == len(files) == pulled.fetched
    for path in files:
        got = pydicom.dcmread(path)
        original = originals[str(got.SOPInstanceUID)]
        assert got.PixelData == original.PixelData
        for element in original:
            if element.tag.group != 0x7FE0:
                assert got[element.tag].value == element.value, (path.name, element.keyword)
    again = pull(transport, [{"StudyInstanceUID": uid}], tmp_path / "cache", show_progress=False)
    assert again[0].fetched == 0  # complete already: nothing fetched twice
    assert uid in (tmp_path / "cache" / "pulled.csv").read_text()


def test_studies_pulled_by_patient_id_and_batched_then_pushed_and_read_back(orthanc, tmp_path):
    from radimt.cli import main

    profile = orthanc.profile(tmp_path)
    patient = str(next(iter(_originals("fibroadenoma_persistent").values())).PatientID)
    assert (
        main(["pull", "--pacs", str(profile), "--cache", str(tmp_path / "cache"), "--patient-id", patient])
        == 0
    )
    folder = tmp_path / "cache" / _study_uid("fibroadenoma_persistent")
    (tmp_path / "manifest.csv").write_text(
        f"study_id,path,lesion_id,seed_x,seed_y,seed_z\nfa,{folder},1,80.0,-10.0,6.0\n"
    )
    pipeline = str(REPO / "pipelines" / "breast_mri.yaml")
    out = tmp_path / "out"
    args = ["batch", str(tmp_path / "manifest.csv"), "--pipeline", pipeline, "--out", str(out), "--seg"]
    assert main([*args, "--push", str(profile)]) == 0
    assert main(["push", str(out), "--pacs", str(profile), "--protocol", "dimse"]) == 0  # again: nothing new
    log = (out / "pushed.csv").read_text()
    assert log.count("already there") == 2
    seg = pydicom.dcmread(out / "lesions" / "fa" / "1" / "seg.dcm")
    transport = connect(load_profile(profile), "dicomweb")
    held = transport.list_instances(str(seg.StudyInstanceUID))
    assert str(seg.SOPInstanceUID) in held and len(held) == 2  # the SEG and its SR, once each
    back = transport.client.retrieve_instance(
        str(seg.StudyInstanceUID), held[str(seg.SOPInstanceUID)], str(seg.SOPInstanceUID)
    )
    read = hd.seg.Segmentation.from_dataset(back)
    assert read.get_segment_description(1).segment_label == "fa lesion 1"
    assert (read.get_volume().array > 0).sum() == (seg.pixel_array > 0).sum()


def test_de_identified_results_are_not_pushed_into_a_clinical_pacs(orthanc, tmp_path):
    from radimt.cli import main

    uid = _study_uid("carcinoma_washout")
    profile = orthanc.profile(tmp_path, kind="clinical")
    (tmp_path / "m.csv").write_text(  # a manifest naming its study by UID: pull fills in the path
        f"study_id,path,study_uid,lesion_id,seed_x,seed_y,seed_z\ncw,,{uid},1,100.0,-6.0,4.0\n"
    )
    cache = tmp_path / "cache"
    assert (
        main(["pull", "--pacs", str(profile), "--cache", str(cache), "--manifest", str(tmp_path / "m.csv")])
        == 0
    )
    out = tmp_path / "out"
    pipeline = str(REPO / "pipelines" / "breast_mri.yaml")
    assert (
        main(["batch", str(cache / "manifest.csv"), "--pipeline", pipeline, "--out", str(out), "--seg"]) == 0
    )
    with pytest.raises(PacsError, match="clinical and 2 result\\(s\\) are de-identified"):
        push_run(connect(load_profile(profile)), out)
    assert not (out / "pushed.csv").exists()


def test_failures_name_the_pacs_and_the_study(orthanc, tmp_path):
    closed = orthanc.profile(
        tmp_path, dicomweb=f"http://127.0.0.1:{_free_port()}/dicom-web", port=_free_port()
    )
    for protocol in ("dicomweb", "dimse"):
        with pytest.raises(PacsError, match="PACS test-orthanc .*cannot be reached"):
            pull(
                connect(load_profile(closed), protocol),
                [{"StudyInstanceUID": "1.2.3"}],
                tmp_path / "c",
                show_progress=False,
            )
    os.environ["RADIMT_TEST_WRONG"] = "wrong"
    refused = orthanc.profile(tmp_path, password_env="RADIMT_TEST_WRONG")
    with pytest.raises(PacsError, match="refused the credentials \\(401\\)"):
        pull(
            connect(load_profile(refused)),
            [{"StudyInstanceUID": "1.2.3"}],
            tmp_path / "c",
            show_progress=False,
        )
    good = connect(load_profile(orthanc.profile(tmp_path)))
    with pytest.raises(
        PacsError, match="PACS test-orthanc has no study with \\{'StudyInstanceUID': '1.2.3.4.5'\\}"
    ):
        pull(good, [{"StudyInstanceUID": "1.2.3.4.5"}], tmp_path / "c", show_progress=False)
    from radimt.errors import ConfigError

    del os.environ["RADIMT_TEST_WRONG"]
    with pytest.raises(ConfigError, match="RADIMT_TEST_WRONG \\(the password\\) is not set"):
        load_profile(refused)


def test_a_transfer_cut_mid_study_leaves_whole_files_and_resumes(orthanc, tmp_path):
    uid = _study_uid("carcinoma_washout")
    transport = connect(load_profile(orthanc.profile(tmp_path)), "dicomweb")
    arrived = []

    def cut(dataset: pydicom.Dataset) -> None:
        arrived.append(dataset.SOPInstanceUID)
        if len(arrived) == 60:
            orthanc.stop()  # the PACS goes away in the middle of the study

    try:
        with pytest.raises(PacsError, match="PACS test-orthanc .*cannot be reached|incomplete"):
            pull(
                transport,
                [{"StudyInstanceUID": uid}],
                tmp_path / "cache",
                connections=2,
                on_instance=cut,
                show_progress=False,
            )
    finally:
        if orthanc.process is None:
            orthanc.start()
    folder = tmp_path / "cache" / uid
    kept = sorted(folder.glob("*.dcm"))
    assert 60 <= len(kept) < len(_originals("carcinoma_washout"))
    for path in kept:  # whole files only: each parses, with its pixels
        assert pydicom.dcmread(path).PixelData
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no partial file left
    [resumed] = pull(transport, [{"StudyInstanceUID": uid}], tmp_path / "cache", show_progress=False)
    assert (
        resumed.fetched == resumed.instances - len(kept)
        and len(list(folder.glob("*.dcm"))) == resumed.instances
    )
