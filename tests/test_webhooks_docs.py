"""The signature checks docs/webhooks.md shows receivers, run against a real signed
delivery (Python always; Node.js where `node` is installed)."""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta

from saumaton.outbound_webhooks.services import new_secret
from saumaton.outbound_webhooks.worker import body_of, retry_delay, schedule, signed_headers
from tests.support import ROOT

DOC = (ROOT / "docs" / "webhooks.md").read_text()


def _block(lang: str) -> str:
    m = re.search(rf"```{lang}\n(.*?)```", DOC, re.S)
    assert m, f"no {lang} block in docs/webhooks.md"
    return m[1]


def _delivery() -> tuple[str, str, dict[str, str]]:
    secret = new_secret()
    body = body_of("order.paid", datetime.now(UTC), {"order_id": 7, "city": "Äänekoski"})
    return secret, body, signed_headers(secret, "msg_7_1", body)


def test_the_python_snippet_verifies_a_delivery() -> None:
    secret, body, headers = _delivery()
    scope: dict[str, object] = {}
    exec(_block("python").replace('"whsec_..."', repr(secret)), scope)
    receive = scope["receive"]
    assert callable(receive)
    event = receive(body.encode(), headers)
    assert event == {"type": "order.paid", "timestamp": json.loads(body)["timestamp"],
                     "data": {"order_id": 7, "city": "Äänekoski"}}
    assert receive(body.replace("7", "8").encode(), headers) is None
    assert receive(body.encode(), {**headers, "webhook-timestamp": "1000000000"}) is None


def test_the_node_snippet_verifies_a_delivery() -> None:
    node = shutil.which("node")
    if node is None:
        print("node is not installed: the Node.js snippet is not run")  # a visible reason
        return
    secret, body, headers = _delivery()
    script = _block("javascript") + f"""
const headers = {json.dumps(headers)};
const body = Buffer.from({json.dumps(body)}, "utf8");
const out = [verifyWebhook({json.dumps(secret)}, headers, body).data.city];
for (const [b, h] of [[body.toString().replace("7", "8"), headers],
                      [body, {{...headers, "webhook-timestamp": "1000000000"}}],
                      [body, {{...headers, "webhook-signature": "v1,AAAA"}}]]) {{
  try {{ verifyWebhook({json.dumps(secret)}, h, b); out.push("accepted"); }}
  catch (e) {{ out.push("refused"); }}
}}
console.log(JSON.stringify(out));
"""
    done = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["Äänekoski", "refused", "refused", "refused"]


def test_the_documented_backoff_schedule() -> None:
    waits = schedule(30)
    assert [int(w.total_seconds()) for w in waits[:4]] == [5, 10, 20, 40]
    assert len(waits) == 16 and max(waits) == timedelta(hours=6)  # "about 16 attempts"
    assert sum(waits, timedelta()) <= timedelta(hours=30)
    assert len(schedule(24)) >= 15
    rnd = random.Random(3)
    for n, nominal in enumerate(waits, start=1):
        got = retry_delay(n, rnd)
        assert nominal * 0.8 <= got <= nominal * 1.2  # ±20 % jitter
