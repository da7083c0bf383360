"""EmoDB (real, from ../shared), RAVDESS and CREMA-D (generated file names) and the generic manifest."""

import csv
import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import soundfile as sf
from gemo_clap.processing import CorpusError, apply_label_map, build_corpus, parse_label_map, scan_corpus
from helpers import EMODB
from iemocap_tree import tone


def write_wav(path: Path, seconds: float = 0.3, rate: int = 16000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(seconds, 220.0, rate), rate, subtype="PCM_16")


def decoded_rows(dataset) -> list[dict]:
    emotion, gender = dataset.features["emotion"], dataset.features["gender"]
    return [
        {**r, "emotion": emotion.int2str(r["emotion"]), "gender": gender.int2str(r["gender"])}
        for r in dataset.remove_columns("audio")
    ]


# EmoDB ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emodb_build(tmp_path_factory):
    if not (EMODB / "wav").is_dir():
        pytest.skip(f"real EmoDB not found at {EMODB}")
    return build_corpus("emodb", EMODB, cache_dir=tmp_path_factory.mktemp("cache"))


def test_emodb_full_build(emodb_build):
    dataset, report = emodb_build
    table = decoded_rows(dataset)
    assert len(table) == 535 and not report.skipped
    assert dataset.features["emotion"].names == [
        "anger", "boredom", "disgust", "fear", "happiness", "sadness", "neutral"
    ]  # fmt: skip
    assert Counter(r["gender"] for r in table) == {"female": 302, "male": 233}
    with (EMODB / "metadata.csv").open() as handle:
        metadata = {Path(row["file"]).stem: row for row in csv.DictReader(handle)}
    assert all(
        (r["gender"], r["speaker"], r["emotion"])
        == (metadata[r["id"]]["gender"], metadata[r["id"]]["speaker"].zfill(2), metadata[r["id"]]["emotion"])
        for r in table
    )
    assert all(abs(r["duration"] - float(metadata[r["id"]]["duration_s"])) < 1e-3 for r in table)


def test_emodb_folds_are_speaker_disjoint_with_one_speaker_of_each_gender(emodb_build):
    speakers_per_fold = defaultdict(set)
    for r in decoded_rows(emodb_build[0]):
        speakers_per_fold[r["fold"]].add((r["speaker"], r["gender"]))
    assert sorted(speakers_per_fold) == [1, 2, 3, 4, 5]
    all_speakers = [s for speakers in speakers_per_fold.values() for s, _ in speakers]
    assert len(all_speakers) == len(set(all_speakers)) == 10
    assert all(sorted(g for _, g in speakers) == ["female", "male"] for speakers in speakers_per_fold.values())


def test_emodb_four_class_counts():
    if not (EMODB / "wav").is_dir():
        pytest.skip(f"real EmoDB not found at {EMODB}")
    scan = scan_corpus("emodb", EMODB)
    records, names, dropped = apply_label_map(scan.records, scan.labels, parse_label_map("4class"))
    assert len(records) == 339 and names == ("angry", "happy", "sad", "neutral")
    assert Counter(r.emotion for r in records) == {"angry": 127, "happy": 71, "sad": 62, "neutral": 79}
    assert dropped == {"boredom": 81, "fear": 69, "disgust": 46}


# RAVDESS -------------------------------------------------------------------------------------------------------


def test_ravdess_names_genders_speech_only_and_resampling(tmp_path):
    for actor in (1, 2, 3, 4):
        for emotion in ("01", "02", "03", "04", "05", "08"):
            write_wav(tmp_path / f"Actor_{actor:02d}" / f"03-01-{emotion}-01-01-01-{actor:02d}.wav", 0.6, rate=48000)
    write_wav(tmp_path / "Actor_01" / "03-02-03-01-01-01-01.wav")  # song: not read
    write_wav(tmp_path / "Actor_01" / "notes.wav")
    (tmp_path / "Actor_01" / "._03-01-01-01-01-01-01.wav").write_bytes(b"\x00\x05\x16\x07")
    dataset, report = build_corpus("ravdess", tmp_path, label_map="4class", num_folds=2, cache_dir=tmp_path / "c")
    table = decoded_rows(dataset)
    assert len(table) == 16
    assert Counter(r["emotion"] for r in table) == {"angry": 4, "happy": 4, "sad": 4, "neutral": 4}
    assert report.dropped_labels == {"calm": 4, "surprised": 4}
    assert [(Path(s.source).name, s.reason) for s in report.skipped] == [("notes.wav", "not a RAVDESS file name")]
    genders = {r["speaker"]: r["gender"] for r in table}
    assert genders == {"Actor_01": "male", "Actor_02": "female", "Actor_03": "male", "Actor_04": "female"}
    folds = {r["speaker"]: r["fold"] for r in table}
    assert folds == {"Actor_02": 1, "Actor_04": 2, "Actor_01": 1, "Actor_03": 2}
    assert all(r["duration"] == pytest.approx(0.6) for r in table)


