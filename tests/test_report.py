"""Cross-validation reports: numbers, markdown text and confusion-matrix PNGs."""

import json
import statistics

import matplotlib.image
import numpy as np
import pytest
from gemo_clap.train.evaluation.report import (
    confusion_matrix_figsize,
    markdown_table,
    plot_confusion_matrix,
    summarize_folds,
    write_report,
)

LABELS = ["anger", "happiness", "sadness"]


def fold(fold_id, war, uar, macro_f1, matrix, per_gender=None):
    result = {"fold": fold_id, "war": war, "uar": uar, "macro_f1": macro_f1, "confusion_matrix": matrix}
    if per_gender is not None:
        result["per_gender"] = per_gender
    return result


FOLDS = [
    fold(
        "s1",
        0.80,
        0.70,
        0.65,
        [[5, 1, 0], [0, 4, 1], [1, 0, 3]],
        {"female": {"war": 0.9, "uar": 0.8}, "male": {"war": 0.7, "uar": 0.6}},
    ),
    fold(
        "s2",
        0.60,
        0.50,
        0.45,
        [[2, 2, 1], [1, 3, 0], [0, 0, 0]],
        {"female": {"war": 0.5, "uar": 0.4}, "male": {"war": 0.7, "uar": 0.6}},
    ),
    fold("s3", 0.70, 0.66, 0.61, [[3, 0, 0], [0, 2, 2], [0, 1, 4]], {"female": {"war": 0.7, "uar": 0.6}}),
]


def test_summarize_folds_numbers():
    summary = summarize_folds(FOLDS)
    assert summary["num_folds"] == 3 and summary["folds"] == ["s1", "s2", "s3"]
    for score, values in {"war": [0.8, 0.6, 0.7], "uar": [0.7, 0.5, 0.66], "macro_f1": [0.65, 0.45, 0.61]}.items():
        assert summary[score]["values"] == values
        assert summary[score]["mean"] == pytest.approx(statistics.fmean(values))
        assert summary[score]["std"] == pytest.approx(statistics.pstdev(values))
    assert summary["per_gender"]["female"]["war"]["mean"] == pytest.approx(0.7)
    assert summary["per_gender"]["female"]["uar"]["std"] == pytest.approx(statistics.pstdev([0.8, 0.4, 0.6]))
    male_war = summary["per_gender"]["male"]["war"]
    assert male_war == {"mean": pytest.approx(0.7), "std": pytest.approx(0.0), "values": [0.7, 0.7]}
    assert summary["confusion_matrix"] == [[10, 3, 1], [1, 9, 3], [1, 1, 7]]


def test_summarize_folds_errors():
    with pytest.raises(ValueError, match="no fold results"):
        summarize_folds([])
    with pytest.raises(ValueError, match=r"fold result #1 \(fold='s2'\) lacks \['uar'\]"):
        summarize_folds([FOLDS[0], {k: v for k, v in FOLDS[1].items() if k != "uar"}])
    with pytest.raises(ValueError, match="confusion matrices of different shapes"):
        summarize_folds([FOLDS[0], {**FOLDS[1], "confusion_matrix": [[1, 0], [0, 1]]}])


GENDER_HEADER = "| WAR female (%) | UAR female (%) | WAR male (%) | UAR male (%) |"
MEAN_STD_CELLS = (
    "| 70.00 ± 8.16 | 62.00 ± 8.64 | 57.00 ± 8.64 | 70.00 ± 16.33 | 60.00 ± 16.33 | 70.00 ± 0.00 | 60.00 ± 0.00 |"
)


def test_markdown_table_single_variant():
    text = markdown_table({"ml": FOLDS})
    assert text.splitlines() == [
        "# Cross-validation results",
        "",
        "Mean ± standard deviation over folds (population std, ddof=0).",
        "",
        "| Variant | WAR (%) | UAR (%) | Macro-F1 (%) " + GENDER_HEADER,
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        "| ml (3 folds) " + MEAN_STD_CELLS,
        "",
        "## ml",
        "",
        "| Fold | WAR (%) | UAR (%) | Macro-F1 (%) " + GENDER_HEADER,
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        "| s1 | 80.00 | 70.00 | 65.00 | 90.00 | 80.00 | 70.00 | 60.00 |",
        "| s2 | 60.00 | 50.00 | 45.00 | 50.00 | 40.00 | 70.00 | 60.00 |",
        "| s3 | 70.00 | 66.00 | 61.00 | 70.00 | 60.00 | – | – |",
        "| mean ± std " + MEAN_STD_CELLS,
    ]


def test_markdown_table_sweep_without_genders():
    no_gender = [{k: v for k, v in result.items() if k != "per_gender"} for result in FOLDS]
    text = markdown_table({"emo": no_gender[:2], "sl": no_gender})
    lines = text.splitlines()
    assert lines[4:8] == [
        "| Variant | WAR (%) | UAR (%) | Macro-F1 (%) |",
        "| --- | --- | --- | --- |",
        "| emo (2 folds) | 70.00 ± 10.00 | 60.00 ± 10.00 | 55.00 ± 10.00 |",
        "| sl (3 folds) | 70.00 ± 8.16 | 62.00 ± 8.64 | 57.00 ± 8.64 |",
    ]
    assert "## emo" in lines and "## sl" in lines
    assert lines.index("## sl") > lines.index("## emo")


def test_write_report_files(tmp_path):
    paths = write_report(tmp_path / "report", {"emo": FOLDS[:2], "SL GEmo/v2": FOLDS}, LABELS)
    assert set(paths) == {"results_json", "results_md", "confusion_matrix_emo", "confusion_matrix_SL GEmo/v2"}
    assert paths["confusion_matrix_SL GEmo/v2"].name == "confusion_matrix_SL_GEmo_v2.png"
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == [
        "confusion_matrix_SL_GEmo_v2.png",
        "confusion_matrix_emo.png",
        "results.json",
        "results.md",
    ]

    report = json.loads(paths["results_json"].read_text())
    assert report["label_names"] == LABELS
    assert report["variants"]["emo"]["folds"] == FOLDS[:2]
    assert report["variants"]["emo"]["summary"]["war"]["mean"] == pytest.approx(0.7)
    assert report["variants"]["SL GEmo/v2"]["summary"]["confusion_matrix"] == [[10, 3, 1], [1, 9, 3], [1, 1, 7]]
    assert paths["results_md"].read_text() == markdown_table({"emo": FOLDS[:2], "SL GEmo/v2": FOLDS})

    width, height = confusion_matrix_figsize(len(LABELS))
    for key in ("confusion_matrix_emo", "confusion_matrix_SL GEmo/v2"):
        image = matplotlib.image.imread(paths[key])
        assert image.shape == (round(height * 100), round(width * 100), 4)
        assert image[..., :3].std() > 0.05  # not a blank canvas


def test_plot_confusion_matrix_row_normalisation_and_errors(tmp_path):
    # the row of a class without references (all zeros) must not produce NaNs or a warning
    with np.errstate(all="raise"):
        path = plot_confusion_matrix([[2, 0], [0, 0]], ["a", "b"], tmp_path / "cm.png", dpi=50)
    width, height = confusion_matrix_figsize(2)
    assert matplotlib.image.imread(path).shape == (round(height * 50), round(width * 50), 4)
    with pytest.raises(ValueError, match=r"confusion matrix of shape \(2, 2\) does not match 3 label names"):
        plot_confusion_matrix([[1, 0], [0, 1]], LABELS, tmp_path / "bad.png")


def test_write_report_requires_variants(tmp_path):
    with pytest.raises(ValueError, match="no variants given"):
        write_report(tmp_path, {}, LABELS)
