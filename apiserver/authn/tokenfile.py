"""`--token-auth-file`: static bearer tokens from a CSV file, as upstream's tokenfile authenticator:
`token,user,uid[,"group1,group2"]` per line (further columns ignored)."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from pathlib import Path

from apiserver.authn.bearer import TokenResult
from apiserver.context import UserInfo

__all__ = ["TokenFile", "TokenFileError"]

log = logging.getLogger("apiserver.authn")


class TokenFileError(ValueError):
    """The token file cannot be used (the apiserver refuses to start)."""


class TokenFile:
    """The tokens of one file, read once at start."""

    def __init__(self, tokens: dict[str, UserInfo], api_audiences: Sequence[str] = ()) -> None:
        self.tokens = tokens
        self.api_audiences = tuple(api_audiences)

    @classmethod
    def parse(cls, text: str, source: str = "token file", api_audiences: Sequence[str] = ()) -> TokenFile:
        """Parse the CSV; TokenFileError names the first bad line."""
        tokens: dict[str, UserInfo] = {}
        for number, record in enumerate(csv.reader(io.StringIO(text)), start=1):
            if not record or (len(record) == 1 and not record[0].strip()):
                continue
            if len(record) < 3:
                raise TokenFileError(
                    f"token file '{source}' must have at least 3 columns (token, user name, uid), "
                    f"found {len(record)} on line {number}"
                )
            token, name, uid = (c.strip() for c in record[:3])
            if not token:
                log.warning("empty token has been found in token file '%s', line %d", source, number)
                continue
            groups = tuple(g.strip() for g in record[3].split(",") if g.strip()) if len(record) > 3 else ()
            if token in tokens:
                log.warning("duplicate token has been found in token file '%s', line %d", source, number)
            tokens[token] = UserInfo(name=name, uid=uid, groups=groups)
        return cls(tokens, api_audiences)

    @classmethod
    def load(cls, path: str | Path, api_audiences: Sequence[str] = ()) -> TokenFile:
        """Read and parse the file."""
        try:
            text = Path(path).read_text()
        except OSError as e:
            raise TokenFileError(f"reading token file {path}: {e.strerror}") from e
        return cls.parse(text, str(path), api_audiences)

    async def authenticate_token(self, token: str, audiences: Sequence[str]) -> TokenResult | None:
        """The token's user (audience-agnostic: valid for the API's own audiences only)."""
        user = self.tokens.get(token)
        if user is None:
            return None
        if audiences:
            valid = tuple(a for a in audiences if a in self.api_audiences)
            if not valid:
                return None
            return TokenResult(user, valid)
        return TokenResult(user, self.api_audiences)
