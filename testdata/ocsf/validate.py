#!/usr/bin/env python3
"""Validates OCSF events strictly against the published OCSF schema.

Usage: validate.py VERSION [FILE]   (FILE, or stdin: a JSON array or JSON Lines)

Each event is checked against the JSON Schema (draft 2020-12) that the PyPI package
`ocsf-json-schema` (MIT) generates from its packaged export of the OCSF schema
(Apache-2.0, https://schema.ocsf.io) for the event's class (`class_uid`) and the
profiles it declares (`metadata.profiles`). Unknown attributes are errors there.
On top, every enum attribute with a sibling (`severity_id`/`severity`,
`status_id`/`status`, `activity_id`/`activity_name`, ...) must carry the caption the
schema gives its value, and `type_uid` must be `class_uid * 100 + activity_id`.

Prints one line per error (`event N: path: message`) and exits 1 if there is any,
0 otherwise; exits 2 when the packages are missing (run
scripts/install-test-deps.sh).
"""
import json
import sys

try:
    from jsonschema import Draft202012Validator
    from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema
except ImportError as e:  # pragma: no cover - the set-up script installs both
    print(f"missing Python package ({e}); run scripts/install-test-deps.sh", file=sys.stderr)
    sys.exit(2)


def events(text):
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def sibling_errors(export, attrs, value, path, out):
    """Walks `value` (an object) with the attribute definitions `attrs`."""
    for key, v in value.items():
        a = attrs.get(key)
        if a is None:
            continue  # the JSON Schema reports unknown attributes
        enum, sib = a.get("enum"), a.get("sibling")
        if enum and sib and sib in value and isinstance(v, int) and v != 99:
            want = enum.get(str(v), {}).get("caption")
            if want is not None and value[sib] != want:
                out.append(f"{path}{sib}: {value[sib]!r} is not the caption of {key}={v} ({want!r})")
        obj = a.get("object_type")
        if obj and obj in export["objects"]:
            sub = export["objects"][obj]["attributes"]
            items = v if isinstance(v, list) else [v]
            for i, item in enumerate(items):
                if isinstance(item, dict):
                    p = f"{path}{key}[{i}]." if isinstance(v, list) else f"{path}{key}."
                    sibling_errors(export, sub, item, p, out)


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    version = sys.argv[1]
    text = open(sys.argv[2], encoding="utf-8").read() if len(sys.argv) == 3 else sys.stdin.read()
    export = get_ocsf_schema(version=version)
    gen = OcsfJsonSchemaEmbedded(export)
    by_uid = {c["uid"]: name for name, c in export["classes"].items()}
    validators = {}
    errors = []
    evs = events(text)
    for n, ev in enumerate(evs):
        uid = ev.get("class_uid")
        name = by_uid.get(uid)
        if name is None:
            errors.append(f"event {n}: class_uid {uid!r} is not an OCSF {version} class")
            continue
        if ev.get("metadata", {}).get("version") != version:
            errors.append(f"event {n}: metadata.version is {ev.get('metadata', {}).get('version')!r}, not {version}")
        profiles = tuple(sorted(ev.get("metadata", {}).get("profiles", [])))
        key = (name, profiles)
        if key not in validators:
            schema = gen.get_class_schema(class_name=name, profiles=list(profiles))
            validators[key] = Draft202012Validator(schema)
        for e in sorted(validators[key].iter_errors(ev), key=lambda e: list(e.absolute_path)):
            path = "/".join(str(p) for p in e.absolute_path)
            errors.append(f"event {n}: /{path}: {e.message[:300]}")
        out = []
        sibling_errors(export, export["classes"][name]["attributes"], ev, "", out)
        errors.extend(f"event {n}: {m}" for m in out)
        if ev.get("type_uid") != uid * 100 + ev.get("activity_id", -1):
            errors.append(f"event {n}: type_uid {ev.get('type_uid')} is not class_uid * 100 + activity_id")
    for e in errors:
        print(e)
    print(f"{len(evs)} events, {len(errors)} errors", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
