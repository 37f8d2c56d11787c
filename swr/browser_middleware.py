"""Django's and whitenoise's middleware of the browser's pages, left out of the registry's routes.

settings.MIDDLEWARE names these subclasses in place of the originals; on every other route (the admin, the
management API, static files) they are the originals.
"""

import whitenoise.middleware
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions

from swr.middleware import is_registry_route


class BrowserOnlyMixin:
    """A middleware of the browser's pages (the admin's pages and their static files) that the registry's routes
    (:func:`is_registry_route`) go around: their clients (docker, skopeo, oras) send no session or CSRF
    cookie, read no messages and load no static files, and their views authenticate the caller themselves
    (swr/api/registry/auth.py). Going around them saves a pushed layer's five requests about 2 ms of the
    server's CPU (docs/performance.md, eighth round).

    ``__call__`` is what is bypassed: none of these has hooks that Django calls around the view. Django's
    CSRF and X-Frame-Options middleware are not wrapped: `check --deploy` looks for them by name
    (security.W002, W003), and on the registry's CSRF-exempt answers they cost little."""

    def __call__(self, request):
        if is_registry_route(request.path_info):
            return self.get_response(request)
        return super().__call__(request)


class WhiteNoiseMiddleware(BrowserOnlyMixin, whitenoise.middleware.WhiteNoiseMiddleware):
    """whitenoise's static files, not looked up on the registry's routes."""


class SessionMiddleware(BrowserOnlyMixin, sessions.SessionMiddleware):
    """Django's sessions, left out of the registry's routes."""


class AuthenticationMiddleware(BrowserOnlyMixin, auth.AuthenticationMiddleware):
    """The session's user as ``request.user``, left out of the registry's routes, whose views set it."""


class MessageMiddleware(BrowserOnlyMixin, messages.MessageMiddleware):
    """Django's messages, left out of the registry's routes."""
