"""What the instrumentor instruments, in opentelemetry-python-contrib's shape: either HTTP client, or botocore
(boto3's Bedrock Runtime calls), will do."""

_instruments_httpx = ("httpx >= 0.23.0",)
_instruments_httpx2 = ("httpx2 >= 2.0.0",)
_instruments_botocore = ("botocore >= 1.34",)

_instruments: tuple[str, ...] = ()
_instruments_any = (*_instruments_httpx, *_instruments_httpx2, *_instruments_botocore)

_supports_metrics = True
