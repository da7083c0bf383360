"""IEMOCAP reader and 4-class build on a generated tree with the real layout (tests/iemocap_tree.py)."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from gemo_clap.processing import CorpusError, build_corpus, decode_example_audio, scan_corpus
from gemo_clap.processing.corpora.iemocap import gender_from_utterance_id, parse_emo_evaluation
from iemocap_tree import LONG_UTTERANCE, MALFORMED_LINE, MISSING_WAV, UNREADABLE_WAV, write_iemocap_tree

SESSION_COUNTS = {1: 40, 2: 39, 3: 39, 4: 39, 5: 40}
EMOTION_COUNTS = {"angry": 39, "happy": 80, "sad": 39, "neutral": 39}


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    return write_iemocap_tree(tmp_path_factory.mktemp("iemocap"))


@pytest.fixture(scope="module")
def built(release, tmp_path_factory):
    return build_corpus("iemocap", release, cache_dir=tmp_path_factory.mktemp("cache"))


def rows(dataset) -> list[dict]:
    emotion, gender = dataset.features["emotion"], dataset.features["gender"]
    return [
        {**row, "emotion": emotion.int2str(row["emotion"]), "gender": gender.int2str(row["gender"])}
        for row in dataset.remove_columns("audio")
    ]


@pytest.mark.parametrize(
    "utterance_id, gender",
    [
        ("Ses01F_impro01_M000", "male"),
        ("Ses01F_impro01_F000", "female"),
        ("Ses03M_impro05a_F012", "female"),
        ("Ses01F_script01_1_F000", "female"),
        ("Ses05M_script01_1b_M031", "male"),
    ],
)
def test_gender_is_first_letter_of_last_field(utterance_id, gender):
    assert gender_from_utterance_id(utterance_id) == gender


def test_gender_of_a_non_iemocap_id_is_an_error():
    with pytest.raises(CorpusError, match="not an IEMOCAP utterance id: 'Ses01F_impro01'"):
        gender_from_utterance_id("Ses01F_impro01")


def test_label_file_parsing_skips_header_and_evaluator_lines_and_reports_bad_lines(release):
    label_file = release / "Session3" / "dialog" / "EmoEvaluation" / "Ses03M_impro05a.txt"
    pairs, problems = parse_emo_evaluation(label_file)
    assert len(pairs) == 21 and (MALFORMED_LINE, "neu") not in pairs
    assert pairs[:3] == [
        ("Ses03M_impro05a_F000", "neu"), ("Ses03M_impro05a_F001", "fru"), ("Ses03M_impro05a_M001", "fru")
    ]  # fmt: skip
    assert [(p.source, p.reason) for p in problems] == [(f"{label_file}:9", "malformed label line")]
    assert MALFORMED_LINE in problems[0].detail


def test_scan_reads_consensus_labels_only(release):
    scan = scan_corpus("iemocap", release)
    # 5 sessions x 4 dialogs x 11 labels x 2 genders = 440 listed; one line malformed, one wav missing.
    assert len(scan.records) == 438
    assert Counter(r.emotion for r in scan.records) == {
        label: 40 - (label == "ang") - (label == "neu") for label in scan.labels
    }
    assert {r.speaker for r in scan.records} == {f"Ses0{s}{g}" for s in range(1, 6) for g in "FM"}
    assert all(r.fold == int(r.speaker[4]) for r in scan.records)
    assert all(not Path(r.path).name.startswith("._") for r in scan.records)
    assert [s.reason for s in scan.skipped] == ["missing audio file", "malformed label line"]
    assert scan.skipped[0].source.endswith(f"Session2/sentences/wav/Ses02F_impro01/{MISSING_WAV}.wav")


def test_four_class_build_has_the_protocol_counts(built):
    dataset, report = built
    table = rows(dataset)
    assert len(dataset) == report.num_examples == 197
    assert dataset.features["emotion"].names == ["angry", "happy", "sad", "neutral"]
    assert dataset.features["gender"].names == ["female", "male"]
    assert Counter(r["fold"] for r in table) == SESSION_COUNTS
    assert Counter(r["emotion"] for r in table) == EMOTION_COUNTS
    assert Counter(r["gender"] for r in table) == {"female": 98, "male": 99}
    cells = Counter((r["emotion"], r["gender"], r["fold"]) for r in table)
    assert cells[("angry", "female", 2)] == 3 and cells[("angry", "female", 1)] == 4
    assert cells[("neutral", "male", 3)] == 3 and cells[("sad", "female", 4)] == 3
    assert cells[("happy", "male", 5)] == 8  # hap + exc
    assert {MISSING_WAV, MALFORMED_LINE, UNREADABLE_WAV}.isdisjoint(r["id"] for r in table)
    assert report.dropped_labels == {label: 40 for label in ("fru", "sur", "fea", "dis", "oth", "xxx")}
    assert [s.reason for s in report.skipped] == ["missing audio file", "malformed label line", "unreadable audio file"]


def test_speakers_genders_and_folds_follow_the_last_id_field(built):
    by_id = {r["id"]: r for r in rows(built[0])}
    assert by_id["Ses01F_impro01_M000"] == {
        "id": "Ses01F_impro01_M000", "emotion": "neutral", "gender": "male", "speaker": "Ses01M", "fold": 1,
        "duration": 0.5,
    }  # fmt: skip
    assert by_id["Ses03M_impro05a_F002"]["speaker"] == "Ses03F"
    assert by_id["Ses05M_script01_1b_M004"]["gender"] == "male" and by_id["Ses05M_script01_1b_M004"]["fold"] == 5
    assert by_id["Ses02F_script01_1_M005"]["emotion"] == "happy"  # exc
    assert all(r["speaker"] == f"Ses0{r['fold']}{r['gender'][0].upper()}" for r in by_id.values())


def test_audio_is_trimmed_to_14_seconds_and_embedded(built):
    dataset = built[0]
    index = list(dataset["id"]).index(LONG_UTTERANCE)
    row = dataset[index]
    assert row["duration"] == 14.0
    assert row["audio"]["path"] == f"{LONG_UTTERANCE}.wav" and row["audio"]["bytes"][:4] == b"RIFF"
    assert decode_example_audio(row["audio"]).shape == (14 * 16000,)
    assert np.allclose(dataset.data.column("duration").to_numpy()[np.arange(len(dataset)) != index], 0.5)


def test_keep_all_keeps_every_label_after_the_four_classes(release, tmp_path):
    dataset, report = build_corpus("iemocap", release, keep_all=True, cache_dir=tmp_path)
    names = ["angry", "happy", "sad", "neutral", "fru", "sur", "fea", "dis", "oth", "xxx"]
    assert dataset.features["emotion"].names == names
    assert len(dataset) == 437 and not report.dropped_labels


def test_num_proc_two_gives_the_same_dataset(release, built, tmp_path):
    dataset, report = build_corpus("iemocap", release, num_proc=2, cache_dir=tmp_path)
    assert dataset.data.drop(["audio"]).equals(built[0].data.drop(["audio"]))
    assert dataset.data.column("audio").equals(built[0].data.column("audio"))
    assert [s.reason for s in report.skipped] == [s.reason for s in built[1].skipped]


def test_strict_fails_before_decoding_with_file_and_line(release, tmp_path):
    with pytest.raises(CorpusError, match=r"2 problem\(s\).*missing audio file.*Ses03M_impro05a\.txt:9: malformed"):
        build_corpus("iemocap", release, strict=True, cache_dir=tmp_path)


def test_iemocap_folds_are_its_sessions(release, tmp_path):
    with pytest.raises(CorpusError, match="IEMOCAP folds are its 5 sessions; got num_folds=4"):
        build_corpus("iemocap", release, num_folds=4, cache_dir=tmp_path)


def test_a_folder_without_sessions_is_an_error(tmp_path):
    with pytest.raises(CorpusError, match=r"no Session1..Session5 folders in .*expected IEMOCAP_full_release"):
        scan_corpus("iemocap", tmp_path)
