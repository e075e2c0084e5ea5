"""The checksums Zenodo publishes for the files it hosts (md5, in its records API), read with pooch's
ZenodoRepository before the first byte, so a download from Zenodo is checked against the publisher's own even where
the dataset's authors give none. A file is Zenodo's when its URL reads .../records/ID/files/NAME; the API's address
is pooch's (ZenodoRepository.base_api_url). An API that does not answer leaves the files unchecked, said in
SOURCE.json: their own sha256 is still recorded."""

from __future__ import annotations

import re
from types import SimpleNamespace

import requests
from pooch.downloaders import ZenodoRepository

ZENODO_FILE = re.compile(r"https?://[^/]+/records?/(\d+)/files/([^?/]+)")


def zenodo_checksums(urls: list[str], timeout_s: float) -> dict[str, str]:
    """{url: "md5:..."} for the URLs naming a Zenodo record's file whose checksum its API gives."""
    wanted: dict[str, dict[str, str]] = {}
    for url in urls:
        found = ZENODO_FILE.match(url)
        if found:
            wanted.setdefault(found[1], {})[found[2]] = url
    checksums: dict[str, str] = {}
    for record, names in wanted.items():
        repository = ZenodoRepository(f"10.5281/zenodo.{record}", f"https://zenodo.org/records/{record}",
                                      timeout=timeout_s)
        listed = SimpleNamespace(registry={})
        try:
            repository.populate_registry(listed)
        except (requests.RequestException, ValueError, KeyError, TypeError):
            continue  # unreachable or not a record: the download says so itself, or goes on unchecked
        checksums.update({url: listed.registry[name] for name, url in names.items() if name in listed.registry})
    return checksums
