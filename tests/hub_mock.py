"""An offline Hugging Face Hub for tests, mocked at the HTTP-transport level of the real ``huggingface_hub`` client.

``huggingface_hub`` sends every Hub request through one ``httpx2.Client`` built by the factory given to
``huggingface_hub.set_client_factory``; the ``mock_hub`` fixture installs a factory whose client uses an
``httpx2.MockTransport`` answering like the Hub. The client code (``HfApi``, ``transformers``' ``push_to_hub``,
``hf_hub_download``...) runs unchanged and the mock records what it committed::

    def test_push(mock_hub, tmp_path):
        model.push_to_hub("mock-user/tiny")
        assert mock_hub.last_commit.paths == {"config.json", "model.safetensors", "README.md"}
        assert mock_hub.last_commit.files["config.json"] == (saved_dir / "config.json").read_bytes()
        assert mock_hub.last_commit.lfs_paths == {"model.safetensors"}

Endpoints answered: whoami, the agent-harness registry (empty), repo creation, repo info, README metadata
validation, preupload (``*.safetensors``, ``*.bin``... and files over 10 MB are LFS), the git-LFS batch/upload/verify
protocol (basic transfer), commits (NDJSON payload), repo trees and file resolution (HEAD/GET
``/{repo_id}/resolve/{revision}/{path}``) of committed files, so ``from_pretrained`` and ``snapshot_download`` can
load what was pushed. Any other request raises ``UnexpectedHubRequest`` naming it, and fails the test at teardown even if the client
swallowed the exception. Real network access (DNS or a non-loopback connection) raises as well; Xet storage is
disabled so that uploads take the LFS path of the Python client.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

import httpx2
import pytest
import yaml
from huggingface_hub import constants, set_async_client_factory, set_client_factory
from huggingface_hub.utils import _http

MOCK_USER = "mock-user"
MOCK_TOKEN = "hf_mock_write_token"
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".pkl", ".h5", ".onnx", ".msgpack", ".npz", ".npy")
LFS_MIN_SIZE = 10 * 1024 * 1024
LFS_PREFIX = "/__mock_lfs__"
REPO_TYPE_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}
_REPO = r"(?P<repo_id>[^/]+/[^/]+)"
_API_REPO = rf"/api/(?P<type>models|datasets|spaces)/{_REPO}"
_URL_REPO = rf"/(?:(?P<type>datasets|spaces)/)?{_REPO}"


class UnexpectedHubRequest(AssertionError):
    """A request the mock Hub does not know how to answer."""


@dataclass
class RecordedCommit:
    """One commit received by the mock Hub. ``files`` maps each added path to its full bytes (LFS ones resolved)."""

    repo_id: str
    repo_type: str
    revision: str
    message: str
    description: str
    oid: str
    token: str | None
    files: dict[str, bytes] = field(default_factory=dict)
    lfs_paths: set[str] = field(default_factory=set)
    deleted_paths: list[str] = field(default_factory=list)
    create_pr: bool = False

    @property
    def paths(self) -> set[str]:
        """Paths of the files added by this commit."""
        return set(self.files)


@dataclass
class MockRepo:
    repo_id: str
    repo_type: str
    private: bool
    files: dict[str, bytes] = field(default_factory=dict)
    lfs_paths: set[str] = field(default_factory=set)
    head: str = "0" * 40


def _git_blob_sha1(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _upload_mode(path: str, size: int) -> str:
    return "lfs" if path.endswith(LFS_SUFFIXES) or size >= LFS_MIN_SIZE else "regular"


def _error(status: int, code: str, message: str) -> httpx2.Response:
    return httpx2.Response(status, headers={"X-Error-Code": code, "X-Error-Message": message}, json={"error": message})


class MockHub:
    """State and request handler of the mock Hub; see the module docstring."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint.rstrip("/")
        self.host = urlsplit(self.endpoint).netloc
        self.repos: dict[tuple[str, str], MockRepo] = {}
        self.commits: list[RecordedCommit] = []
        self.lfs_objects: dict[str, bytes] = {}
        self.lfs_uploads: list[str] = []  # oids received through LFS PUT, in order
        self.requests: list[str] = []  # "METHOD url" of every request received
        self.unexpected: list[str] = []
        self._lock = threading.Lock()
        self._routes = [
            ("GET", r"/api/whoami-v2", self._whoami),
            ("GET", r"/api/agent-harnesses", self._agent_harnesses),
            ("POST", r"/api/repos/create", self._create_repo),
            ("POST", r"/api/validate-yaml", self._validate_yaml),
            ("POST", rf"{_API_REPO}/preupload/(?P<revision>[^/]+)", self._preupload),
            ("POST", rf"{_API_REPO}/commit/(?P<revision>[^/]+)", self._commit),
            ("GET", rf"{_API_REPO}(?:/revision/(?P<revision>[^/]+))?", self._repo_info),
            ("GET", rf"{_API_REPO}/tree/(?P<revision>[^/]+)(?:/(?P<folder>.+))?", self._tree),
            ("POST", rf"{_URL_REPO}\.git/info/lfs/objects/batch", self._lfs_batch),
            ("PUT", rf"{LFS_PREFIX}/(?P<oid>[0-9a-f]{{64}})", self._lfs_upload),
            ("POST", rf"{LFS_PREFIX}/verify", self._lfs_verify),
            ("HEAD", rf"{_URL_REPO}/resolve/(?P<revision>[^/]+)/(?P<path>.+)", self._resolve),
            ("GET", rf"{_URL_REPO}/resolve/(?P<revision>[^/]+)/(?P<path>.+)", self._resolve),
        ]

    # --- helpers for tests -------------------------------------------------------------------------------------
    @property
    def last_commit(self) -> RecordedCommit:
        if not self.commits:
            raise AssertionError("mock_hub: no commit was made")
        return self.commits[-1]

    def repo_files(self, repo_id: str, repo_type: str = "model") -> dict[str, bytes]:
        """Current files of a repo on the mock Hub (path -> bytes)."""
        return dict(self.repos[(repo_type, repo_id)].files)

    def add_repo(self, repo_id: str, files: dict[str, bytes] | None = None, repo_type: str = "model") -> MockRepo:
        """Create a repo directly (no request), optionally holding ``files``, e.g. to test downloads."""
        repo = self.repos.setdefault((repo_type, repo_id), MockRepo(repo_id, repo_type, private=False))
        for path, content in (files or {}).items():
            repo.files[path] = content
            if _upload_mode(path, len(content)) == "lfs":
                repo.lfs_paths.add(path)
        repo.head = hashlib.sha1(f"{repo.head}{sorted(repo.files)}".encode()).hexdigest()
        return repo

    # --- transport ---------------------------------------------------------------------------------------------
    def handle(self, request: httpx2.Request) -> httpx2.Response:
        url = str(request.url)
        with self._lock:
            self.requests.append(f"{request.method} {url}")
        if request.url.netloc.decode() == self.host:
            path = unquote(request.url.path)
            for method, pattern, handler in self._routes:
                match = re.fullmatch(pattern, path)
                if match and request.method == method:
                    with self._lock:
                        return handler(request, **match.groupdict())
        message = f"mock_hub: unexpected request {request.method} {url}"
        with self._lock:
            self.unexpected.append(message)
        raise UnexpectedHubRequest(message)

    def _client_factory(self) -> httpx2.Client:
        return httpx2.Client(
            transport=httpx2.MockTransport(self.handle),
            event_hooks={"request": [_http.hf_request_event_hook]},
            follow_redirects=True,
            timeout=None,
        )

    def _async_client_factory(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=httpx2.MockTransport(self.handle), follow_redirects=True, timeout=None)

    # --- endpoints ---------------------------------------------------------------------------------------------
    @staticmethod
    def _token(request: httpx2.Request) -> str | None:
        authorization = request.headers.get("authorization", "")
        return authorization.removeprefix("Bearer ") if authorization.startswith("Bearer ") else None

    def _require_token(self, request: httpx2.Request) -> httpx2.Response | None:
        if not self._token(request):
            return _error(401, "Unauthorized", f"mock_hub: {request.method} {request.url} needs a token")
        return None

    def _repo(self, repo_type: str | None, repo_id: str) -> MockRepo | None:
        return self.repos.get((constants.REPO_TYPES_MAPPING.get(repo_type, "model") if repo_type else "model", repo_id))

    def _whoami(self, request: httpx2.Request) -> httpx2.Response:
        if denied := self._require_token(request):
            return denied
        auth = {"accessToken": {"displayName": "mock", "role": "write"}}
        return httpx2.Response(200, json={"type": "user", "name": MOCK_USER, "orgs": [], "auth": auth})

    def _agent_harnesses(self, request: httpx2.Request) -> httpx2.Response:
        """Registry used by the client to tag its user agent: an empty one (no agent detected)."""
        return httpx2.Response(200, json={"standardEnvVars": [], "harnesses": {}})

    def _create_repo(self, request: httpx2.Request) -> httpx2.Response:
        if denied := self._require_token(request):
            return denied
        payload = json.loads(request.content)
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or MOCK_USER}/{payload['name']}"
        url = f"{self.endpoint}/{REPO_TYPE_PREFIXES[repo_type]}{repo_id}"
        if (repo_type, repo_id) in self.repos:  # like the Hub, a conflict still tells the repo url
            message = f"You already created this {repo_type} repo"
            return httpx2.Response(409, headers={"X-Error-Message": message}, json={"error": message, "url": url})
        self.repos[(repo_type, repo_id)] = MockRepo(repo_id, repo_type, private=payload.get("visibility") == "private")
        return httpx2.Response(200, json={"url": url, "name": repo_id, "id": repo_id})

    def _validate_yaml(self, request: httpx2.Request) -> httpx2.Response:
        content = json.loads(request.content)["content"]
        match = re.match(r"^---\n(.*?)\n---", content, flags=re.DOTALL)
        try:
            metadata = yaml.safe_load(match.group(1)) if match else {}
        except yaml.YAMLError as error:
            return httpx2.Response(400, json={"errors": [{"message": str(error)}], "warnings": []})
        if metadata is not None and not isinstance(metadata, dict):
            return httpx2.Response(400, json={"errors": [{"message": "metadata must be a mapping"}], "warnings": []})
        return httpx2.Response(200, json={"errors": [], "warnings": []})

    def _repo_info(self, request: httpx2.Request, type: str, repo_id: str, revision: str | None) -> httpx2.Response:
        repo = self._repo(type, repo_id)
        if repo is None:
            return _error(404, "RepoNotFound", f"Repository {repo_id} not found")
        siblings = [{"rfilename": path} for path in sorted(repo.files)]
        info = {"id": repo_id, "sha": repo.head, "private": repo.private, "siblings": siblings, "tags": []}
        return httpx2.Response(200, json=info)

    def _tree(self, request: httpx2.Request, type: str, repo_id: str, revision: str, folder: str | None):
        repo = self._repo(type, repo_id)
        if repo is None:
            return _error(404, "RepoNotFound", f"Repository {repo_id} not found")
        prefix = f"{folder.strip('/')}/" if folder else ""
        recursive = request.url.params.get("recursive") in ("true", "True", "1")
        entries, folders = [], set()
        for path, content in sorted(repo.files.items()):
            if not path.startswith(prefix):
                continue
            parents = [str(parent) for parent in PurePosixPath(path[len(prefix) :]).parents][:-1]  # without "."
            if parents and not recursive:
                folders.add(prefix + parents[-1])  # the top-level folder holding the file
                continue
            folders.update(prefix + parent for parent in parents)
            entry = {"type": "file", "path": path, "size": len(content), "oid": _git_blob_sha1(content)}
            if path in repo.lfs_paths:
                entry["lfs"] = {"oid": hashlib.sha256(content).hexdigest(), "size": len(content), "pointerSize": 134}
            entries.append(entry)
        entries += [
            {"type": "directory", "path": folder, "oid": _git_blob_sha1(folder.encode())} for folder in sorted(folders)
        ]
        return httpx2.Response(200, json=entries)

    def _preupload(self, request: httpx2.Request, type: str, repo_id: str, revision: str) -> httpx2.Response:
        if denied := self._require_token(request):
            return denied
        repo = self._repo(type, repo_id)
        if repo is None:
            return _error(404, "RepoNotFound", f"Repository {repo_id} not found")
        modes = [
            {"path": f["path"], "uploadMode": _upload_mode(f["path"], f["size"]), "shouldIgnore": False, "oid": None}
            for f in json.loads(request.content)["files"]
        ]
        return httpx2.Response(200, json={"files": modes, "commitOid": repo.head})

    def _lfs_batch(self, request: httpx2.Request, type: str | None, repo_id: str) -> httpx2.Response:
        if denied := self._require_token(request):
            return denied
        if self._repo(type, repo_id) is None:
            return _error(404, "RepoNotFound", f"Repository {repo_id} not found")
        objects = []
        for item in json.loads(request.content)["objects"]:
            entry = {"oid": item["oid"], "size": item["size"], "authenticated": True}
            if item["oid"] not in self.lfs_objects:
                entry["actions"] = {
                    "upload": {"href": f"{self.endpoint}{LFS_PREFIX}/{item['oid']}"},
                    "verify": {"href": f"{self.endpoint}{LFS_PREFIX}/verify"},
                }
            objects.append(entry)
        return httpx2.Response(200, json={"transfer": "basic", "objects": objects})

    def _lfs_upload(self, request: httpx2.Request, oid: str) -> httpx2.Response:
        content = request.content
        if hashlib.sha256(content).hexdigest() != oid:
            return _error(400, "BadRequest", f"mock_hub: uploaded bytes do not hash to LFS oid {oid}")
        self.lfs_objects[oid] = content
        self.lfs_uploads.append(oid)
        return httpx2.Response(200, headers={"ETag": f'"{oid}"'})

    def _lfs_verify(self, request: httpx2.Request) -> httpx2.Response:
        payload = json.loads(request.content)
        content = self.lfs_objects.get(payload["oid"])
        if content is None or len(content) != payload["size"]:
            return _error(404, "EntryNotFound", f"mock_hub: LFS object {payload['oid']} was not uploaded")
        return httpx2.Response(200, json={"success": True})

    def _commit(self, request: httpx2.Request, type: str, repo_id: str, revision: str) -> httpx2.Response:
        if denied := self._require_token(request):
            return denied
        repo = self._repo(type, repo_id)
        if repo is None:
            return _error(404, "RepoNotFound", f"Repository {repo_id} not found")
        if revision != constants.DEFAULT_REVISION:
            return _error(404, "RevisionNotFound", f"mock_hub: only the {constants.DEFAULT_REVISION} branch exists")
        lines = [json.loads(line) for line in request.content.decode().splitlines() if line.strip()]
        header = next(line["value"] for line in lines if line["key"] == "header")
        commit = RecordedCommit(
            repo_id=repo_id,
            repo_type=repo.repo_type,
            revision=revision,
            message=header["summary"],
            description=header.get("description", ""),
            oid="",
            token=self._token(request),
            create_pr=request.url.params.get("create_pr") == "1",
        )
        for line in lines:
            key, value = line["key"], line["value"]
            if key == "file":
                commit.files[value["path"]] = base64.b64decode(value["content"])
            elif key == "lfsFile":
                if value["oid"] not in self.lfs_objects:
                    return _error(422, "BadRequest", f"mock_hub: LFS object of {value['path']} was never uploaded")
                commit.files[value["path"]] = self.lfs_objects[value["oid"]]
                commit.lfs_paths.add(value["path"])
            elif key in ("deletedFile", "deletedFolder"):
                commit.deleted_paths.append(value["path"])
            elif key != "header":
                return _error(400, "BadRequest", f"mock_hub: unknown commit operation {key!r}")
        digest = hashlib.sha1(repo.head.encode())
        for path, content in sorted(commit.files.items()):
            digest.update(path.encode() + hashlib.sha256(content).digest())
        commit.oid = digest.hexdigest()
        self.commits.append(commit)

        url_prefix = f"{self.endpoint}/{REPO_TYPE_PREFIXES[repo.repo_type]}{repo_id}"
        answer = {"commitUrl": f"{url_prefix}/commit/{commit.oid}", "commitOid": commit.oid}
        if commit.create_pr:  # a pull request leaves the branch unchanged
            answer["pullRequestUrl"] = f"{url_prefix}/discussions/{sum(c.create_pr for c in self.commits)}"
            return httpx2.Response(200, json=answer)
        for path in commit.deleted_paths:
            for existing in [p for p in repo.files if p == path.rstrip("/") or p.startswith(path.rstrip("/") + "/")]:
                del repo.files[existing]
                repo.lfs_paths.discard(existing)
        repo.files.update(commit.files)
        repo.lfs_paths |= commit.lfs_paths
        repo.head = commit.oid
        return httpx2.Response(200, json=answer)

    def _resolve(self, request: httpx2.Request, type: str | None, repo_id: str, revision: str, path: str):
        repo = self._repo(type, repo_id)
        if repo is None:
            return _error(404, "RepoNotFound", f"Repository {repo_id} not found")
        if revision not in (constants.DEFAULT_REVISION, repo.head):
            return _error(404, "RevisionNotFound", f"Revision {revision} not found in {repo_id}")
        if path not in repo.files:
            response = _error(404, "EntryNotFound", f"{path} does not exist in {repo_id}")
            response.headers["X-Repo-Commit"] = repo.head
            return response
        content = repo.files[path]
        headers = {"X-Repo-Commit": repo.head, "Content-Length": str(len(content))}
        if path in repo.lfs_paths:
            sha256 = hashlib.sha256(content).hexdigest()
            headers.update({"ETag": f'"{sha256}"', "X-Linked-Etag": f'"{sha256}"', "X-Linked-Size": str(len(content))})
        else:
            headers["ETag"] = f'"{_git_blob_sha1(content)}"'
        return httpx2.Response(200, headers=headers, content=b"" if request.method == "HEAD" else content)


