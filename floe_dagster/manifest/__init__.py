"""Stage 1 of the flow: manifest.yaml -> a validated Manifest with positions -> a Plan."""

from floe_dagster.manifest.errors import ManifestError, Problem
from floe_dagster.manifest.loader import LoadedManifest, load_manifest
from floe_dagster.manifest.schema import Manifest, manifest_json_schema

__all__ = ["LoadedManifest", "Manifest", "ManifestError", "Problem", "load_manifest", "manifest_json_schema"]
