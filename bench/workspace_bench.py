#!/usr/bin/python3
"""workspace_bench.py [BUILD-DIR] — the front-door queue at scale (issue 18): a school's system
publishes BENCH_QUEUE_ITEMS safeguarding concerns (default 100000) over the agency API, they
reach the hub's agent through the broker, and then the queue's first page is timed two ways:
the hub agent's answer to the `queue` request (bench/queue_bench, over its local socket), and
the workspace's queue page as a signed-in manager's browser gets it (HTTPS, rendered HTML).
Prints figures; asserts nothing. Real processes on loopback (tests/api_rig.py).
"""
import json
import os
import re
import subprocess
import sys
import time

import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from api_rig import Rig  # noqa: E402


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/release")
    n = int(os.environ.get("BENCH_QUEUE_ITEMS", "100000"))
    load = os.path.join(build, "bench", "api_load")
    qb = os.path.join(build, "bench", "queue_bench")
    rig = Rig(build, {"school": [("bench", ["publish"])]}, agencies=["hub", "school"],
              apis=["school", "hub"], workspace=True,
              agent_extra={"hub": "front_door: {working_days: 1}\n"})
    try:
        rig.account("hub", "mona", "manager", "manager staple battery", "Mona Patel")
        ev = {"event_type": "safeguarding_concern", "purpose": "safeguarding",
              "consent": "not_sought_risk_of_harm", "level_of_need": 3,
              "lawful_basis": {"article6": "e_public_task",
                               "article9": "2g_substantial_public_interest",
                               "dpa_schedule1_paragraph": 18},
              "child": rig.synthetic_child(1),
              "safeguarding_concern": {"category": "neglect", "immediate_risk": False,
                                       "narrative": "synthetic benchmark narrative",
                                       "reported_by": {"org_code": "8819990", "role": "DSL"}}}
        body = rig.path("event.json")
        with open(body, "w") as f:
            json.dump(ev, f)
        crt, key = rig.cert("bench")
        t0 = time.time()
        r = subprocess.run([load, "127.0.0.1", str(rig.ports["api-school"]), rig.ca, crt, key,
                            "8", str(n), "post", "/v1/events", body],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("api_load: " + r.stderr)

        def queue(extra=None, count=1):
            args = [qb, rig.socket("hub"), "mona", str(count)] + ([extra] if extra else [])
            q = subprocess.run(args, capture_output=True, text=True)
            if q.returncode != 0:
                raise RuntimeError("queue_bench: " + q.stderr)
            return json.loads(q.stdout)
        rig.wait(lambda: queue()["total"] >= n, "the hub to hold %d items" % n, timeout=1800)
        print("workspace bench: %d concerns published over HTTPS and queued at the hub in %.0f s"
              % (n, time.time() - t0), flush=True)
        for what, extra in [("queue request, first page (25 of all open)", None),
                            ("queue request, overdue only (none)", '"overdue":true'),
                            ("queue request, page 2000", '"offset":49975')]:
            f = queue(extra, 200)
            print("%-46s total %6d, %2d items: p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms" %
                  (what, f["total"], f["items"], f["p50_ms"], f["p99_ms"], f["max_ms"]), flush=True)
        s = requests.Session()
        s.trust_env = False
        s.verify = rig.ca
        base = rig.ws_url("hub")
        csrf = re.search(r'name="csrf" value="([^"]+)"', s.get(base + "/sign-in").text).group(1)
        s.post(base + "/sign-in", data={"csrf": csrf, "name": "mona",
                                        "password": "manager staple battery"})
        lat = []
        for _ in range(100):
            t = time.perf_counter()
            page = s.get(base + "/queue")
            lat.append((time.perf_counter() - t) * 1e3)
            if page.status_code != 200 or "of <strong>%d</strong>" % n not in page.text:
                raise RuntimeError("the queue page did not show %d items" % n)
        lat.sort()
        print("%-46s %d bytes of HTML: p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms" %
              ("workspace GET /queue (HTTPS, keep-alive)", len(page.content), lat[49], lat[98],
               lat[99]), flush=True)
    finally:
        rig.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
