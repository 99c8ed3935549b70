"""Validate a FHIR Bundle read from standard input against the FHIR R4 (4.0.1) models of
fhir.resources 6.4.0. Run by tests/test_fhir.py with the interpreter of .venv-fhir-r4.

Prints the FHIR version it checked against, then "valid", or the model's errors; exits 1 on errors.
The models refuse unknown elements, wrong types and missing required elements, and validate every
entry's resource as the class its resourceType names."""

import json
import sys

import fhir.resources
from fhir.resources.bundle import Bundle
from pydantic import ValidationError


def main() -> int:
    print(fhir.resources.__fhir_version__)
    try:
        Bundle.parse_obj(json.load(sys.stdin))
    except ValidationError as error:
        print(error)
        return 1
    print("valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
