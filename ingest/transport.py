"""The HTTP seam: a request in; status, headers and body out, or a typed error.

Two implementations, interchangeable above this line:
    aiohttp  the design card's client: a browser User-Agent and nothing that pretends
             to be more (faked client hints would not pass Yahoo's TLS check anyway);
    curl     curl_cffi impersonating Chrome's TLS and HTTP/2 fingerprint, which is what
             Yahoo lets through since 2025 (yfinance and yahooquery moved to it).

Errors (everything a transport raises is one of these):
    TransportError          retryable network trouble
    ├── RequestTimeout      the hard deadline passed (connect, headers and body together)
    └── ConnectionFailed    refused, reset, closed mid-body, proxy failure, TLS failure
    ResponseTooLarge        the decoded body passed `max_bytes`: not retried (the same
                            answer would come again); read no further than the limit

The hard total deadline itself is enforced above the seam (`ingest.client`) with
`asyncio.timeout`, so a server that drips one byte a second is cut on both transports;
each transport is also given the same deadline as its own total timeout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from yarl import URL

TRANSPORTS = ("aiohttp", "curl")

BROWSER_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/146.0.0.0 Safari/537.36"
)
PLAIN_HEADERS = {
    "User-Agent": BROWSER_USER_AGENT,
    "Accept": "application/json,text/html;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.9",
}
# curl_cffi's Chrome profile; pinned so a curl_cffi upgrade cannot silently change it.
CURL_IMPERSONATE = "chrome146"


class TransportError(Exception):
    pass


class RequestTimeout(TransportError):
    pass


class ConnectionFailed(TransportError):
    pass


class ResponseTooLarge(Exception):
    """The answer's decoded body is larger than the transport's `max_bytes`."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(
            f"the answer is larger than {max_bytes / 2**20:g} MiB once decoded "
            "(a proxy, a captive portal or a wrong --base-url?); raise --max-response-mb "
            "if it is real"
        )


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        for key, value in self.headers.items():
            if key.lower() == "content-type":
                return value.lower()
        return ""


class Transport(Protocol):
    name: str

    async def get(self, url: str, params: Mapping[str, str], timeout: float) -> HttpResponse: ...

    async def close(self) -> None: ...


class AiohttpTransport:
    """One aiohttp ClientSession for the whole run."""

    name = "aiohttp"

    def __init__(self, concurrency: int, proxy: str | None, max_bytes: int) -> None:
        import aiohttp

        self._aiohttp = aiohttp
        self._proxy = proxy
        self._max_bytes = max_bytes
        self._session = aiohttp.ClientSession(
            headers=PLAIN_HEADERS,
            connector=aiohttp.TCPConnector(limit=max(concurrency, 1), ttl_dns_cache=300),
            trust_env=False,
        )
        # aiohttp silently re-sends a request once when a kept-alive connection was reset;
        # that hidden request would bypass our throttle and retry count, so switch it off
        # (private attribute, checked: our retry policy does the retrying).
        if hasattr(self._session, "_retry_connection"):
            self._session._retry_connection = False

    async def get(self, url: str, params: Mapping[str, str], timeout: float) -> HttpResponse:
        aiohttp = self._aiohttp
        try:
            async with self._session.get(
                # As sent: yarl would decode %26 (M&M.NS) back to a bare & in the path.
                URL(url, encoded=True),
                params=params,
                proxy=self._proxy,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=True,
            ) as resp:
                # Decoded (aiohttp inflates gzip as it reads), counted chunk by chunk.
                body = bytearray()
                async for chunk in resp.content.iter_chunked(1 << 16):
                    body += chunk
                    if len(body) > self._max_bytes:
                        raise ResponseTooLarge(self._max_bytes)
                return HttpResponse(resp.status, dict(resp.headers), bytes(body))
        except TimeoutError as exc:
            raise RequestTimeout(f"no complete answer within {timeout:g} s") from exc
        except aiohttp.ClientError as exc:
            raise ConnectionFailed(_short(exc)) from exc
        except OSError as exc:
            raise ConnectionFailed(_short(exc)) from exc

    async def close(self) -> None:
        await self._session.close()


class CurlTransport:
    """curl_cffi's AsyncSession with Chrome impersonation."""

    name = "curl"

    def __init__(self, concurrency: int, proxy: str | None, max_bytes: int) -> None:
        from curl_cffi import requests as curl_requests

        self._errors = curl_requests.errors
        self._max_bytes = max_bytes
        self._session = curl_requests.AsyncSession(
            impersonate=CURL_IMPERSONATE,
            max_clients=max(concurrency, 1),
            proxy=proxy,
            trust_env=False,
        )

    async def get(self, url: str, params: Mapping[str, str], timeout: float) -> HttpResponse:
        from curl_cffi.curl import CURL_WRITEFUNC_ERROR

        # curl hands the decoded body to this callback; past the limit it stops the transfer.
        body = bytearray()
        refused = []

        def collect(chunk: bytes) -> int:
            if len(body) + len(chunk) > self._max_bytes:
                refused.append(len(chunk))
                return CURL_WRITEFUNC_ERROR
            body.extend(chunk)
            return len(chunk)

        try:
            resp = await self._session.get(
                url, params=dict(params), timeout=timeout, content_callback=collect
            )
        except self._errors.RequestsError as exc:
            if refused:
                raise ResponseTooLarge(self._max_bytes) from exc
            code = getattr(exc, "code", None)
            if code == 28 or "timed out" in str(exc).lower():
                raise RequestTimeout(f"no complete answer within {timeout:g} s") from exc
            raise ConnectionFailed(_short(exc)) from exc
        except OSError as exc:
            raise ConnectionFailed(_short(exc)) from exc
        return HttpResponse(resp.status_code, dict(resp.headers), bytes(body))

    async def close(self) -> None:
        await self._session.close()


def make_transport(
    name: str, concurrency: int, proxy: str | None, max_bytes: int = 32 * 2**20
) -> Transport:
    if name == "aiohttp":
        return AiohttpTransport(concurrency, proxy, max_bytes)
    if name == "curl":
        return CurlTransport(concurrency, proxy, max_bytes)
    raise ValueError(f"unknown transport {name!r}")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__
