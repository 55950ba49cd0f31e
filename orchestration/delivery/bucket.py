"""Bucket drop: copy the files into the recipient's S3 prefix (any S3-compatible endpoint).

The endpoint comes from the recipient's config (`endpoint_url`, optional `region`);
credentials from the usual boto3 chain (AWS_ACCESS_KEY_ID, ...). A custom endpoint passes
orchestration/delivery/outbound.py at enqueue and again here, before every drop. Objects are named
`<prefix><run_id>/<file>`, so a resend overwrites the same keys with the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestration.delivery import outbound
from orchestration.delivery.errors import SendFailure


def split_address(address: str) -> tuple[str, str]:
    """s3://bucket/some/prefix -> ('bucket', 'some/prefix/')."""
    rest = address[len("s3://"):]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise SendFailure(f"no bucket in {address!r}", transient=False)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix


def drop(address: str, config: dict[str, Any], run_id: str, files: list[Path]) -> str:
    """Upload every file; returns the ETag of the last one (the channel's acknowledgement)."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    bucket, prefix = split_address(address)
    if config.get("endpoint_url"):
        try:
            outbound.check(config["endpoint_url"])
        except outbound.OutboundRefused as exc:
            raise SendFailure(str(exc), transient=False, refused=True) from exc
        except OSError as exc:
            raise SendFailure(f"S3 not reached: {config['endpoint_url']} does not resolve: {exc}", transient=True) from exc
    client = boto3.client("s3", endpoint_url=config.get("endpoint_url"), region_name=config.get("region") or "us-east-1",
                          config=Config(retries={"max_attempts": 1}, connect_timeout=10, read_timeout=60))
    etag = ""
    try:
        for path in files:
            with path.open("rb") as fh:
                answer = client.put_object(Bucket=bucket, Key=f"{prefix}{run_id}/{path.name}", Body=fh)
            etag = answer.get("ETag", "")
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        code = exc.response.get("Error", {}).get("Code", "")
        transient = status == 429 or status >= 500 or code in ("SlowDown", "Throttling", "RequestTimeout")
        raise SendFailure(f"S3 {status} {code}: {exc}", transient=transient, http_status=status or None) from exc
    except (EndpointConnectionError, BotoCoreError, OSError) as exc:
        raise SendFailure(f"S3 not reached: {exc}", transient=True) from exc
    return etag
