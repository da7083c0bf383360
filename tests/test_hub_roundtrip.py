"""A saved GEmo-CLAP checkpoint is self-contained: its folder (or Hub repo) carries safetensors weights, configs
with `auto_map`, the processor and the remote-code .py files, and loads with `trust_remote_code=True` in a
process where the `gemo_clap` package cannot be imported, giving the same logits."""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from gemo_clap.modeling import GEmoClapModel, GEmoClapProcessor
from safetensors.torch import load_file
from transformers import AutoModel, pipeline

TASK = "zero-shot-audio-classification"
KINDS = ["wavlm", "whisper"]
CHECKPOINT_KWARGS = {"logit_scale_init": 100.0, "projection_dim": 32}  # shared with test_pipeline's checkpoints
CODE_FILES = {
    "audio_tower_gemo_clap.py",
    "configuration_gemo_clap.py",
    "modeling_gemo_clap.py",
    "processing_gemo_clap.py",
    "pipeline_gemo_clap.py",
    "loss_gemo_clap.py",
}
PROCESSOR_FILES = {"processor_config.json", "tokenizer.json", "tokenizer_config.json"}
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
PROMPTS = ["The emotion is angry.", "The emotion is happy.", "The emotion is sad.", "The emotion is neutral."]

FRESH_PROCESS_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["gemo_clap"] = None  # the package must not be needed: everything comes from the checkpoint folder
    try:
        import gemo_clap
    except ImportError:
        pass
    else:
        raise SystemExit("gemo_clap is importable in the fresh process")

    import json
    from pathlib import Path

    import numpy as np
    import torch
    from transformers import AutoConfig, AutoModel, AutoProcessor, pipeline

    work = Path(sys.argv[1])
    prompts = json.loads((work / "prompts.json").read_text())
    clips = [np.load(work / f"clip{index}.npy") for index in range(3)]
    report = {}
    for kind in sys.argv[2:]:
        folder = work / kind
        config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
        model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
        processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
        classifier = pipeline("zero-shot-audio-classification", model=str(folder), trust_remote_code=True)
        inputs = processor(audio=clips, text=prompts, sampling_rate=16000)
        with torch.no_grad():
            logits = model(**inputs).logits_per_audio
        np.save(work / f"{kind}_logits.npy", logits.numpy())
        np.savez(work / f"{kind}_inputs.npz", **{key: value.numpy() for key, value in inputs.items()})
        report[kind] = {
            "classes": [type(obj).__module__ + "." + type(obj).__name__ for obj in (config, model, processor, classifier)],
            "pipeline": classifier(clips, batch_size=3),
        }
    (work / "report.json").write_text(json.dumps(report))
    """
)


@pytest.fixture(scope="module")
def checkpoints(tiny_checkpoint, tiny_encoders, tmp_path_factory):
    """The tiny WavLM and Whisper checkpoints, a Whisper one with statistics pooling over learnt layer weights, and one
    pooling every layer's standardised statistics, concatenated, through a linear projection."""
    folders = {kind: tiny_checkpoint(kind, **CHECKPOINT_KWARGS) for kind in KINDS}
    from gemo_clap.train.towers import build_model_and_processor

    pooled = tmp_path_factory.mktemp("whisper-pooled")
    model, processor = build_model_and_processor(
        *tiny_encoders("whisper"), **CHECKPOINT_KWARGS, audio_pooling="statistics", audio_layer_pooling="weighted_sum"
    )
    with torch.no_grad():
        model.audio_layer_weights.copy_(torch.tensor([0.5, -1.0, 2.0]))
    model.save_pretrained(pooled)
    processor.save_pretrained(pooled)
    standardised = tmp_path_factory.mktemp("whisper-standardised")  # buffers measured on a training split
    model, processor = build_model_and_processor(
        *tiny_encoders("whisper"),
        **CHECKPOINT_KWARGS,
        audio_pooling="statistics",
        audio_layer_pooling="concatenate",
        audio_standardisation=True,
        projection_layers=1,
    )
    shape = model.audio_statistics_mean.shape
    model.set_audio_standardisation(torch.linspace(-0.5, 0.5, shape.numel()).reshape(shape), torch.full(shape, 0.3))
    model.save_pretrained(standardised)
    processor.save_pretrained(standardised)
    return {**folders, "whisper-pooled": pooled, "whisper-standardised": standardised}


@pytest.fixture(scope="module")
def clips(make_clip):
    return [make_clip(seconds, seed=seed) for seed, seconds in enumerate([1.0, 2.5, 4.0])]


@pytest.mark.parametrize("kind", KINDS)
def test_saved_folder_is_self_contained(checkpoints, kind):
    folder = checkpoints[kind]
    files = {path.name for path in folder.iterdir()}
    assert {"model.safetensors", "config.json"} | CODE_FILES | PROCESSOR_FILES <= files
    assert [name for name in files if name.endswith(PICKLE_SUFFIXES)] == []
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_gemo_clap.GEmoClapConfig",
        "AutoModel": "modeling_gemo_clap.GEmoClapModel",
    }
    assert config["custom_pipelines"][TASK]["impl"] == "pipeline_gemo_clap.GEmoClapZeroShotAudioClassificationPipeline"
    assert config["custom_pipelines"][TASK]["pt"] == ["AutoModel"]
    assert config["model_type"] == "gemo_clap" and config["audio_config"]["model_type"] == kind
    processor_config = json.loads((folder / "processor_config.json").read_text())
    assert processor_config["auto_map"] == {"AutoProcessor": "processing_gemo_clap.GEmoClapProcessor"}
    assert processor_config["processor_class"] == "GEmoClapProcessor"
    assert processor_config["max_audio_seconds"] == 14.0
    weights = load_file(folder / "model.safetensors")
    assert {"audio_projection.layers.0.weight", "text_projection.layers.1.bias"} <= set(weights)
    assert {name.split(".")[0] for name in weights} == {
        "audio_model",
        "text_model",
        "audio_projection",
        "text_projection",
        "logit_scale_a",
        "logit_scale_t",
    }


