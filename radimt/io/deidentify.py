"""De-identify the DICOM objects radimt writes (DICOM SEG and SR), by the standard's profile.

Every DICOM output applies the DICOM PS3.15 Basic Application Level Confidentiality Profile
(Annex E, table E.1-1), whose attribute table and actions come from the maintained
``dicom-anonymizer`` package, to the dataset and to every item of every sequence in it. Two
choices on top of the profile, recorded in the object as the standard asks (PatientIdentityRemoved,
DeidentificationMethod and its code sequence):

- **Retain UIDs Option** (PS3.15 E.3.9, code 113110): study, series, frame of reference and
  referenced SOP instance UIDs are kept, so a SEG still lies over the series it was drawn on.
  The images behind those UIDs are the user's own; nothing else identifies the patient.
- PatientName and PatientID become the study id the user gave in the manifest (a pseudonym),
  so outputs of one study stay together.

Two modes, and each is consistent in itself:

- **research** (the default): de-identified, in a *new study context*. A de-identified SEG or
  SR whose PatientID is the pseudonym cannot sit in the source study (a PACS would see one
  study with two patients), so its StudyInstanceUID is a new one derived from the source's and
  the pseudonym (:func:`research_study_uid`): every SEG and SR of a study share it and share
  the pseudonym; the source series, images and frame of reference are still referenced, so a
  viewer overlays the SEG on the images by those UIDs. Meant for a research archive.
- **clinical** (``--keep-phi``): nothing is removed; patient, study (StudyInstanceUID,
  AccessionNumber, dates) are the source's, so the results file into the patient's own study.
"""

from __future__ import annotations

from collections.abc import Sequence as Keywords

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from radimt.dicom.uids import derived_uid

#: The PS3.15 table the profile is read from (the newest one dicom-anonymizer ships).
PROFILE_TABLE = "dicomfields_2026c"
#: PS3.15 table E.1-1 categories holding UIDs (action U, and X/Z/U* for referencing sequences).
UID_CATEGORIES = ("U_TAGS", "X_Z_U_STAR_TAGS")
METHOD = "PS3.15 Basic Profile, Retain UIDs Option (radimt)"
#: DCM codes of the profile and option applied (PS3.16 CID 7050).
METHOD_CODES = (("113100", "Basic Application Confidentiality Profile"), ("113110", "Retain UIDs Option"))


def profile_tags() -> dict[str, list[tuple[int, ...]]]:
    """The attribute table of the profile, by action category (``D_TAGS``, ``X_TAGS``, ...)."""
    from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector

    return dicom_anonymization_database_selector(PROFILE_TABLE)


def research_study_uid(source_study_uid: str, pseudonym: str) -> str:
    """The StudyInstanceUID of a study's de-identified results: new, the same for every SEG and
    SR of the study (derived from the source study's UID and the pseudonym), never the source's.

    Examples
    --------
    >>> research_study_uid("1.2.3", "imt_case") == research_study_uid("1.2.3", "imt_case") != "1.2.3"
    True
    """
    return derived_uid("radimt research study", source_study_uid, pseudonym)


def deidentify(dataset: Dataset, pseudonym: str, generated: Keywords[str] = ()) -> Dataset:
    """Apply the profile (with the Retain UIDs Option) to ``dataset`` in place and return it.

    Parameters
    ----------
    dataset
        A DICOM object radimt wrote (e.g. a DICOM SEG).
    pseudonym
        What PatientName and PatientID become: the study id of the manifest.
    generated
        Keywords of sequences radimt generated itself from numbers, codes and the pseudonym
        (an SR's ContentSequence): set aside while the profile runs and put back unchanged.
        The profile's action on them (for clinicians' free-text reports) would otherwise turn
        every value type and code into "ANONYMIZED" and leave no report.
    """
    from dicomanonymizer.simpledicomanonymizer import anonymize_dataset, initialize_actions

    tables = profile_tags()
    keep = {tag: _keep for category in UID_CATEGORIES for tag in tables[category]}
    pseudonymise = {(0x0010, 0x0010): _set(pseudonym), (0x0010, 0x0020): _set(pseudonym)}

    def rules() -> dict:
        return {**initialize_actions(PROFILE_TABLE), **keep, **pseudonymise}

    kept = [dataset[keyword] for keyword in generated if keyword in dataset]
    for element in kept:
        del dataset[element.tag]
    for item in _nested_items(dataset):  # innermost first: a parent's action may drop the item
        anonymize_dataset(item, base_rules_gen=rules, delete_private_tags=True)
    anonymize_dataset(dataset, base_rules_gen=rules, delete_private_tags=True)
    for element in kept:
        dataset[element.tag] = element
    _valid_dummy_dates(dataset)
    if "StudyInstanceUID" in dataset:  # a new study context: see the module notes
        dataset.StudyInstanceUID = research_study_uid(str(dataset.StudyInstanceUID), pseudonym)
    dataset.PatientIdentityRemoved = "YES"
    dataset.DeidentificationMethod = METHOD
    dataset.DeidentificationMethodCodeSequence = Sequence([_code(*c) for c in METHOD_CODES])
    return dataset


def _nested_items(dataset: Dataset) -> list[Dataset]:
    """Every dataset inside ``dataset``'s sequences, deepest first."""
    items: list[Dataset] = []
    for element in dataset:
        if element.VR == "SQ":
            for item in element.value:
                items += _nested_items(item)
                items.append(item)
    return items


#: The profile's dummy date (year 1) and the one written instead: dicom3tools' dciodvfy refuses
#: the year 0001 in DA and DT values ("character invalid for this VR").
PROFILE_DUMMY_DATE, DUMMY_DATE = "00010101", "19000101"


def _valid_dummy_dates(dataset: Dataset) -> None:
    for item in [dataset, *_nested_items(dataset)]:
        for element in item:
            if element.VR in ("DA", "DT") and str(element.value).startswith(PROFILE_DUMMY_DATE):
                element.value = DUMMY_DATE + str(element.value)[len(PROFILE_DUMMY_DATE) :]


def _keep(dataset: Dataset, tag: tuple[int, int]) -> None:
    """The Retain UIDs Option: leave the attribute as it is."""


def _set(value: str):
    def replace(dataset: Dataset, tag: tuple[int, int]) -> None:
        if tag in dataset:
            dataset[tag].value = value

    return replace


def _code(value: str, meaning: str) -> Dataset:
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, "DCM", meaning
    return code
