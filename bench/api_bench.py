#!/usr/bin/python3
"""bench/api_bench.py [BUILD-DIR] — issue 17's figures for the agency API: events/s published
over HTTPS (mutual TLS, keep-alive) by one client system with 1 and 8 connections, and the
latency of GET /v1/events/{id}, through the real processes (a broker, the school's and the
hub's agents, the school's sharehub-api) on loopback. Prints the lines of docs/performance.md.

BENCH_API_EVENTS=N  events per publish run (default 20000); BENCH_API_GETS=N  reads per run
(default 10000). The load comes from bench/api_load (C, OpenSSL, one thread a connection).
"""
import json
import os
import subprocess
import sys
import time

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from api_rig import Rig  # noqa: E402


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/release")
    events = int(os.environ.get("BENCH_API_EVENTS", "20000"))
    gets = int(os.environ.get("BENCH_API_GETS", "10000"))
    load = os.path.join(build, "bench", "api_load")
    rig = Rig(build, {"school": [("bench", ["publish", "track"])]}, agencies=["hub", "school"],
              apis=["school"])
    out = []
    try:
        child = rig.synthetic_child(1)
        ev = {"event_type": "safeguarding_concern", "purpose": "safeguarding",
              "consent": "not_sought_risk_of_harm", "level_of_need": 4,
              "lawful_basis": {"article6": "e_public_task",
                               "article9": "2g_substantial_public_interest",
                               "dpa_schedule1_paragraph": 18},
              "child": child,
              "safeguarding_concern": {"category": "neglect", "immediate_risk": False,
                                       "narrative": "synthetic benchmark narrative " * 4,
                                       "reported_by": {"org_code": "8819990", "role": "DSL"}}}
        body = rig.path("event.json")
        with open(body, "w") as f:
            json.dump(ev, f)
        crt, key = rig.cert("bench")
        port = str(rig.ports["api-school"])
        print("api bench: %d-byte event, school agent -> broker -> hub (and ESXPOL's queue)" %
              os.path.getsize(body), flush=True)

        def run(conns, n, mode, arg, what):
            r = subprocess.run([load, "127.0.0.1", port, rig.ca, crt, key, str(conns), str(n),
                                mode, "/v1/events" if mode == "post" else "-", arg],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError("api_load: " + r.stderr)
            f = json.loads(r.stdout)
            line = ("%-44s %6d requests, %3d connections: %7.0f/s  p50 %6.2f ms  p99 %6.2f ms"
                    "  max %6.2f ms" % (what, f["requests"], conns, f["per_second"], f["p50_ms"],
                                         f["p99_ms"], f["max_ms"]))
            print(line, flush=True)
            out.append(line)
            return f

        run(8, 500, "post", body, "(warm-up)")
        run(1, events // 4, "post", body, "POST /v1/events, keep-alive")
        run(8, events, "post", body, "POST /v1/events, keep-alive")
        s = requests.Session()
        s.trust_env = False
        s.verify, s.cert = rig.ca, (crt, key)
        ids = []
        for i in range(200):
            r = s.post(rig.url("school") + "/v1/events", json=ev,
                       headers={"X-Sharehub-User": "bench"})
            ids.append(r.json()["event_id"])
        time.sleep(1)
        paths = rig.path("paths")
        with open(paths, "w") as f:
            f.write("".join("/v1/events/%s\n" % i for i in ids))
        run(1, gets // 4, "get", paths, "GET /v1/events/{id} (tracking)")
        run(8, gets, "get", paths, "GET /v1/events/{id} (tracking)")
    finally:
        rig.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