def test_ravdess_without_map_keeps_all_eight_labels_in_code_order(tmp_path):
    for actor in range(1, 5):
        write_wav(tmp_path / f"03-01-06-02-02-02-{actor:02d}.wav")
    dataset, _ = build_corpus("ravdess", tmp_path, num_folds=2, cache_dir=tmp_path / "c")
    names = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    assert dataset.features["emotion"].names == names
    assert set(decoded_rows(dataset)[i]["emotion"] for i in range(4)) == {"fearful"}


# CREMA-D -------------------------------------------------------------------------------------------------------


def write_crema_d(root: Path, sexes: dict[str, str]) -> None:
    with (root / "VideoDemographics.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ActorID", "Age", "Sex", "Race", "Ethnicity"])
        writer.writerows([[actor, 30, sex, "Caucasian", "Not Hispanic"] for actor, sex in sexes.items()])
    for actor in sexes:
        for emotion in ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD"):
            write_wav(root / "AudioWAV" / f"{actor}_DFA_{emotion}_XX.wav", 0.2)


def test_crema_d_genders_come_from_demographics(tmp_path):
    write_crema_d(tmp_path, {"1001": "Male", "1002": "Female", "1003": "Female", "1004": "Male"})
    dataset, report = build_corpus("crema-d", tmp_path, label_map="4class", num_folds=2, cache_dir=tmp_path / "c")
    table = decoded_rows(dataset)
    assert len(table) == 16 and not report.skipped
    genders = {r["speaker"]: r["gender"] for r in table}
    assert genders == {"1001": "male", "1002": "female", "1003": "female", "1004": "male"}
    assert Counter(r["emotion"] for r in table) == {"angry": 4, "happy": 4, "sad": 4, "neutral": 4}
    assert report.dropped_labels == {"disgust": 4, "fear": 4}
    assert {r["id"] for r in table} >= {"1001_DFA_ANG_XX", "1004_DFA_NEU_XX"}


