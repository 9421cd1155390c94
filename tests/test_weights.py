"""Weights downloaded as torchvision does, against an HTTP server on 127.0.0.1 (no internet here)."""

from __future__ import annotations

import hashlib
import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
import torchvision

from semkit import load_classifier
from semkit.classify.weights import HashMismatchError, download_file

RESNET18 = "resnet18-f37072fd.pth"  # torchvision's own name for resnet18 IMAGENET1K_V1


class WeightsServer:
    """Serves files by name and records every request, as a mirror of download.pytorch.org would."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                data = server.files.get(self.path.rsplit("/", 1)[-1])
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/models"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = WeightsServer()
    yield s
    s.close()


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    home = tmp_path / "torch"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.delenv("SEMKIT_OFFLINE", raising=False)
    return home


def _state_bytes(model: torch.nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue()


def _files(folder) -> list:
    return sorted(folder.rglob("*")) if folder.exists() else []


def test_a_download_whose_hash_matches_is_kept(server, tmp_path):
    data = torch.randn(10_000).numpy().tobytes()
    digest = hashlib.sha256(data).hexdigest()
    server.files["w.pth"] = data
    dest = tmp_path / "cache" / "w.pth"
    assert download_file(f"{server.url}/w.pth", dest, hash_prefix=digest[:8], progress=False) == dest
    assert dest.read_bytes() == data and server.requests == ["/models/w.pth"]
    assert _files(tmp_path / "cache") == [dest]  # no partial file beside it


def test_a_torchvision_network_is_downloaded_from_the_mirror_checked_and_kept(server, torch_home, monkeypatch):
    """The whole path of load_classifier: mirror URL, download, hash check against the name, cache, weights used."""
    torch.manual_seed(0)
    reference = torchvision.models.squeezenet1_1(weights=None)
    data = _state_bytes(reference)
    name = f"squeezenet1_1-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    server.files[name] = data
    official = torchvision.models.SqueezeNet1_1_Weights.IMAGENET1K_V1
    # a weights entry as torchvision's, for a file whose hash this test knows
    entry = torchvision.models.Weights(
        url=f"https://download.pytorch.org/models/{name}", transforms=official.transforms, meta=official.meta
    )
    monkeypatch.setenv("SEMKIT_WEIGHTS_URL", server.url + "/")
    c = load_classifier("squeezenet1_1", weights=entry)
    assert server.requests == [f"/models/{name}"]
    assert _files(torch_home / "hub" / "checkpoints") == [torch_home / "hub" / "checkpoints" / name]
    for key, value in reference.state_dict().items():
        assert torch.equal(c.module.state_dict()[key], value), key
    assert c.name == "squeezenet1_1" and c.input_size == 224
    load_classifier("squeezenet1_1", weights=entry)  # from the cache now
    assert len(server.requests) == 1


def test_a_tampered_download_is_refused_and_nothing_is_kept(server, torch_home, monkeypatch):
    torch.manual_seed(0)
    server.files[RESNET18] = _state_bytes(torchvision.models.resnet18(weights=None))  # not the file its name promises
    monkeypatch.setenv("SEMKIT_WEIGHTS_URL", server.url)
    with pytest.raises(HashMismatchError, match="SHA-256 hash does not start with f37072fd") as err:
        load_classifier("resnet18")
    assert "corrupted or was tampered with" in str(err.value) and isinstance(err.value, ValueError)
    assert server.requests == [f"/models/{RESNET18}"]
    assert _files(torch_home) == []  # neither the file, nor a partial one, nor the folders made for it
    # a file the user names is not hash checked: it is the user's own
    path = torch_home.parent / "mine.pth"
    path.write_bytes(server.files[RESNET18])
    assert load_classifier("resnet18", weights=path).name == "resnet18"


def test_offline_sends_no_request_and_says_which_file_to_put_where(server, torch_home, monkeypatch):
    monkeypatch.setenv("SEMKIT_WEIGHTS_URL", server.url)
    monkeypatch.setenv("SEMKIT_OFFLINE", "1")
    target = torch_home / "hub" / "checkpoints" / RESNET18
    with pytest.raises(FileNotFoundError, match="offline \\(SEMKIT_OFFLINE=1\\)") as err:
        load_classifier("resnet18")
    assert f"{RESNET18} (from {server.url}/{RESNET18}) at {target}" in str(err.value)
    monkeypatch.delenv("SEMKIT_OFFLINE")
    with pytest.raises(FileNotFoundError, match="offline \\(download=False\\)"):
        load_classifier("resnet18", download=False)
    assert server.requests == [] and _files(torch_home) == []
    # the file put where the message says is used, still without a request
    target.parent.mkdir(parents=True)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), target)
    assert load_classifier("resnet18", download=False).name == "resnet18"
    assert server.requests == []


def test_a_mirror_without_the_file_gets_a_clear_error(server, torch_home, monkeypatch):
    monkeypatch.setenv("SEMKIT_WEIGHTS_URL", server.url)
    with pytest.raises(ConnectionError, match=f"cannot download {server.url}/{RESNET18} \\(Not Found\\)") as err:
        load_classifier("resnet18")
    assert "SEMKIT_WEIGHTS_URL" in str(err.value) and str(torch_home) in str(err.value)
    assert server.requests == [f"/models/{RESNET18}"] and _files(torch_home) == []
