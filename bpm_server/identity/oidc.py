"""OpenID Connect sign-in (Keycloak, Azure AD / Entra ID, Okta, Authing...) with Authlib.

The authorization code flow: the browser goes to the provider's authorization
endpoint with ``state`` and ``nonce``; the code it brings back is exchanged at the
token endpoint (client secret sent by HTTP basic auth); the id token is checked
against the provider's published keys (signature, issuer, audience, expiry by our
clock, nonce, at_hash) before anyone is signed in.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError as JoserfcError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from bpm_server.config import OidcSettings
from bpm_server.identity.sso import TIMEOUT_SECONDS, ExternalIdentity, SsoFailed

# Clock skew allowed between the provider and this server when checking exp/iat.
LEEWAY_SECONDS = 60


class OidcProvider:
    name = "oidc"
    uses_nonce = True

    def __init__(self, settings: OidcSettings) -> None:
        self.settings = settings
        self._metadata: dict[str, Any] | None = None
        self._keys: dict[str, Any] | None = None

    # ------------------------------------------------------------------ discovery, cached per process

    def metadata(self) -> dict[str, Any]:
        # Fetched on first use, not at start-up: the server starts while the provider is down.
        # Two threads may both fetch it once; either answer is the same document.
        if self._metadata is None:
            url = f"{self.settings.issuer}/.well-known/openid-configuration"
            data = self._get_json(url)
            if str(data.get("issuer", "")).rstrip("/") != self.settings.issuer:
                raise SsoFailed(f"the provider at {url} calls itself {data.get('issuer')!r}, "
                                f"not {self.settings.issuer!r}", code="oidc_discovery")
            self._metadata = data
        return self._metadata

    def _key_set(self, *, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            self._keys = self._get_json(self.metadata()["jwks_uri"])
        return KeySet.import_key_set(self._keys)  # type: ignore[arg-type]

    @staticmethod
    def _get_json(url: str) -> dict[str, Any]:
        try:
            response = requests.get(url, timeout=TIMEOUT_SECONDS)
            response.raise_for_status()
            return response.json()
        except (requests.RequestException, ValueError) as exc:
            raise SsoFailed(f"the identity provider could not be reached ({url}): {exc}",
                            code="sso_unreachable") from None

    def _client(self, redirect_uri: str) -> OAuth2Session:
        return OAuth2Session(self.settings.client_id, self.settings.client_secret, scope=self.settings.scopes,
                             redirect_uri=redirect_uri, token_endpoint_auth_method="client_secret_basic")

    # ------------------------------------------------------------------ the flow

    def authorization_url(self, *, redirect_uri: str, state: str, nonce: str) -> str:
        url, _ = self._client(redirect_uri).create_authorization_url(
            self.metadata()["authorization_endpoint"], state=state, nonce=nonce)
        return url

    def identity(self, *, code: str, redirect_uri: str, nonce: str, now: datetime) -> ExternalIdentity:
        client = self._client(redirect_uri)
        try:
            token = client.fetch_token(self.metadata()["token_endpoint"], code=code, timeout=TIMEOUT_SECONDS)
        except (AuthlibBaseError, requests.RequestException) as exc:
            # A replayed, expired or unknown code: the provider answers invalid_grant.
            raise SsoFailed(f"the identity provider refused the sign-in code: {exc}", code="oidc_code") from None
        if "id_token" not in token:
            raise SsoFailed("the identity provider sent no id token (is 'openid' among the scopes?)",
                            code="oidc_id_token")
        claims = self._claims(token, nonce=nonce, now=now)
        return self._identity_of(claims)

    def _claims(self, token: dict[str, Any], *, nonce: str, now: datetime) -> CodeIDToken:
        algorithms = self.metadata().get("id_token_signing_alg_values_supported") or ["RS256"]
        registry = JWSRegistry(algorithms=algorithms)
        try:
            try:
                decoded = jwt.decode(token["id_token"], self._key_set(), registry=registry)
            except JoserfcError:
                # The provider may have rotated its keys since we fetched them.
                decoded = jwt.decode(token["id_token"], self._key_set(refresh=True), registry=registry)
            claims = CodeIDToken(decoded.claims, decoded.header,
                                 {"iss": {"essential": True, "value": self.metadata()["issuer"]},
                                  "aud": {"essential": True, "value": self.settings.client_id}},
                                 {"nonce": nonce, "client_id": self.settings.client_id,
                                  "access_token": token.get("access_token")})
            claims.validate(now=int(now.timestamp()), leeway=LEEWAY_SECONDS)
        except (JoserfcError, ValueError) as exc:
            raise SsoFailed(f"the id token was refused: {exc}", code="oidc_id_token") from None
        return claims

    def _identity_of(self, claims: CodeIDToken) -> ExternalIdentity:
        subject = str(claims["sub"])
        email = claims.get("email")
        username = claims.get(self.settings.username_claim) or email or subject
        groups = claims.get(self.settings.groups_claim) or []
        if isinstance(groups, str):
            groups = [groups]
        return ExternalIdentity(provider=self.name, subject=subject, username=str(username),
                                display_name=str(claims.get("name") or username), email=email,
                                groups=tuple(str(g) for g in groups))
