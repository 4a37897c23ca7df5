"""Render the Connect UI's small pages: a form, a result that tells the opener, an error."""

from __future__ import annotations

import json
from html import escape
from typing import Any
from urllib.parse import urlencode, urlsplit

from libs.common.contracts import connections as c

_STYLE = """
*{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;
background:#f5f6f8;color:#1d2330;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#fff;border-radius:12px;box-shadow:0 4px 24px #0001;padding:32px;width:min(420px,92vw)}
h1{font-size:20px;margin:0 0 8px}p{color:#4b5363;margin:0 0 16px}label{display:block;font-weight:600;
margin:12px 0 4px}input{width:100%;padding:10px 12px;border:1px solid #c9ced8;border-radius:8px;font:inherit}
button{margin-top:20px;width:100%;padding:11px;border:0;border-radius:8px;background:#3856e0;color:#fff;
font:inherit;font-weight:600;cursor:pointer}.error{background:#fdecec;color:#a21c1c;padding:10px 12px;
border-radius:8px;margin:0 0 12px}.ok{color:#177245}
"""


def page(title: str, body: str, status: int = 200, script: str = "") -> c.WebResponse:
    """Wrap ``body`` (already escaped HTML) in the Connect UI's page."""
    html = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main>{script}</body></html>"
    )
    return c.WebResponse(status=status, body=html)


def redirect(location: str) -> c.WebResponse:
    """Send the browser elsewhere."""
    return c.WebResponse(status=302, location=location, body="")


def form_page(
    integration_name: str, form: dict[str, Any], error: str | None = None
) -> c.WebResponse:
    """Render a form from the integration's JSON Schema of what the customer enters."""
    fields = []
    required = set(form.get("required", []))
    for name, spec in form.get("properties", {}).items():
        kind = (
            "password"
            if spec.get("format") == "password" or "key" in name.lower() or "secret" in name.lower()
            else "text"
        )
        label = escape(str(spec.get("title") or name))
        fields.append(
            f'<label for="f-{escape(name)}">{label}</label>'
            f'<input id="f-{escape(name)}" name="{escape(name)}" type="{kind}" autocomplete="off"'
            f"{' required' if name in required else ''}>"
        )
    problem = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    body = (
        f"<h1>Connect {escape(integration_name)}</h1><p>Enter your credentials. "
        "They are encrypted and only used to call the app for you.</p>"
        f'{problem}<form method="post">{"".join(fields)}<button type="submit">Connect</button></form>'
    )
    return page(f"Connect {integration_name}", body, status=422 if error else 200)


def _safe_json(value: Any) -> str:
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def result_page(
    *,
    ok: bool,
    message: str,
    connection_id: str | None = None,
    redirect_uri: str | None = None,
    opener_origin: str | None = None,
    error: str | None = None,
    status: int | None = None,
) -> c.WebResponse:
    """Tell the opener window (postMessage) and/or redirect to ``redirect_uri`` with the result.

    The message goes to ``opener_origin`` when the session named one, else to the origin of
    ``redirect_uri``, else (an older caller that named neither) to any opener.
    """
    result = {
        "type": "tether:connection",
        "status": "connected" if ok else "error",
        "connectionId": connection_id,
        **({"error": error} if error else {}),
        "message": message,  # the sentence the page shows; the opener may show it too
    }
    target = "*"
    location = None
    if redirect_uri:
        parts = urlsplit(redirect_uri)
        target = f"{parts.scheme}://{parts.netloc}"
        params = {k: v for k, v in result.items() if k not in ("type", "message") and v is not None}
        location = redirect_uri + ("&" if parts.query else "?") + urlencode(params)
    if opener_origin:
        target = opener_origin
    script = (
        "<script>(function(){var r="
        + _safe_json(result)
        + ";var to="
        + _safe_json(location)
        + ";if(window.opener){window.opener.postMessage(r,"
        + _safe_json(target)
        + ");if(!to){window.close();}}if(to){window.location.replace(to);}})();</script>"
    )
    heading = "Connected" if ok else "Could not connect"
    css = "ok" if ok else "error"
    body = (
        f'<h1 class="{css}">{heading}</h1><p>{escape(message)}</p><p>You can close this window.</p>'
    )
    return page(heading, body, status=status or (200 if ok else 400), script=script)