def test_crema_d_bad_demographics_are_errors_naming_the_file(tmp_path):
    write_crema_d(tmp_path, {"1001": "Male", "1002": "Unknown"})
    with pytest.raises(CorpusError, match=r"VideoDemographics\.csv, line 3: unknown Sex value 'Unknown'"):
        scan_corpus("crema-d", tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    write_crema_d(other, {"1001": "Male"})
    write_wav(other / "AudioWAV" / "1009_IEO_SAD_HI.wav")
    with pytest.raises(CorpusError, match=r"actor 1009 of .*1009_IEO_SAD_HI\.wav is not listed in .*VideoDemographics"):
        scan_corpus("crema-d", other)
    (other / "VideoDemographics.csv").unlink()
    with pytest.raises(CorpusError, match="CREMA-D needs VideoDemographics.csv"):
        scan_corpus("crema-d", other / "AudioWAV")


# Manifest ------------------------------------------------------------------------------------------------------


def write_manifest(path: Path, rows: list[dict], columns=("path", "emotion", "gender", "speaker")) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_manifest_paths_are_relative_to_the_manifest_and_missing_files_are_skipped(tmp_path):
    rows = []
    for speaker, gender in (("s1", "F"), ("s2", "male"), ("s3", "Female"), ("s4", "m")):
        for emotion in ("joy", "rage"):
            path = f"clips/{speaker}_{emotion}.wav"
            rows.append({"path": path, "emotion": emotion, "gender": gender, "speaker": speaker})
            write_wav(tmp_path / "corpus" / rows[-1]["path"])
    rows.append({"path": "clips/gone.wav", "emotion": "rage", "gender": "f", "speaker": "s1"})
    manifest = write_manifest(tmp_path / "corpus" / "manifest.csv", rows)
    dataset, report = build_corpus("manifest", manifest, num_folds=2, cache_dir=tmp_path / "c")
    table = decoded_rows(dataset)
    assert dataset.features["emotion"].names == ["joy", "rage"]  # order of first appearance
    assert [r["id"] for r in table][:2] == ["clips/s1_joy.wav", "clips/s1_rage.wav"]
    assert {r["speaker"]: (r["gender"], r["fold"]) for r in table} == {
        "s1": ("female", 1), "s3": ("female", 2), "s2": ("male", 1), "s4": ("male", 2)
    }  # fmt: skip
    assert [(Path(s.source).name, s.reason, s.detail) for s in report.skipped] == [
        ("gone.wav", "missing audio file", f"listed at {manifest}, line 10")
    ]


def test_manifest_fold_column_and_jsonl(tmp_path):
    lines = []
    for index, (speaker, gender, fold) in enumerate((("a", "female", 3), ("b", "male", 3), ("c", "female", 7))):
        write_wav(tmp_path / f"{index}.wav")
        row = {"path": f"{index}.wav", "emotion": "neutral", "gender": gender, "speaker": speaker, "fold": fold}
        lines.append(json.dumps(row))
    manifest = tmp_path / "data.jsonl"
    manifest.write_text("\n".join(lines) + "\n\n")
    dataset, _ = build_corpus("manifest", manifest, cache_dir=tmp_path / "c")
    assert list(dataset["fold"]) == [3, 3, 7]
    with pytest.raises(CorpusError, match="has a 'fold' column; do not pass num_folds=5"):
        build_corpus("manifest", manifest, num_folds=5, cache_dir=tmp_path / "c")


WITH_FOLD = ("path", "emotion", "gender", "speaker", "fold")


@pytest.mark.parametrize(
    "columns, row, message",
    [
        (("path", "emotion", "speaker"), {"path": "x.wav", "emotion": "sad", "speaker": "s"},
         r"manifest\.csv: missing required column\(s\) \['gender'\]"),
        (None, {"path": "x.wav", "emotion": "sad", "gender": "other", "speaker": "s"},
         r"manifest\.csv, line 3: unknown gender 'other' \(expected female/male or f/m\)"),
        (None, {"path": "x.wav", "emotion": "", "gender": "f", "speaker": "s"},
         r"manifest\.csv, line 3: empty value in column\(s\) \['emotion'\]"),
        (None, {"path": "0.wav", "emotion": "sad", "gender": "f", "speaker": "s"},
         r"manifest\.csv, line 3: path '0\.wav' already listed at .*manifest\.csv, line 2"),
        (WITH_FOLD, {"path": "x.wav", "emotion": "sad", "gender": "f", "speaker": "s", "fold": "two"},
         r"manifest\.csv, line 3: fold must be an integer >= 1, got 'two'"),
        (WITH_FOLD, {"path": "x.wav", "emotion": "sad", "gender": "f", "speaker": "s", "fold": ""},
         r"manifest\.csv, line 3: 'fold' must be given on every row or on none"),
    ],
)  # fmt: skip
def test_manifest_bad_rows_are_errors_naming_file_and_line(tmp_path, columns, row, message):
    columns = columns or ("path", "emotion", "gender", "speaker")
    first = {"path": "0.wav", "emotion": "sad", "gender": "f", "speaker": "s", "fold": "1"}
    manifest = write_manifest(tmp_path / "manifest.csv", [{c: first[c] for c in columns}, row], columns)
    with pytest.raises(CorpusError, match=message):
        scan_corpus("manifest", manifest)


def test_jsonl_row_missing_a_key_names_the_line(tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"path": "a.wav", "emotion": "sad", "gender": "f", "speaker": "s"}\n{"path": "b.wav"}\n')
    message = r"m\.jsonl, line 2: missing required column\(s\) \['emotion', 'gender', 'speaker'\]"
    with pytest.raises(CorpusError, match=message):
        scan_corpus("manifest", manifest)


def test_empty_results_are_errors(tmp_path):
    manifest = write_manifest(tmp_path / "m.csv", [{"path": "no.wav", "emotion": "sad", "gender": "f", "speaker": "s"}])
    with pytest.raises(CorpusError, match=r"no utterances left in .*m\.csv \(0 found, 1 skipped"):
        build_corpus("manifest", manifest, cache_dir=tmp_path / "c")
    write_wav(tmp_path / "no.wav")
    with pytest.raises(CorpusError, match="label map .* matches none of the corpus labels \\['sad'\\]"):
        build_corpus("manifest", manifest, label_map="anger:angry", cache_dir=tmp_path / "c")
    with pytest.raises(CorpusError, match="cannot make 5 speaker-independent folds from 1 speakers"):
        build_corpus("manifest", manifest, cache_dir=tmp_path / "c")


def test_macos_metadata_files_are_counted_as_skipped(tmp_path, capsys):
    from gemo_clap.processing.corpora import scan_corpus

    wav = tmp_path / "emodb" / "wav"
    wav.mkdir(parents=True)
    for name in ("03a01Fa.wav", "08a01Wa.wav"):
        sf.write(wav / name, tone(0.5, 200.0), 16000, subtype="PCM_16")
    (wav / "._03a01Fa.wav").write_bytes(b"\x00\x05\x16\x07 Mac OS X")
    scan = scan_corpus("emodb", tmp_path / "emodb")
    assert [record.id for record in scan.records] == ["03a01Fa", "08a01Wa"]
    assert [Path(path).name for path in scan.metadata] == ["._03a01Fa.wav"] and scan.skipped == []
    from gemo_clap.processing.builder import build_corpus
    from gemo_clap.processing.summary import format_summary

    dataset, report = build_corpus("emodb", tmp_path / "emodb", num_folds=2, cache_dir=tmp_path / "cache")
    assert "skipped 1 macOS metadata file(s) (._*), not audio" in format_summary(dataset, report)
