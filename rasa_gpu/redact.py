"""Logins are never shown: the one rule for masking them in every line that rasa-gpu prints, logs or records (build
output, error messages and their details, the run history). Nothing here prints."""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "****"
#: The user and password of a URL (scheme://USER:PASSWORD@host): everything between "://" and the last "@" before the
#: host's end. A token given as the user alone (https://TOKEN@host) is a secret too, so the whole userinfo goes.
_URL_LOGIN = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#]*@")
#: A secret shorter than this is not masked by value (it would blank out ordinary words); its URL form still is.
_SHORTEST = 3


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every URL's user and password, and every one of `secrets`, replaced by ****."""
    for secret in secrets:
        if len(secret) >= _SHORTEST:
            text = text.replace(secret, MASK)
    return _URL_LOGIN.sub(rf"\g<scheme>{MASK}@", text)
