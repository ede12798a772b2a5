"""The CycloneDX 1.6 JSON SBOM of a built environment, from its manifest (portable_env.manifest).

It lists the manifest's packages as pkg:conda/NAME@VERSION?build=..&channel=..&subdir=..
components, and the PyPI packages as pkg:pypi/NAME@VERSION components, with their hashes,
licenses, download URLs and dependencies (cyclonedx-python-lib). Each build checks it in
milliseconds (check_sbom); the full strict schema validation (validate_strict) takes seconds of
imports and is the tests' and `write-manifest --validate`'s.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from portable_env.errors import UserError
from portable_env.settings import PYPI_PREFIX


def purl_of(pkg: dict[str, Any]) -> Any:
    """The package URL (pkg:conda/...) of a manifest package."""
    from packageurl import PackageURL

    qualifiers = {"build": pkg["build"], "channel": pkg["channel"], "subdir": pkg["subdir"]}
    if pkg["filename"].endswith(".conda"):
        qualifiers["type"] = "conda"
    elif pkg["filename"].endswith(".tar.bz2"):
        qualifiers["type"] = "tar.bz2"
    return PackageURL(
        type="conda", name=pkg["name"], version=pkg["version"], qualifiers={k: v for k, v in qualifiers.items() if v}
    )


def xs_uri(url: str, package: str) -> Any:
    """A download URL as the SBOM records it: its URI form (RFC 3987 3.1:
    non-ASCII characters percent-encoded as UTF-8), then cyclonedx's XsUri."""
    from cyclonedx.exception.model import InvalidUriException
    from cyclonedx.model import XsUri

    try:
        return XsUri("".join(c if c.isascii() else quote(c, safe="") for c in url))
    except InvalidUriException as exc:
        raise UserError(
            f"package {package}: its URL {url!r} is not a URI ({exc}); fix the channel URL and re-lock"
        ) from None


