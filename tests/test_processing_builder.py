"""Folds, label maps, saving (self-contained, atomic) and pushing of built datasets."""

import json
import random
import shutil
import warnings
from pathlib import Path
from unittest import mock

import datasets
import numpy as np
import pytest
import soundfile as sf
from gemo_clap.processing import (
    CorpusError,
    LabelMap,
    Utterance,
    apply_label_map,
    assign_speaker_folds,
    build_corpus,
    build_dataset,
    decode_example_audio,
    parse_label_map,
    push_dataset,
    save_dataset,
)
from gemo_clap.processing.atomic import leftovers
from gemo_clap.processing.folds import with_speaker_folds
from iemocap_tree import tone


@pytest.fixture
def small_manifest(tmp_path) -> Path:
    """4 speakers (2 per gender) x 2 emotions of 0.25 s tones, and one unreadable file."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    lines = ["path,emotion,gender,speaker"]
    for speaker, gender in (("f1", "female"), ("m1", "male"), ("f2", "female"), ("m2", "male")):
        for emotion, frequency in (("happy", 330.0), ("sad", 165.0)):
            sf.write(corpus / f"{speaker}_{emotion}.wav", tone(0.25, frequency), 16000, subtype="PCM_16")
            lines.append(f"{speaker}_{emotion}.wav,{emotion},{gender},{speaker}")
    (corpus / "broken.wav").write_bytes(b"RIFF....WAVE")
    lines.append("broken.wav,sad,female,f1")
    (corpus / "manifest.csv").write_text("\n".join(lines) + "\n")
    return corpus / "manifest.csv"


# Folds ---------------------------------------------------------------------------------------------------------


def test_emodb_like_speakers_give_one_female_and_one_male_per_fold():
    genders = {s: "female" for s in ("08", "09", "13", "14", "16")}
    genders |= {s: "male" for s in ("03", "10", "11", "12", "15")}
    assert assign_speaker_folds(genders, 5) == {
        "08": 1, "09": 2, "13": 3, "14": 4, "16": 5, "03": 1, "10": 2, "11": 3, "12": 4, "15": 5
    }  # fmt: skip


def test_folds_are_balanced_deterministic_and_mixed_gender():
    genders = {f"Actor_{a:02d}": "male" if a % 2 else "female" for a in range(1, 25)}
    folds = assign_speaker_folds(genders, 5)
    shuffled = list(genders.items())
    random.Random(0).shuffle(shuffled)
    assert assign_speaker_folds(dict(shuffled), 5) == folds
    sizes = [list(folds.values()).count(k) for k in range(1, 6)]
    assert sizes == [5, 5, 5, 5, 4]
    assert all({genders[s] for s, f in folds.items() if f == k} == {"female", "male"} for k in range(1, 6))


def test_fold_errors():
    with pytest.raises(CorpusError, match="cannot make 4 speaker-independent folds from 3 speakers"):
        assign_speaker_folds({"a": "female", "b": "male", "c": "male"}, 4)
    records = [Utterance("1", "/a/1.wav", "sad", "female", "s"), Utterance("2", "/a/2.wav", "sad", "male", "s")]
    with pytest.raises(CorpusError, match=r"speaker 's' is female in /a/1\.wav but male in /a/2\.wav"):
        with_speaker_folds(records, 2)


# Label maps ----------------------------------------------------------------------------------------------------


def test_label_map_specs(tmp_path):
    assert parse_label_map("4class").names == ("angry", "happy", "sad", "neutral")
    assert parse_label_map("4class").mapping["exc"] == "happy"
    inline = parse_label_map("anger:angry, happiness:happy,joy:happy")
    assert inline == LabelMap({"anger": "angry", "happiness": "happy", "joy": "happy"}, ("angry", "happy"))
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"sadness": "low", "boredom": "low", "anger": "high"}))
    expected = LabelMap({"sadness": "low", "boredom": "low", "anger": "high"}, ("low", "high"))
    assert parse_label_map(str(path)) == expected


@pytest.mark.parametrize(
    "spec, message",
    [
        ("anger", r"label map item 'anger' is not 'src:dst' .*presets: 4class"),
        ("a:b,a:c", "label 'a' mapped to both 'b' and 'c'"),
        ("a:", "empty label in pair 'a':''"),
    ],
)
def test_bad_label_maps_are_errors(spec, message):
    with pytest.raises(CorpusError, match=message):
        parse_label_map(spec)


def test_bad_label_map_file(tmp_path):
    path = tmp_path / "map.json"
    path.write_text("[1, 2]")
    with pytest.raises(CorpusError, match=r"map\.json must hold a JSON object"):
        parse_label_map(str(path))


def test_apply_label_map_drops_or_keeps_unmapped_labels():
    records = [Utterance(str(i), f"/{i}.wav", label, "female", "s") for i, label in enumerate(["ang", "fru", "exc"])]
    labels = ("neu", "fru", "ang", "exc", "xxx")
    kept, names, dropped = apply_label_map(records, labels, parse_label_map("4class"))
    assert [r.emotion for r in kept] == ["angry", "happy"] and dropped == {"fru": 1}
    kept, names, dropped = apply_label_map(records, labels, parse_label_map("4class"), keep_all=True)
    assert [r.emotion for r in kept] == ["angry", "fru", "happy"] and not dropped
    assert names == ("angry", "happy", "sad", "neutral", "fru", "xxx")
    assert apply_label_map(records, labels, None) == (records, labels, {})


# Building ------------------------------------------------------------------------------------------------------


def test_schema_and_unreadable_files(small_manifest, tmp_path):
    dataset, report = build_corpus("manifest", small_manifest, num_folds=2, cache_dir=tmp_path / "cache")
    assert dataset.features == datasets.Features(
        {
            "id": datasets.Value("string"),
            "audio": datasets.Audio(sampling_rate=16000, decode=False),
            "emotion": datasets.ClassLabel(names=["happy", "sad"]),
            "gender": datasets.ClassLabel(names=["female", "male"]),
            "speaker": datasets.Value("string"),
            "fold": datasets.Value("int32"),
            "duration": datasets.Value("float32"),
        }
    )
    assert len(dataset) == 8 and dataset.info.dataset_name == "manifest"
    assert [(Path(s.source).name, s.reason) for s in report.skipped] == [("broken.wav", "unreadable audio file")]
    with pytest.raises(CorpusError, match=r"manifest: 1 audio file\(s\) could not be decoded: .*broken\.wav"):
        build_corpus("manifest", small_manifest, num_folds=2, strict=True, cache_dir=tmp_path / "cache")


def test_build_dataset_validates_records(tmp_path):
    record = Utterance("a", str(tmp_path / "a.wav"), "sad", "female", "s", fold=1)
    with pytest.raises(CorpusError, match=r"records with labels \['sad'\] outside \['happy'\]"):
        build_dataset([record], ["happy"], cache_dir=tmp_path)
    with pytest.raises(CorpusError, match="none of the 1 audio files could be decoded: .*missing audio file"):
        build_dataset([record], ["sad"], cache_dir=tmp_path)


def test_saved_dataset_is_self_contained(small_manifest, tmp_path):
    dataset, _ = build_corpus("manifest", small_manifest, num_folds=2, cache_dir=tmp_path / "cache")
    expected = decode_example_audio(dataset[0]["audio"])
    save_dataset(dataset, tmp_path / "out")
    del dataset
    shutil.rmtree(small_manifest.parent)
    shutil.rmtree(tmp_path / "cache")
    reloaded = datasets.load_from_disk(str(tmp_path / "out"))
    assert len(reloaded) == 8 and reloaded.info.dataset_name == "manifest"
    assert reloaded.features["emotion"].names == ["happy", "sad"]
    np.testing.assert_array_equal(decode_example_audio(reloaded[0]["audio"]), expected)
    assert expected.shape == (4000,)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder left


def test_save_never_leaves_half_written_output(small_manifest, tmp_path):
    dataset, _ = build_corpus("manifest", small_manifest, num_folds=2, cache_dir=tmp_path / "cache")
    out = tmp_path / "out"
    with pytest.raises(FileExistsError, match="output folder already exists"):
        out.mkdir() or save_dataset(dataset, out)
    (out / "keep.txt").write_text("old")
    with mock.patch.object(datasets.Dataset, "save_to_disk", side_effect=OSError("disk full")):
        with pytest.raises(OSError, match="disk full"):
            save_dataset(dataset, out, overwrite=True)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "corpus", "out"]
    save_dataset(dataset, out, overwrite=True)
    assert (out / "dataset_info.json").is_file() and not (out / "keep.txt").exists()


# Pushing -------------------------------------------------------------------------------------------------------


def test_push_defaults_to_private_and_warns_for_iemocap(small_manifest, tmp_path):
    dataset, _ = build_corpus("manifest", small_manifest, num_folds=2, cache_dir=tmp_path / "cache")
    with mock.patch.object(datasets.Dataset, "push_to_hub", autospec=True) as push:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            push_dataset(dataset, "me/emotions")
        push.assert_called_once_with(dataset, "me/emotions", private=True)
        dataset.info.dataset_name = "iemocap"
        with pytest.warns(UserWarning, match="IEMOCAP's licence forbids redistributing") as caught:
            push_dataset(dataset, "me/iemocap")
        assert push.call_args == mock.call(dataset, "me/iemocap", private=True)
        assert "PUBLICLY" not in str(caught[0].message)
        with pytest.warns(UserWarning, match="Pushing it PUBLICLY to me/iemocap breaks it"):
            push_dataset(dataset, "me/iemocap", private=False)
        assert push.call_args == mock.call(dataset, "me/iemocap", private=False)


def test_leftovers_finds_what_an_interrupted_write_leaves(tmp_path):
    """The check the run tests rely on: it sees staged, replaced and discarded files, and nothing else."""
    from gemo_clap.processing.atomic import atomic_path, staging_path

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / ".config.json.partial-12").write_text("{")
    (tmp_path / ".model.old-7").mkdir()
    (tmp_path / ".discarded.partial-3").mkdir()
    (tmp_path / ".hidden").write_text("kept")
    (tmp_path / "results.partial.json").write_text("a name, not a staging file")
    assert [path.name for path in leftovers(tmp_path)] == [
        ".discarded.partial-3",
        ".model.old-7",
        ".config.json.partial-12",
    ]
    assert staging_path(tmp_path / "x").name == ".x.partial"
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "out" / "file.json", unique=True) as partial:
        partial.write_text("half")
        raise RuntimeError("crash while writing")
    assert not (tmp_path / "out" / "file.json").exists() and leftovers(tmp_path / "out") == []
