"""Checking exported Kubernetes manifests: strict schema validation (kubernetes-validate, offline)
and the rules a schema does not express, which the API server or the CronJob controller would
otherwise only report after ``kubectl apply``."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import available_timezones

import kubernetes_validate
import yaml

from bassi_schedd.core.cronexpr import CronError, compile_cron

# timeZone is stable since 1.27; check the oldest such schema bundled and the newest.
K8S_VERSIONS = ("1.27.0", "1.37.0")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_CONFIGMAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
# The CronJob controller's parser (robfig/cron, standard): numbers, *, ranges, lists, steps.
_CRON_PART = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?$")


def parse(text: str) -> list[dict[str, Any]]:
    """The documents of a multi-document YAML stream (safe loader)."""
    return [d for d in yaml.safe_load_all(text) if d is not None]


def schema_errors(doc: dict[str, Any]) -> list[str]:
    """Strict validation (unknown fields are errors) against every version in K8S_VERSIONS."""
    errors = []
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            errors.append(f"{doc['kind']} {doc['metadata']['name']} ({version}): {e.message}")
    return errors


def problems(docs: list[dict[str, Any]]) -> list[str]:
    """What the schemas do not catch: enum values, zone, cron syntax, names, deadlines, and the
    ConfigMap keys each CronJob's volume refers to."""
    out: list[str] = []
    maps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    for key in (k for m in maps.values() for k in m.get("data", {})):
        if not _CONFIGMAP_KEY.match(key) or len(key) > 253:
            out.append(f"ConfigMap key {key!r} is not valid")
    for doc in docs:
        meta = doc["metadata"]
        for k, v in meta.get("labels", {}).items():
            if len(v) > 63 or not _LABEL_VALUE.match(v):
                out.append(f"{meta['name']}: label {k}={v!r} is not a valid label value")
        if doc["kind"] == "CronJob":
            out += _cronjob_problems(doc, maps)
    return out


def _cronjob_problems(doc: dict[str, Any], maps: dict[str, Any]) -> list[str]:
    out = []
    name, spec = doc["metadata"]["name"], doc["spec"]
    if len(name) > 52 or not _DNS_LABEL.match(name):
        out.append(f"{name}: not a DNS label of at most 52 characters")
    if spec["concurrencyPolicy"] not in ("Allow", "Forbid", "Replace"):
        out.append(f"{name}: concurrencyPolicy {spec['concurrencyPolicy']!r}")
    if spec.get("timeZone") not in available_timezones():
        out.append(f"{name}: timeZone {spec.get('timeZone')!r} is not a tz database name")
    if spec.get("startingDeadlineSeconds", 10) < 10:
        out.append(f"{name}: startingDeadlineSeconds under 10 may never start a job")
    fields = spec["schedule"].split()
    if len(fields) != 5 or not all(_CRON_PART.match(p) for f in fields for p in f.split(",")):
        out.append(f"{name}: schedule {spec['schedule']!r} is not plain 5-field cron")
    try:
        compile_cron(spec["schedule"])
    except CronError as e:
        out.append(f"{name}: schedule {spec['schedule']!r}: {e}")
    job = spec["jobTemplate"]["spec"]
    if job["activeDeadlineSeconds"] < 1 or job["backoffLimit"] < 0:
        out.append(f"{name}: activeDeadlineSeconds/backoffLimit out of range")
    pod = job["template"]["spec"]
    if pod["restartPolicy"] not in ("Never", "OnFailure"):
        out.append(f"{name}: a Job's restartPolicy must be Never or OnFailure")
    volumes = {v["name"]: v for v in pod["volumes"]}
    for c in pod["containers"] + pod.get("initContainers", []):
        for m in c.get("volumeMounts", []):
            if m["name"] not in volumes:
                out.append(f"{name}: container {c['name']} mounts unknown volume {m['name']}")
    for v in volumes.values():
        cm = v.get("configMap")
        if cm is None:
            continue
        data = maps.get(cm["name"], {}).get("data", {})
        for item in cm.get("items", []):
            if item["key"] not in data:
                out.append(f"{name}: volume item {item['key']!r} is not in {cm['name']}")
            if item["path"].startswith("/") or ".." in item["path"].split("/"):
                out.append(f"{name}: volume item path {item['path']!r} is not allowed")
    return out
