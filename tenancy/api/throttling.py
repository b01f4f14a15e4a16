"""Throttles that key on what the server trusts and never take the API down (SPEC 9).

* The client's address comes from ``REST_FRAMEWORK["NUM_PROXIES"]`` trusted proxies
  (``NUM_PROXIES`` in the environment, default 0: ``REMOTE_ADDR``), never from an
  ``X-Forwarded-For`` the client wrote.
* Login throttles count failed attempts only, per username as authentication
  normalises it and per address: an office behind one address never locks itself out
  by logging in.
* The throttles live in the cache (Redis). With the cache unreachable they fail open
  with a logged warning: a request is never refused because its counter is lost.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache import cache as default_cache
from rest_framework import throttling
from rest_framework.request import Request

logger = logging.getLogger(__name__)

try:  # the cache's own errors, when the cache is Redis
    from redis.exceptions import RedisError

    CACHE_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError)
except ImportError:  # pragma: no cover - redis is a dependency
    CACHE_ERRORS = (OSError,)


def _fail_open(throttle: throttling.BaseThrottle, error: BaseException) -> bool:
    logger.warning(
        "Throttle %s skipped: the cache is unreachable (%s).", type(throttle).__name__, error
    )
    return True


class FailOpenMixin:
    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            return super().allow_request(request, view)  # type: ignore[misc]
        except CACHE_ERRORS as error:
            return _fail_open(self, error)  # type: ignore[arg-type]


#: DRF's parse of a rate's text (``"2000/minute"``: requests and seconds), by the text.
_PARSED_RATES: dict[str | None, tuple[Any, Any]] = {}


class CountingMixin:
    """A request counter per client and fixed window, where DRF keeps a list of every
    request's time in the window (a sliding log): DRF reads and writes back the whole
    list on each request (2,000 timestamps at the default user rate, pickled twice per
    request), and two concurrent requests each write their own list, one count lost.
    Here each request increments one integer in the cache (atomic in Redis and in the
    local memory cache). A window may admit up to twice the rate across its boundary,
    which suits a limit against runaway clients."""

    cache: Any
    duration: int
    num_requests: int
    rate: str | None
    timer: Any

    get_cache_key: Any  # DRF's throttle's, after this class in the MRO
    get_rate: Any
    parse_rate: Any

    def __init__(self) -> None:
        """DRF's ``SimpleRateThrottle.__init__``, the rate's text parsed once per text:
        DRF makes each throttle on every request and parsed its rate each time."""
        rate = getattr(self, "rate", None) or self.get_rate()
        self.rate = rate
        parsed = _PARSED_RATES.get(rate)
        if parsed is None:
            parsed = _PARSED_RATES[rate] = self.parse_rate(rate)
        self.num_requests, self.duration = parsed

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None:
            return True
        client = self.get_cache_key(request, view)
        if client is None:
            return True
        now = self.timer()
        window = int(now // self.duration)
        key = f"{client}:{window}"
        cache = self.cache
        if cache is default_cache:  # a proxy: each read looks the cache up again
            cache = caches[DEFAULT_CACHE_ALIAS]
        try:
            count = cache.incr(key)
        except ValueError:  # the window's first request
            count = 1 if cache.add(key, 1, self.duration + 1) else cache.incr(key)
        self.retry_after = (window + 1) * self.duration - now
        return bool(count <= self.num_requests)

    def wait(self) -> float | None:
        return getattr(self, "retry_after", None)


class AnonRateThrottle(FailOpenMixin, CountingMixin, throttling.AnonRateThrottle):
    pass


class UserRateThrottle(FailOpenMixin, CountingMixin, throttling.UserRateThrottle):
    pass


def normalise_username(raw: Any) -> str:
    """The username as login authenticates it: trimmed (the serializer's CharField),
    NFKC-normalised (``AbstractBaseUser.normalize_username``), case-folded."""
    return get_user_model().normalize_username(str(raw).strip()).lower()[:150]


class FailedLoginThrottle(throttling.SimpleRateThrottle):
    """Refuses once N failed logins are recorded in the window; a request only checks,
    the login view records a failure with ``record_failure``."""

    num_requests: int
    duration: int

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        try:
            self.history = self.cache.get(self.key, [])
        except CACHE_ERRORS as error:
            return _fail_open(self, error)
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        if len(self.history) >= self.num_requests:
            return self.throttle_failure()
        return True

    def record_failure(self, request: Request, view: Any) -> None:
        key = self.get_cache_key(request, view)
        if key is None or self.rate is None:
            return
        try:
            now = self.timer()
            history = [t for t in self.cache.get(key, []) if t > now - self.duration]
            self.cache.set(key, [now, *history], self.duration)
        except CACHE_ERRORS as error:
            _fail_open(self, error)


class LoginUserThrottle(FailedLoginThrottle):
    """At most N failed logins per minute for one username, from anywhere."""

    scope = "login_user"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        username = request.data.get("username") if isinstance(request.data, dict) else None
        if not username:
            return None
        # Hashed: what a client typed is never a cache key (spaces, any length, any script).
        ident = hashlib.sha256(normalise_username(username).encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}


class LoginIPThrottle(FailedLoginThrottle):
    """At most N failed logins per minute from one (trusted) address."""

    scope = "login_ip"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
