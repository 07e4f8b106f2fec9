"""S3 endpoints may be given as minio-py's ``host:port`` or as an http(s) URL."""

import pytest

from steno.common.storage.s3 import parse_endpoint


@pytest.mark.parametrize(
    ("endpoint", "secure", "expected"),
    [
        ("minio:9000", False, ("minio:9000", False)),
        ("minio:9000", True, ("minio:9000", True)),
        ("http://minio:9000", True, ("minio:9000", False)),
        ("http://127.0.0.1:9000", False, ("127.0.0.1:9000", False)),
        ("https://s3.example.com", False, ("s3.example.com", True)),
        ("https://s3.example.com:8443", False, ("s3.example.com:8443", True)),
    ],
)
def test_parses_host_port_and_urls(endpoint: str, secure: bool, expected: tuple[str, bool]) -> None:
    """A URL's scheme decides ``secure``; a bare host:port keeps the configured flag."""
    assert parse_endpoint(endpoint, secure) == expected


@pytest.mark.parametrize("endpoint", ["ftp://minio:9000", "s3://bucket", "http://", "https://"])
def test_rejects_other_schemes_and_missing_hosts(endpoint: str) -> None:
    with pytest.raises(ValueError, match="host:port or an http"):
        parse_endpoint(endpoint, False)