def sbom_json(manifest: dict[str, Any]) -> str:
    """The CycloneDX 1.6 JSON SBOM of the manifest's packages, validated."""
    from cyclonedx.contrib.license.factories import LicenseFactory
    from cyclonedx.model import ExternalReference, ExternalReferenceType, HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.tool import ToolRepository
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    licenses = LicenseFactory()
    target = manifest["target"]
    root_props = [
        Property(name="portable-env:platform", value=manifest["platform"]),
        Property(name="portable-env:python", value=manifest["python"]),
        Property(name="portable-env:target-os", value=target["os"]),
        Property(name="portable-env:target-arch", value=target["arch"]),
    ]
    if target.get("min_glibc"):
        root_props.append(Property(name="portable-env:min-glibc", value=target["min_glibc"]))
    for key in ("glibc", "cpu", "cuda"):
        if target.get(key):
            root_props.append(Property(name=f"portable-env:target-{key}", value=str(target[key])))
    root_hashes = []
    if manifest.get("tarball"):
        root_hashes.append(HashType(alg=HashAlgorithm.SHA_256, content=manifest["tarball"]["sha256"]))
        root_props.append(Property(name="portable-env:tarball", value=manifest["tarball"]["name"]))
    root = Component(
        type=ComponentType.APPLICATION,
        name=manifest["project"],
        bom_ref=f"portable-env:{manifest['project']}",
        hashes=root_hashes,
        properties=root_props,
    )

    components = {}
    for pkg in manifest["packages"]:
        purl = purl_of(pkg)
        hashes = [HashType(alg=HashAlgorithm.SHA_256, content=pkg["sha256"])] if pkg["sha256"] else []
        if pkg["md5"]:
            hashes.append(HashType(alg=HashAlgorithm.MD5, content=pkg["md5"]))
        refs = []
        if pkg["url"]:
            refs.append(ExternalReference(type=ExternalReferenceType.DISTRIBUTION, url=xs_uri(pkg["url"], pkg["name"])))
        components[pkg["name"]] = Component(
            type=ComponentType.LIBRARY,
            name=pkg["name"],
            version=pkg["version"],
            purl=purl,
            bom_ref=purl.to_string(),
            hashes=hashes,
            external_references=refs,
            licenses=[licenses.make_from_string(pkg["license"])] if pkg["license"] else [],
            properties=[
                Property(name="conda:build", value=pkg["build"]),
                Property(name="conda:channel", value=pkg["channel"]),
                Property(name="conda:subdir", value=pkg["subdir"]),
            ],
        )

    for pkg in manifest.get("pypi_packages") or []:
        purl = PackageURL(type="pypi", name=pkg["name"], version=pkg["version"])
        components[f"{PYPI_PREFIX}{pkg['name']}"] = Component(
            type=ComponentType.LIBRARY,
            name=pkg["name"],
            version=pkg["version"],
            purl=purl,
            bom_ref=purl.to_string(),
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=pkg["sha256"])],
            external_references=[
                ExternalReference(type=ExternalReferenceType.DISTRIBUTION, url=xs_uri(pkg["url"], pkg["name"]))
            ],
            licenses=[licenses.make_from_string(pkg["license"])] if pkg["license"] else [],
            properties=[Property(name="pypi:filename", value=pkg["filename"])],
        )

    tools = [
        Component(type=ComponentType.APPLICATION, name=name, version=version)
        for name, version in manifest["tools"].items()
    ]
    stamp = datetime.strptime(manifest["timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
    bom = Bom(
        serial_number=uuid.uuid5(uuid.NAMESPACE_URL, f"urn:portable-env:{digest}"),
        metadata=BomMetaData(component=root, timestamp=stamp, tools=ToolRepository(components=tools)),
        components=components.values(),
    )
    direct = {i["package"] for i in manifest["imports"] if i["installed"]} | {"python"}
    bom.register_dependency(root, [components[name] for name in sorted(direct) if name in components])
    for pkg in manifest["packages"]:
        needed = {dep.split(None, 1)[0] for dep in pkg["depends"]}
        bom.register_dependency(
            components[pkg["name"]], [components[name] for name in sorted(needed) if name in components]
        )
    text = JsonV1Dot6(bom).output_as_string(indent=2)
    check_sbom(text)
    return text + "\n"


# The hex length of each hash we record (the schema's hash-content pattern allows 32, 40, 64, 96 or 128
# hex digits; ours must be their algorithm's).
HASH_HEX = {"SHA-256": 64, "MD5": 32}
HEX = re.compile(r"[0-9a-fA-F]+")


def check_sbom(text: str) -> None:
    """The build's check of an SBOM it made (milliseconds, no JSON-schema
    import): cyclonedx-python-lib reads it back (Bom.from_json) and writes
    the same bytes again, so every field is one its CycloneDX 1.6 model
    knows, with values of its types and dependencies on known components
    (Bom.validate); every URL is an RFC 3986 URI reference (rfc3986-validator,
    stricter than the schema's iri-reference format); every hash has the
    schema's hex length. The full strict schema validation (validate_strict,
    `write-manifest --validate`, seconds) is the tests' (tests/test_manifest.py)."""
    from cyclonedx.model.bom import Bom
    from cyclonedx.output.json import JsonV1Dot6

    data = json.loads(text)
    again = JsonV1Dot6(Bom.from_json(data=data)).output_as_string(indent=2)  # type: ignore[attr-defined]
    if again != text:
        line = next(
            (
                f"{a.strip()!r} read back as {b.strip()!r}"
                for a, b in zip(text.splitlines(), again.splitlines(), strict=False)
                if a != b
            ),
            "its length differs",
        )
        raise UserError(
            f"the SBOM does not read back as CycloneDX 1.6 unchanged ({line}); this is a bug in write-manifest"
        )
    bad = []
    for component in [(data.get("metadata") or {}).get("component") or {}, *(data.get("components") or [])]:
        name = component.get("bom-ref") or component.get("name")
        for ref in component.get("externalReferences") or []:
            if not is_uri_reference(ref["url"]):
                bad.append(f"  {name}: URL {ref['url']!r} is not an RFC 3986 URI reference")
        for h in component.get("hashes") or []:
            want = HASH_HEX.get(h["alg"])
            if want is not None and (len(h["content"]) != want or not HEX.fullmatch(h["content"])):
                bad.append(f"  {name}: {h['alg']} {h['content']!r} is not {want} hex digits")
    if bad:
        raise UserError(
            "the SBOM would not be valid CycloneDX 1.6:\n"
            + "\n".join(bad)
            + "\n  fix the package records (conda-meta/, the lock) or the channel URL, then rebuild: make pack"
        )


def is_uri_reference(url: str) -> bool:
    """url is an RFC 3986 URI reference (rfc3986-validator; its pattern ends
    in `$`, so a match must also end at the end of url)."""
    from rfc3986_validator import validate_rfc3986

    found = validate_rfc3986(url, rule="URI_reference")
    return found is not None and found.end() == len(url)


def validate_strict(path: Path) -> None:
    """Validate an SBOM file with cyclonedx-python-lib's JsonStrictValidator
    (the whole CycloneDX 1.6 JSON schema with its formats; importing it
    takes seconds: rfc3987-syntax builds its IRI parsers)."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc}); write it with scripts/write-manifest --out-sbom") from None
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise UserError(f"{path} is not valid CycloneDX 1.6 (strict JSON schema): {error}")