def test_fresh_process_without_the_package_gives_the_same_logits(checkpoints, clips, tmp_path):
    """Copy the folders elsewhere, load them in a new interpreter that cannot import gemo_clap, compare logits."""
    for kind, folder in checkpoints.items():
        shutil.copytree(folder, tmp_path / kind)
    for index, clip in enumerate(clips):
        np.save(tmp_path / f"clip{index}.npy", clip)
    (tmp_path / "prompts.json").write_text(json.dumps(PROMPTS))
    script = tmp_path / "load_checkpoints.py"
    script.write_text(FRESH_PROCESS_SCRIPT)
    environment = dict(os.environ, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules_cache"))
    environment.pop("PYTHONPATH", None)
    completed = subprocess.run(
        [sys.executable, str(script), str(tmp_path), *checkpoints],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    report = json.loads((tmp_path / "report.json").read_text())

    for kind, folder in checkpoints.items():
        classes = report[kind]["classes"]
        assert [name.rsplit(".", 1)[1] for name in classes] == [
            "GEmoClapConfig",
            "GEmoClapModel",
            "GEmoClapProcessor",
            "GEmoClapZeroShotAudioClassificationPipeline",
        ]
        assert all(name.startswith("transformers_modules.") for name in classes), classes

        model = GEmoClapModel.from_pretrained(folder).eval()
        processor = GEmoClapProcessor.from_pretrained(folder)
        inputs = processor(audio=clips, text=PROMPTS, sampling_rate=16000)
        fresh_inputs = np.load(tmp_path / f"{kind}_inputs.npz")
        assert set(fresh_inputs.files) == set(inputs)
        for key in inputs:
            assert np.array_equal(fresh_inputs[key], inputs[key].numpy()), key
        with torch.no_grad():
            logits = model(**inputs).logits_per_audio.numpy()
        fresh_logits = np.load(tmp_path / f"{kind}_logits.npy")
        assert fresh_logits.shape == (3, 4)
        difference = float(np.abs(fresh_logits - logits).max())
        print(f"{kind}: fresh-process vs in-process max abs logit difference {difference:.3g}")
        assert difference < 1e-5

        classifier = pipeline(TASK, model=str(folder), trust_remote_code=True)
        in_process = classifier(clips, batch_size=3)
        for fresh_result, result in zip(report[kind]["pipeline"], in_process):
            assert [item["label"] for item in fresh_result] == [item["label"] for item in result]
            assert max(abs(a["score"] - b["score"]) for a, b in zip(fresh_result, result)) < 1e-6


def test_push_to_hub_commits_a_self_contained_checkpoint(mock_hub, checkpoints, clips):
    """`push_to_hub` through the real huggingface_hub client (mock transport), then load the repo back from it."""
    folder = checkpoints["wavlm"]
    model = GEmoClapModel.from_pretrained(folder).eval()
    processor = GEmoClapProcessor.from_pretrained(folder)
    repo_id = "mock-user/gemo-clap-tiny"
    model.push_to_hub(repo_id)
    model_commit = mock_hub.last_commit
    processor.push_to_hub(repo_id)
    processor_commit = mock_hub.last_commit
    assert model_commit.repo_id == processor_commit.repo_id == repo_id

    # the model ships the code it imports, the processor its own file
    assert {"model.safetensors", "config.json"} | (CODE_FILES - {"processing_gemo_clap.py"}) <= model_commit.paths
    assert PROCESSOR_FILES | {"processing_gemo_clap.py"} <= processor_commit.paths
    committed = model_commit.paths | processor_commit.paths
    assert [path for path in committed if path.endswith(PICKLE_SUFFIXES)] == []
    assert "model.safetensors" in model_commit.lfs_paths
    committed_files = {**model_commit.files, **processor_commit.files}
    for name in CODE_FILES:
        assert committed_files[name] == (folder / name).read_bytes(), name
    config = json.loads(model_commit.files["config.json"])
    assert set(config["auto_map"]) == {"AutoConfig", "AutoModel"} and TASK in config["custom_pipelines"]

    repo_files = mock_hub.repo_files(repo_id)
    assert {"model.safetensors", "config.json"} | CODE_FILES | PROCESSOR_FILES <= set(repo_files)
    # the pushed repo downloads back through the Hub client and computes the same logits (in this process the
    # locally registered class is used; the fresh-process test covers loading the repo's own code)
    reloaded = AutoModel.from_pretrained(repo_id, trust_remote_code=True).eval()
    downloads = [
        request for request in mock_hub.requests if re.fullmatch(rf"GET \S+/{repo_id}/resolve/\w+/(\S+)", request)
    ]
    assert {request.rsplit("/", 1)[1] for request in downloads} >= {"config.json", "model.safetensors"}
    inputs = processor(audio=clips, text=PROMPTS, sampling_rate=16000)
    with torch.no_grad():
        assert torch.equal(reloaded(**inputs).logits_per_audio, model(**inputs).logits_per_audio)