def _block_real_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make DNS lookups and non-loopback connections raise, so no request can leave the machine."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(host) -> None:
        if host not in LOOPBACK_HOSTS:
            raise OSError(f"mock_hub: real network access to {host!r} is blocked during this test")

    def getaddrinfo(host, *args, **kwargs):
        check(host)
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            check(address[0])
        return real_connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            check(address[0])
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


@pytest.fixture
def mock_hub(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """A fresh ``MockHub`` serving every ``huggingface_hub`` request of the test; see the module docstring.

    Sets ``HF_TOKEN`` to ``MOCK_TOKEN`` (user ``MOCK_USER``), a temporary Hub cache (``huggingface_hub.constants
    .HF_HUB_CACHE``, where downloads from the mock land), online mode and no Xet.
    """
    hub = MockHub(constants.ENDPOINT)
    monkeypatch.setenv("HF_TOKEN", MOCK_TOKEN)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    hf_home = tmp_path_factory.mktemp("mock_hub_home")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(hf_home / ".agent_harnesses.json"))
    _block_real_network(monkeypatch)
    previous_factory, previous_async_factory = _http._GLOBAL_CLIENT_FACTORY, _http._GLOBAL_ASYNC_CLIENT_FACTORY
    set_client_factory(hub._client_factory)
    set_async_client_factory(hub._async_client_factory)
    try:
        yield hub
    finally:
        set_client_factory(previous_factory)
        set_async_client_factory(previous_async_factory)
    if hub.unexpected:
        pytest.fail("\n".join(hub.unexpected), pytrace=False)
