"""A renderer for the part of kustomize that deploy/k8s uses, because no kustomize binary installs here
(not from Debian, not from PyPI: the `kustomize` package there is an unrelated tool).

Supported, with kustomize's meaning: `resources` (files, and directories holding a kustomization),
`namespace`, `labels` (with `includeSelectors`), `images`, `replicas`, and `patches` given as `path`
to strategic-merge patches. Anything else in a kustomization is refused, so a manifest that starts
using more of kustomize fails here instead of being rendered wrong.

Strategic merge, as far as these manifests need it: maps merge key by key, lists of objects that all
carry a `name` merge item by item on it (containers, volumes), any other list is replaced.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Doc = dict[str, Any]
SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "replicas", "patches"}
# Where kustomize puts labels that are also selectors, per kind (its built-in commonLabels field specs,
# for the kinds used here).
SELECTOR_PATHS = {
    "Deployment": [("spec", "selector", "matchLabels"), ("spec", "template", "metadata", "labels")],
    "Service": [("spec", "selector")],
    "PodDisruptionBudget": [("spec", "selector", "matchLabels")],
}


class KustomizeError(ValueError):
    pass


def render(directory: Path) -> list[Doc]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - SUPPORTED
    if unknown:
        raise KustomizeError(f"{directory}: this renderer does not support {sorted(unknown)}")

    docs: list[Doc] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        docs.extend(render(path) if path.is_dir() else _load(path))

    for patch in kustomization.get("patches", []):
        if set(patch) != {"path"}:
            raise KustomizeError(f"{directory}: only `patches: - path: <file>` is supported")
        for change in _load(directory / patch["path"]):
            _merge(_find(docs, change), change)
    for label_set in kustomization.get("labels", []):
        for doc in docs:
            _labels(doc, label_set["pairs"], label_set.get("includeSelectors", False))
    for image in kustomization.get("images", []):
        for doc in docs:
            _image(doc, image)
    for replicas in kustomization.get("replicas", []):
        target = _find(docs, {"kind": "Deployment", "metadata": {"name": replicas["name"]}})
        target["spec"]["replicas"] = replicas["count"]
    if "namespace" in kustomization:
        for doc in docs:
            doc.setdefault("metadata", {})["namespace"] = kustomization["namespace"]
    return docs


def _load(path: Path) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _find(docs: list[Doc], like: Doc) -> Doc:
    name = like.get("metadata", {}).get("name")
    found = [d for d in docs if d["kind"] == like["kind"] and d["metadata"]["name"] == name]
    if len(found) != 1:
        raise KustomizeError(f"a patch names {like['kind']}/{name}, which the resources hold {len(found)} times")
    return found[0]


def _merge(base: Any, change: Any) -> Any:
    if isinstance(base, dict) and isinstance(change, dict):
        for key, value in change.items():
            base[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return base
    if isinstance(base, list) and isinstance(change, list) and _named(base) and _named(change):
        merged = {item["name"]: item for item in base}
        for item in change:
            merged[item["name"]] = _merge(merged[item["name"]], item) if item["name"] in merged else item
        return list(merged.values())
    return copy.deepcopy(change)


def _named(items: list) -> bool:
    return all(isinstance(item, dict) and "name" in item for item in items)


def _labels(doc: Doc, pairs: dict[str, str], selectors: bool) -> None:
    doc.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
    if not selectors:
        return
    for path in SELECTOR_PATHS.get(doc["kind"], []):
        node = doc
        for key in path:
            node = node.setdefault(key, {})
        node.update(pairs)


def _image(doc: Doc, image: dict[str, str]) -> None:
    pod = doc.get("spec", {}).get("template", {}).get("spec", {})
    for container in pod.get("containers", []) + pod.get("initContainers", []):
        reference = container["image"].split("@")[0]
        tagged = ":" in reference.rsplit("/", 1)[-1]
        repository, tag = reference.rsplit(":", 1) if tagged else (reference, "")
        if repository == image["name"]:
            tag = image.get("newTag", tag)
            container["image"] = image.get("newName", repository) + (f":{tag}" if tag else "")
