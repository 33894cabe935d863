"""Sign-in with DingTalk (钉钉), WeCom (企业微信) or Feishu (飞书), each by its own
documented OAuth flow, behind the same interface as OpenID Connect (identity.sso).

- DingTalk: the browser to login.dingtalk.com/oauth2/auth, back with ``authCode``;
  POST api.dingtalk.com/v1.0/oauth2/userAccessToken (JSON, app key and secret) for
  the person's access token; GET /v1.0/contact/users/me with it
  (``x-acs-dingtalk-access-token``).
- WeCom: the browser to login.work.weixin.qq.com/wwlogin/sso/login (the corp's
  app), back with ``code``; GET qyapi.weixin.qq.com/cgi-bin/gettoken (corp id and
  app secret) for the app's token; /cgi-bin/auth/getuserinfo turns the code into
  the member's userid, /cgi-bin/user/get gives their name and department ids
  (the groups, for the mapping).
- Feishu: the browser to accounts.feishu.cn/open-apis/authen/v1/authorize, back
  with ``code``; POST open.feishu.cn/open-apis/authen/v2/oauth/token (standard
  OAuth fields as JSON) for the user access token; GET /open-apis/authen/v1/user_info.

None of them has an id token, so ``nonce`` is not used; ``state`` is checked by the view.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import requests

from bpm_server.config import WorkplaceAppSettings
from bpm_server.identity.sso import TIMEOUT_SECONDS, ExternalIdentity, SsoFailed

HOSTS = {
    "dingtalk_login": "https://login.dingtalk.com",
    "dingtalk_api": "https://api.dingtalk.com",
    "wecom_login": "https://login.work.weixin.qq.com",
    "wecom_api": "https://qyapi.weixin.qq.com",
    "feishu_login": "https://accounts.feishu.cn",
    "feishu_api": "https://open.feishu.cn",
}


class _WorkplaceApp:
    name = ""
    uses_nonce = False

    def authorization_url(self, *, redirect_uri: str, state: str, nonce: str) -> str:
        raise NotImplementedError

    def identity(self, *, code: str, redirect_uri: str, nonce: str, now: datetime) -> ExternalIdentity:
        raise NotImplementedError

    def __init__(self, settings: WorkplaceAppSettings) -> None:
        self.settings = settings

    def _url(self, host: str, path: str) -> str:
        base = self.settings.base_urls.get(host) or self.settings.base_urls.get("all") or HOSTS[host]
        return base.rstrip("/") + path

    def _call(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = requests.request(method, url, timeout=TIMEOUT_SECONDS, **kwargs)
            data = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise SsoFailed(f"{self.name} could not be reached ({url.split('?')[0]}): {exc}",
                            code="sso_unreachable") from None
        if not isinstance(data, dict):
            raise SsoFailed(f"{self.name} answered {url.split('?')[0]} with something that is not an object")
        if response.status_code >= 400:
            raise SsoFailed(f"{self.name} refused the sign-in ({response.status_code}): "
                            f"{data.get('message') or data.get('msg') or data.get('error_description') or data}")
        return data


class DingTalk(_WorkplaceApp):
    name = "dingtalk"

    def authorization_url(self, *, redirect_uri: str, state: str, nonce: str) -> str:
        query = {"redirect_uri": redirect_uri, "response_type": "code", "client_id": self.settings.client_id,
                 "scope": "openid", "state": state, "prompt": "consent"}
        return self._url("dingtalk_login", "/oauth2/auth?") + urlencode(query)

    def identity(self, *, code: str, redirect_uri: str, nonce: str, now: datetime) -> ExternalIdentity:
        token = self._call("POST", self._url("dingtalk_api", "/v1.0/oauth2/userAccessToken"),
                           json={"clientId": self.settings.client_id, "clientSecret": self.settings.client_secret,
                                 "code": code, "grantType": "authorization_code"})
        if not token.get("accessToken"):
            raise SsoFailed(f"DingTalk gave no access token: {token}")
        me = self._call("GET", self._url("dingtalk_api", "/v1.0/contact/users/me"),
                        headers={"x-acs-dingtalk-access-token": token["accessToken"]})
        subject = me.get("unionId") or me.get("openId")
        if not subject:
            raise SsoFailed("DingTalk did not say who signed in (no unionId)")
        email = me.get("email") or None
        return ExternalIdentity(provider=self.name, subject=str(subject),
                                username=email or f"dingtalk-{subject}", display_name=me.get("nick") or str(subject),
                                email=email)


class WeCom(_WorkplaceApp):
    name = "wecom"

    def authorization_url(self, *, redirect_uri: str, state: str, nonce: str) -> str:
        query = {"login_type": "CorpApp", "appid": self.settings.client_id, "agentid": self.settings.agent_id or "",
                 "redirect_uri": redirect_uri, "state": state}
        return self._url("wecom_login", "/wwlogin/sso/login?") + urlencode(query)

    def _checked(self, data: dict[str, Any], step: str) -> dict[str, Any]:
        # WeCom answers HTTP 200 with errcode != 0 for every failure.
        if data.get("errcode", 0) != 0:
            raise SsoFailed(f"WeCom refused {step}: {data.get('errcode')} {data.get('errmsg')}")
        return data

    def identity(self, *, code: str, redirect_uri: str, nonce: str, now: datetime) -> ExternalIdentity:
        app_token = self._checked(self._call("GET", self._url("wecom_api", "/cgi-bin/gettoken"), params={
            "corpid": self.settings.client_id, "corpsecret": self.settings.client_secret}), "the app's token")
        access = app_token["access_token"]
        who = self._checked(self._call("GET", self._url("wecom_api", "/cgi-bin/auth/getuserinfo"),
                                       params={"access_token": access, "code": code}), "the sign-in code")
        userid = who.get("userid") or who.get("UserId")
        if not userid:
            raise SsoFailed("the person who signed in is not a member of this WeCom corp", code="sso_not_member")
        member = self._checked(self._call("GET", self._url("wecom_api", "/cgi-bin/user/get"),
                                          params={"access_token": access, "userid": userid}), "the member's details")
        return ExternalIdentity(provider=self.name, subject=str(userid), username=str(userid),
                                display_name=member.get("name") or str(userid),
                                email=member.get("email") or member.get("biz_mail") or None,
                                groups=tuple(str(d) for d in member.get("department") or ()))


class Feishu(_WorkplaceApp):
    name = "feishu"

    def authorization_url(self, *, redirect_uri: str, state: str, nonce: str) -> str:
        query = {"client_id": self.settings.client_id, "redirect_uri": redirect_uri, "response_type": "code",
                 "state": state}
        return self._url("feishu_login", "/open-apis/authen/v1/authorize?") + urlencode(query)

    def identity(self, *, code: str, redirect_uri: str, nonce: str, now: datetime) -> ExternalIdentity:
        token = self._call("POST", self._url("feishu_api", "/open-apis/authen/v2/oauth/token"), json={
            "grant_type": "authorization_code", "client_id": self.settings.client_id,
            "client_secret": self.settings.client_secret, "code": code, "redirect_uri": redirect_uri})
        if token.get("code", 0) != 0 or not token.get("access_token"):
            raise SsoFailed(f"Feishu refused the sign-in code: {token.get('code')} "
                            f"{token.get('error_description') or token.get('msg')}")
        info = self._call("GET", self._url("feishu_api", "/open-apis/authen/v1/user_info"),
                          headers={"Authorization": f"Bearer {token['access_token']}"})
        if info.get("code", 0) != 0:
            raise SsoFailed(f"Feishu refused the user's details: {info.get('code')} {info.get('msg')}")
        data = info.get("data") or {}
        subject = data.get("union_id") or data.get("open_id")
        if not subject:
            raise SsoFailed("Feishu did not say who signed in (no union_id)")
        email = data.get("enterprise_email") or data.get("email") or None
        return ExternalIdentity(provider=self.name, subject=str(subject),
                                username=data.get("user_id") or email or f"feishu-{subject}",
                                display_name=data.get("name") or str(subject), email=email)


KINDS: dict[str, type[_WorkplaceApp]] = {"dingtalk": DingTalk, "wecom": WeCom, "feishu": Feishu}


def workplace_app(settings: WorkplaceAppSettings) -> _WorkplaceApp:
    if settings.kind not in KINDS:
        raise ValueError(f"unknown sign-in app {settings.kind!r}; known: {', '.join(KINDS)}")
    return KINDS[settings.kind](settings)
