"""``doctor`` checks of the dashboard: its service file (``install --web``), whether it answers
on 127.0.0.1:8765, and its token file's mode. The dashboard is optional: not installed is ok."""

from __future__ import annotations

import http.client
import os
import stat
import sys

from bassi_schedd.core.errors import UserError
from bassi_schedd.ops import install as svc
from bassi_schedd.ops.doctor import Check, Context

DEFAULT_PORT = 8765
TOKEN_FILE = "web.token"  # noqa: S105 (a file name, not a secret)


def check_web(ctx: Context, port: int = DEFAULT_PORT) -> list[Check]:
    """The dashboard's service file, its answer on /healthz, and its token file."""
    checks: list[Check] = []
    installed = False
    if ctx.platform is not None:
        path = svc.service_file(ctx.platform, ctx.user_home, svc.WEB)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = None
        except (OSError, UnicodeDecodeError) as e:
            fix = "bassi-schedd install --web"
            return [Check("fail", "dashboard", f"cannot read {path}: {e}", fix)]
        if text is None:
            checks.append(
                Check("ok", "dashboard", "no service installed (optional: install --web)")
            )
        else:
            installed = True
            checks.append(_service_check(ctx, path, text))
    answers = healthz(port)
    if answers:
        checks.append(Check("ok", "dashboard", f"answers on http://127.0.0.1:{port}/"))
    elif installed:
        fix = (
            "journalctl --user -u bassi-schedd-web"
            if ctx.platform == "linux"
            else f"see {ctx.home.logs_dir}/launchd-web-stderr.log"
        )
        detail = f"installed but not answering on 127.0.0.1:{port}"
        checks.append(Check("warn", "dashboard", detail, fix))
    token = ctx.home.root / TOKEN_FILE
    try:
        st = token.stat()
    except OSError:
        return checks
    if st.st_mode & 0o077:
        detail = f"{token} is readable by others (mode {stat.S_IMODE(st.st_mode):o})"
        checks.append(Check("fail", "dashboard token", detail, f"chmod 600 {token}"))
    else:
        checks.append(Check("ok", "dashboard token", f"{token} (0600)"))
    return checks


def _service_check(ctx: Context, path: os.PathLike[str], text: str) -> Check:
    assert ctx.platform is not None
    installed = svc.parse_installed(ctx.platform, text)
    python = os.path.abspath(sys.executable)
    values = svc.ServiceValues(python, installed.env.get("PATH", ""), str(ctx.home.root))
    try:
        current = svc.render(ctx.platform, values, svc.WEB) == text
    except UserError:
        current = False
    if current:
        return Check("ok", "dashboard", f"service installed and current ({path})")
    if installed.env.get("BASSI_HOME") not in (None, str(ctx.home.root)):
        detail = f"{path} serves BASSI_HOME {installed.env.get('BASSI_HOME')}, not {ctx.home.root}"
        return Check("warn", "dashboard", detail, "bassi-schedd install --web")
    detail = f"{path} differs from this version's template (edited, or another interpreter)"
    return Check("warn", "dashboard", detail, "bassi-schedd install --web")


def healthz(port: int, timeout_s: float = 1.0) -> bool:
    """True when something answers ``GET /healthz`` with 200 on 127.0.0.1:port."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        conn.request("GET", "/healthz", headers={"Host": f"127.0.0.1:{port}"})
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
