"""Vision-language networks (open_clip) as zero-shot classifiers behind the [`Classifier`][semkit.Classifier] interface.

``load_classifier("open_clip/ViT-B-32", weights="laion2b_s34b_b79k")``:
the image tower, and one text embedding per class, the mean of the
class's prompts (class name in each template; by default open_clip's
ImageNet classes and the 80 OpenAI ImageNet templates) encoded once and
kept in ``$SEMKIT_CACHE``. A render's logits are the model's logit scale
times the cosine of its image embedding with each class's, so its
probabilities are over ImageNet-1k (every gallery and ShapeNet label keeps
working) or over the ``labels`` given. Images are resized to the tower's
input size and normalized with its mean and std, without cropping.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from .classifier import Classifier
from .engine import cache_dir, write_atomically
from .labels import check_labels, imagenet_labels
from .weights import RANDOM, hub_cache, hub_cached_file, looks_like_path, offline_reason, untrained

#: load_classifier's prefix for open_clip's networks: "open_clip/<name>" (open_clip.list_models() lists them).
OPEN_CLIP_PREFIX = "open_clip/"

_HF_FILE = "open_clip_pytorch_model.bin"


class ZeroShot(nn.Module):
    """An image tower and fixed class embeddings: logits = scale x cosine(image embedding, class embedding) + bias.

    Parameters
    ----------
    visual : torch.nn.Module
        The image tower, mapping preprocessed images to embeddings.
    classes : torch.Tensor [classes, D]
        One unit embedding per class (of its prompts' texts).
    scale : float
        The logit scale (the CLIP model's exp(logit_scale)).
    bias : float, default 0.0
        The logit bias (SigLIP models have one).
    """

    def __init__(self, visual: nn.Module, classes: torch.Tensor, scale: float, bias: float = 0.0) -> None:
        super().__init__()
        self.visual = visual
        self.register_buffer("classes", classes.detach().float())
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.register_buffer("bias", torch.tensor(float(bias)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [B, classes] of preprocessed images.

        Parameters
        ----------
        x : torch.Tensor [B, 3, H, W]
            Images as the image tower expects them.
        """
        features = self.visual(x)
        if isinstance(features, (tuple, list)):  # towers that also return tokens
            features = features[0]
        features = features / features.norm(dim=-1, keepdim=True)
        return self.scale * features @ self.classes.T + self.bias


def load_open_clip(
    name: str,
    weights: str | os.PathLike | None,
    labels: Sequence[str] | None,
    templates: Sequence[str | Callable[[str], str]] | None,
    download: bool,
    progress: bool,
) -> Classifier:
    """A zero-shot classifier of open_clip's architecture ``name`` (see [`semkit.classify.load_classifier`][semkit.classify.load_classifier])."""
    try:
        import open_clip
    except ImportError:
        raise ImportError(f"{OPEN_CLIP_PREFIX}{name} needs open_clip: pip install 'semkit[clip]' "
                          "(or pip install open_clip_torch)") from None
    what = f"{OPEN_CLIP_PREFIX}{name}"
    classes = list(check_labels(labels)) if labels is not None else list(open_clip.IMAGENET_CLASSNAMES)
    if name not in open_clip.list_models():
        import difflib

        close = difflib.get_close_matches(name, open_clip.list_models(), n=5, cutoff=0.5)
        hint = f" Did you mean {[OPEN_CLIP_PREFIX + c for c in close]}?" if close else ""
        raise ValueError(f"unknown open_clip network {name!r} (open_clip.list_models() lists them).{hint}")
    model, cfg, weights_id = _build(open_clip, name, weights, download, what)
    model.eval()
    prompts = _templates(templates, open_clip)
    embeddings = _class_embeddings(open_clip, name, model, weights_id, classes, prompts, progress)
    bias = float(model.logit_bias.detach()) if getattr(model, "logit_bias", None) is not None else 0.0
    head = ZeroShot(model.visual, embeddings, float(model.logit_scale.detach().exp()), bias)
    preprocess = open_clip.get_model_preprocess_cfg(model)
    size = preprocess.get("size", model.visual.image_size)
    size = size if isinstance(size, int) else size[0]
    mean, std = cfg.get("mean", preprocess["mean"]), cfg.get("std", preprocess["std"])
    return Classifier(head, input_size=int(size), name=what, mean=tuple(mean), std=tuple(std),
                      labels=tuple(classes) if labels is not None else imagenet_labels(),
                      weights=None if weights is None else str(weights))


def _build(open_clip, name: str, weights: str | os.PathLike | None, download: bool, what: str) -> tuple[nn.Module, dict, str]:
    """(model, its pretrained cfg, an id of the weights for the prompt cache)."""
    tags = open_clip.list_pretrained_tags_by_model(name)
    if weights == RANDOM:
        return untrained(lambda: open_clip.create_model(name, pretrained=None)), {}, RANDOM
    if weights is not None and (not isinstance(weights, str) or looks_like_path(weights)):
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"weights file for {what} not found: {path}")
        stat = path.stat()
        return _create(open_clip, name, path, {}, what), {}, f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    if weights is None:
        if not tags:
            raise ValueError(f"open_clip has no pretrained weights for {what}: pass weights='/path/to/file' or 'random'")
        weights = tags[0]
    cfg = open_clip.get_pretrained_cfg(name, weights)
    if not cfg:
        raise ValueError(f"{what} has no weights {weights!r}; available: {tags} (or 'random', or a file)")
    return _create(open_clip, name, _hub_file(cfg, what, weights, download), cfg, what), cfg, f"{name}:{weights}"


def _create(open_clip, name: str, path: Path, cfg: dict, what: str) -> nn.Module:
    """open_clip's model with the weights of a file (read with weights_only=True)."""
    try:
        return open_clip.create_model(name, pretrained=str(path), force_quick_gelu=bool(cfg.get("quick_gelu", False)))
    except (RuntimeError, KeyError, ValueError) as e:
        raise ValueError(f"the weights in {path} do not fit {what}: {str(e).splitlines()[0]}") from None


def _hub_file(cfg: dict, what: str, tag: str, download: bool) -> Path:
    """The weight file of a pretrained tag from the Hugging Face hub cache, downloaded when missing and allowed."""
    hub = cfg.get("hf_hub", "")
    if not hub:
        raise ValueError(f"{what} ({tag}) has no weights on the Hugging Face hub; pass weights='/path/to/file'")
    repo, filename = os.path.split(hub)  # "org/name/" (the default file) or "org/name/file"
    filename = filename or _HF_FILE
    files = (str(Path(filename).with_suffix(".safetensors")).replace("pytorch_model", "model"), filename)
    path = hub_cached_file(repo, files)
    if path is not None:
        return path
    reason = offline_reason(download, hub=True)
    if reason is not None:
        raise FileNotFoundError(
            f"offline ({reason}): the weights of {what} ({tag}, {repo}) are not in the Hugging Face hub cache "
            f"{hub_cache()} and semkit sends no request. Run it once online, or `hf download {repo} {files[-1]}` where "
            f"there is internet and copy that cache here, or pass weights='/path/to/{files[-1]}'."
        )
    from open_clip.pretrained import download_pretrained_from_hf

    try:
        return Path(download_pretrained_from_hf(repo, filename=filename))
    except (OSError, FileNotFoundError) as e:
        raise ConnectionError(f"cannot get the weights of {what} ({tag}) from the Hugging Face hub ({e}); pass "
                              f"weights='/path/to/file' or fill the hub cache {hub_cache()}") from e


def _templates(templates: Sequence[str | Callable[[str], str]] | None, open_clip) -> tuple[str, ...]:
    """Prompt templates as format strings with one ``{}`` for the class name (callables are turned into them)."""
    given = open_clip.OPENAI_IMAGENET_TEMPLATES if templates is None else templates
    if isinstance(given, str):
        given = [given]
    out = tuple(t("{}") if callable(t) else t for t in given)
    if not out or not all(isinstance(t, str) and t.count("{}") == 1 for t in out):
        raise ValueError(f"templates must be strings with one '{{}}' for the class name (or callables), got {templates!r}")
    return out


def _class_embeddings(open_clip, name: str, model: nn.Module, weights_id: str, classes: list[str],
                      templates: tuple[str, ...], progress: bool) -> torch.Tensor:
    """Unit text embeddings [classes, dim], the normalized mean over each class's prompts; kept in the cache."""
    key = hashlib.sha1(json.dumps([name, weights_id, classes, templates, open_clip.__version__]).encode()).hexdigest()
    folder = cache_dir()
    path = folder / "clip" / f"{key}.pt" if folder is not None else None
    if path is not None and path.is_file():
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # an unreadable cache file is computed again and replaced
            pass
    tokenizer = open_clip.get_tokenizer(name)
    prompts = [t.format(c) for c in classes for t in templates]
    batches = range(0, len(prompts), 256)
    if progress and len(batches) > 1:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc=f"{name} class prompts (once; cached)", unit="batch")
    with torch.no_grad():
        features = torch.cat([encode_text(model, tokenizer(prompts[i:i + 256])) for i in batches])
    features = features / features.norm(dim=-1, keepdim=True)
    classes_embedded = features.view(len(classes), len(templates), -1).mean(dim=1)
    classes_embedded = classes_embedded / classes_embedded.norm(dim=-1, keepdim=True)
    if path is not None:
        buffer = io.BytesIO()
        torch.save(classes_embedded, buffer)
        write_atomically(path, buffer.getvalue())
    return classes_embedded


def encode_text(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """The model's text embeddings of ``tokens``, with the padding after the longest prompt dropped where that is exact.

    In open_clip's CLIP text tower attention is causal and the embedding is
    read at the end-of-text token, so positions after the last token of
    every prompt never reach it: they are cut (a 77-token context holds
    prompts of about 15), several times faster. Other towers run whole.
    """
    if type(model).__name__ != "CLIP" or getattr(model, "attn_mask", None) is None or model.text_pool_type != "argmax":
        return model.encode_text(tokens)
    length = int((tokens != 0).int().cumsum(dim=1).argmax(dim=1).max()) + 1  # the last non-padding position, + 1
    tokens = tokens[:, :length]
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast) + model.positional_embedding[:length].to(cast)
    x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask[:length, :length]))
    x = x[torch.arange(len(x)), tokens.argmax(dim=-1)]
    projection = model.text_projection
    if projection is None:
        return x
    return projection(x) if isinstance(projection, nn.Linear) else x @ projection
