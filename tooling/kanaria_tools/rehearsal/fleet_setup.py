"""The chatbot fleet behind the deployed listener, the canary's warm-up endpoint, and the deployment pipeline's
listener reset after a promotion."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kanaria import names
from kanaria_tools.rehearsal.context import RunContext
from kanaria_tools.rehearsal.fleet import ChatbotFleet, TargetGroup


def setup_fleet(ctx: RunContext) -> ChatbotFleet:
    """The fleet on the deployed listener and target groups, running the first rollout's configurations."""
    variables = ctx.steps_environment()
    listener_arn = variables[names.ENV_LISTENER_ARN]
    primary_arn = variables[names.ENV_PRIMARY_TARGET_GROUP_ARN]
    canary_arn = variables[names.ENV_CANARY_TARGET_GROUP_ARN]
    lb_full_name = listener_arn.split(":listener/", 1)[1].rsplit("/", 1)[0]
    first = ctx.scenario.rollouts[0]
    fleet = ChatbotFleet(
        ctx.scenario,
        ctx.rng,
        elbv2=ctx.client("elbv2"),
        cloudwatch=ctx.client("cloudwatch"),
        listener_arn=listener_arn,
        load_balancer_full_name=lb_full_name,
        primary=TargetGroup("primary", primary_arn, primary_arn.split(":", 5)[5], first.baseline),
        canary=TargetGroup("canary", canary_arn, canary_arn.split(":", 5)[5], first.candidate),
        wall_datetime=ctx.clock.wall_datetime,
    )
    ctx.progress.line(
        f"chatbot fleet: listener {lb_full_name}, {ctx.scenario.traffic.requests_per_minute} "
        f"requests per scenario minute, intents {', '.join(ctx.scenario.traffic.intent_mix)}"
    )
    return fleet


def start_warmup_endpoint(fleet: ChatbotFleet) -> str:
    """A loopback HTTP endpoint standing for the canary target: each POST is one request the canary serves
    (its cold start fades with them), what the state machine's warm-up step sends before live traffic. Its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server naming
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            side = "canary" if self.path.rstrip("/").endswith("canary") else "primary"
            with fleet.lock:
                fleet.served[side] += 1
                fleet.warmed[side] += 1
            body = json.dumps({"target": side, "warm": True}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True, name="warmup-endpoint").start()
    return f"http://localhost:{server.server_address[1]}/canary"


def reset_listener(ctx: RunContext, fleet: ChatbotFleet, reason: str) -> None:
    """What the deployment pipeline does after a promotion: primary runs the new configuration, 100/0."""
    elbv2 = ctx.client("elbv2")
    listener = elbv2.describe_listeners(ListenerArns=[fleet.listener_arn])["Listeners"][0]
    forward = next(a for a in listener["DefaultActions"] if a["Type"] == "forward")
    config = forward.get("ForwardConfig") or {}
    groups = [{"TargetGroupArn": g.arn, "Weight": 100 if g.side == "primary" else 0} for g in fleet.groups.values()]
    forward_config: dict[str, Any] = {"TargetGroups": groups}
    if config.get("TargetGroupStickinessConfig"):
        forward_config["TargetGroupStickinessConfig"] = config["TargetGroupStickinessConfig"]
    elbv2.modify_listener(
        ListenerArn=fleet.listener_arn, DefaultActions=[{"Type": "forward", "ForwardConfig": forward_config}]
    )
    ctx.progress.line(reason, at=ctx.clock.now())
