"""Runs one scenario end to end: emulator, real CDK deploy, experiment, canary rollouts, alarms, report.

The Rehearsal class orchestrates the phases; what it records and reads lives beside it: the results
(rehearsal.results), the in-process invocation log the reaction times come from (rehearsal.invocation_log),
the alarm evaluator's wiring to the deployed stacks (rehearsal.alarm_wiring) and the alert/fault texts
(rehearsal.alert_text).
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
import uuid
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kanaria import names
from kanaria.errors import KanariaError, OperationalError, ValidationError
from kanaria_tools.paths import repository_root
from kanaria_tools.rehearsal.alarm_wiring import AlarmActionSink, StackResolver
from kanaria_tools.rehearsal.alert_text import alert_summary, fault_text, fmt_quality, scheduled_event
from kanaria_tools.rehearsal.clock import RehearsalClock, fmt, fmt_duration
from kanaria_tools.rehearsal.invocation_log import InvocationLog
from kanaria_tools.rehearsal.progress import Progress
from kanaria_tools.rehearsal.results import PhaseResult, Reaction, RehearsalResult
from kanaria_tools.rehearsal.scenario import SYSTEM_FAULT_KINDS, Configuration, RolloutPhase, Scenario

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def cdk_context(app_dir: Path | None = None) -> dict[str, Any]:
    """The app's cdk.json context (prefix, account, region); default: the checkout's."""
    return json.loads(((app_dir or repository_root()) / "cdk.json").read_text(encoding="utf-8")).get("context", {})


class Rehearsal:
    """One scenario on one emulator."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        progress: Progress,
        reports_dir: Path,
        port: int | None = None,
        app_dir: Path | None = None,
        speed: float | None = None,
    ):
        self.scenario = scenario
        self.progress = progress
        self.reports_dir = reports_dir
        self.port = port
        self.app_dir = app_dir or repository_root()
        context = cdk_context(self.app_dir)
        self.prefix = str(context.get("kanaria:prefix", names.DEFAULT_PREFIX))
        self.account = str(context.get("kanaria:account", "123456789012"))
        self.region = str(context.get("kanaria:region", "ap-northeast-1"))
        self.speed = float(speed or scenario.clock.speed)
        self.rng = random.Random(scenario.seed)
        self.result = RehearsalResult(scenario, speed=self.speed)
        self.clock: RehearsalClock | None = None
        self.invocations = InvocationLog(self.prefix)
        self._lock = threading.Lock()
        self._function_faults: list[list[Any]] = []  # [fault, phase start, failures left]: injected into functions
        self._reconciler: str | None = None
        self._next_reconcile = 0.0
        self._reconciling = threading.Lock()
        self.run_id = f"{scenario.name}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"
        self.run_dir = reports_dir / self.run_id

    # --- plumbing --------------------------------------------------------------------------------------------

    def _setup_logging(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(self.run_dir / "emulator.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        root = logging.getLogger()
        for existing in list(root.handlers):
            if isinstance(existing, logging.StreamHandler) and not isinstance(existing, logging.FileHandler):
                root.removeHandler(existing)
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        for noisy in ("werkzeug", "moto", "botocore", "urllib3"):
            logging.getLogger(noisy).propagate = True
        logging.getLogger("botocore").setLevel(logging.WARNING)
        logging.getLogger("urllib3").setLevel(logging.WARNING)
        logging.captureWarnings(True)
        warnings.simplefilter("default")

    def _on_invoke(self, invocation: Any) -> None:
        self.invocations.record(self.clock.now() if self.clock else 0.0, invocation)

    def _function(self, kind: str) -> str:
        return names.function_name(self.prefix, kind)

    def _before_invoke(self, function_name: str, event: Any) -> None:
        """A rollback_function_failure fault: the deployed rollback function raises while it lasts."""
        if function_name != self._function(names.FUNCTION_ROLLBACK) or self.clock is None:
            return
        with self._lock:
            for entry in self._function_faults:
                fault, started, left = entry
                if left > 0 and fault.active((self.clock.now() - started) / 60):
                    entry[2] -= 1
                    raise RuntimeError(
                        f"injected fault: {fault.description or 'the rollback function is broken'} "
                        f"(failure {fault.failures - entry[2]} of {fault.failures})"
                    )

    def _reconcile(self, now: float) -> None:
        """The reconciler's EventBridge schedule (every RECONCILE_EVERY_MINUTES on the scenario clock), invoked
        asynchronously like EventBridge does; one at a time (its reserved concurrency is 1)."""
        if self._reconciler is None or now < self._next_reconcile:
            return
        period = names.RECONCILE_EVERY_MINUTES * 60
        self._next_reconcile = (math.floor(now / period) + 1) * period
        if not self._reconciling.acquire(blocking=False):
            return  # the previous run is still going: throttled, as with reserved concurrency 1

        def run() -> None:
            try:
                self.caller.invoke(self._reconciler, scheduled_event(self.account, self.region, self._reconciler))
            except Exception as exc:  # noqa: BLE001 - the function's failure is in the invocation log
                logging.getLogger("kanaria_tools.rehearsal").info("reconciler failed: %s", exc)
            finally:
                self._reconciling.release()

        threading.Thread(target=run, daemon=True, name="reconciler").start()

    # --- the run ---------------------------------------------------------------------------------------------

    def run(self) -> RehearsalResult:
        """The whole rehearsal; never raises for a scenario failure (recorded in the result)."""
        from kanaria_tools.rehearsal import moto_adaptations
        from kanaria_tools.rehearsal.deploy import deploy_app
        from kanaria_tools.rehearsal.emulator import LocalAws

        started = time.monotonic()
        self._setup_logging()
        self.result.run_dir = self.run_dir
        p = self.progress
        s = self.scenario
        p.section(f"Rehearsal {s.name}: {s.description}")
        if s.design_note:
            p.line(f"design note: {s.design_note}")
        p.line(
            f"scenario clock: {self.speed:g}x (1 wall second = {fmt_duration(self.speed)} of scenario time); "
            f"report and logs in {self.run_dir}"
        )
        p.section("Local AWS emulator (moto, in process, loopback only)")
        hooks = moto_adaptations.Hooks(on_invoke=self._on_invoke, before_invoke=self._before_invoke)
        aws = LocalAws.start(account=self.account, region=self.region, port=self.port, hooks=hooks)
        try:
            p.line(
                f"moto {moto_adaptations.MOTO_VERSION} on {aws.endpoint} with {len(moto_adaptations.ADAPTATIONS)} "
                "adaptations (kanaria_tools/rehearsal/moto_adaptations/)"
            )
            p.section("Deploying the CDK app (cdk bootstrap + cdk deploy --all, kanaria:bundle=false)")
            # Rehearsal only: stage 0 accepts offline-adapter evaluations and, where a scenario runs none, the
            # request's claimed pass; a real deployment with an evaluations table refuses both.
            context: dict[str, str] = {"kanaria:allowOfflineEvaluation": "true"}
            p.line(
                "  -c kanaria:allowOfflineEvaluation=true (rehearsal only: stage 0 accepts offline-adapter "
                "evaluations and claimed passes, which a real deployment refuses)"
            )
            deployment = deploy_app(
                account=self.account,
                region=self.region,
                env=aws.env(),
                out_dir=self.run_dir / "cdk.out",
                log_path=self.run_dir / "cdk-deploy.log",
                echo=lambda line: p.line(f"  cdk | {line.strip()}"),
                app_dir=self.app_dir,
                context=context or None,
            )
            self.result.deploy_seconds = deployment.seconds
            for stack in deployment.stacks.values():
                skipped = sorted(
                    {
                        stack.template["Resources"][r]["Type"]
                        for r in stack.template["Resources"]
                        if r not in stack.resources and stack.template["Resources"][r]["Type"] != "AWS::CDK::Metadata"
                    }
                )
                self.result.not_created[stack.name] = skipped
                p.line(
                    f"  {stack.name}: {stack.status}, {len(stack.resources)} resources"
                    + (f" (not emulated: {', '.join(t.split('::', 1)[1] for t in skipped)})" if skipped else "")
                )
            p.line(f"deployed in {deployment.seconds:.1f}s")
            self.clock = RehearsalClock(self.speed)
            self._run_phases(aws, deployment)
        except KanariaError as exc:
            self.result.error = str(exc)
            p.line(f"ERROR: {exc}")
        except Exception as exc:  # noqa: BLE001 - reported, the run fails
            self.result.error = f"{type(exc).__name__}: {exc}"
            logging.getLogger("kanaria_tools.rehearsal").exception("rehearsal failed")
            p.line(f"ERROR: {type(exc).__name__}: {exc} (traceback in {self.run_dir / 'emulator.log'})")
        finally:
            aws.stop()
            self.result.wall_seconds = time.monotonic() - started
        return self.result

    def _run_phases(self, aws: Any, deployment: Any) -> None:
        from kanaria_tools.rehearsal.invoke import FunctionCaller

        self.aws = aws
        self.caller = FunctionCaller(aws.client("lambda"))
        self.functions = {
            f["FunctionName"]
            for page in aws.client("lambda").get_paginator("list_functions").paginate()
            for f in page["Functions"]
        }
        self.topic_arn = f"arn:aws:sns:{self.region}:{self.account}:{self.prefix}-alerts"
        from kanaria_tools.rehearsal import moto_adaptations

        moto_adaptations.prepare_environment(self.account, self.region)
        self._start_oncall(aws)
        self._start_alarms(aws, deployment)
        reconciler = self._function(names.FUNCTION_RECONCILER)
        if reconciler in self.functions:
            self._reconciler = reconciler
            self.progress.line(
                f"reconciler: {reconciler} every {names.RECONCILE_EVERY_MINUTES} scenario minute(s) "
                "(its EventBridge schedule, which moto does not fire)"
            )
        if self.scenario.experiment is not None:
            self._experiment_phase()
        if self.scenario.rollouts:
            if self._function("rollout-steps") not in self.functions:
                raise OperationalError("the rollout stack is not deployed (no rollout-steps function)", field="rollout")
            self._setup_fleet(aws)
            for phase in self.scenario.rollouts:
                self._rollout_phase(phase)
        self.result.alarm_transitions = list(self.evaluator.transitions)
        self.result.alarm_series = {
            n: list(st.datapoints) for n, st in self.evaluator.status.items() if not st.definition.composite
        }
        self.result.alarm_thresholds = {n: st.definition.threshold for n, st in self.evaluator.status.items()}
        self.result.invocations = self.invocations.summary()

    # --- on-call subscriber and alarms ----------------------------------------------------------------------

    def _start_oncall(self, aws: Any) -> None:
        sqs, sns = aws.client("sqs"), aws.client("sns")
        queue_url = sqs.create_queue(QueueName=f"{self.prefix}-rehearsal-oncall")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn)
        self._sqs, self._queue_url = sqs, queue_url
        self.progress.line(
            f"on-call subscriber: SQS queue {queue_arn.rsplit(':', 1)[1]} subscribed to "
            f"{self.topic_arn.rsplit(':', 1)[1]}"
        )

    def _poll_alerts(self) -> list[tuple[float, str, str]]:
        received = []
        while True:
            messages = self._sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                break
            for message in messages:
                envelope = json.loads(message["Body"])
                subject, body = envelope.get("Subject") or "", envelope.get("Message") or ""
                at = self.clock.now()
                received.append((at, subject, body))
                self.result.alerts.append((at, subject, body))
                self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
                self.progress.line(f"ON-CALL ALERT  {subject}", at=at)
                for line in alert_summary(body):
                    self.progress.line(f"    {line}")
        return received

    def _start_alarms(self, aws: Any, deployment: Any) -> None:
        from kanaria_tools.rehearsal import moto_adaptations
        from kanaria_tools.rehearsal.alarms import AlarmEvaluator, EmulatorHooks, MetricStore, load_definitions

        resolver = StackResolver(deployment, aws.client("cloudformation"), self.account, self.region)
        definitions = load_definitions(deployment.templates(), resolver, self.account, self.region)
        account, region = self.account, self.region
        hooks = EmulatorHooks(
            register=lambda d: moto_adaptations.register_alarm(account, region, d.properties),
            record_state=lambda d, state, reason, data, at: moto_adaptations.record_alarm_state(
                account, region, d.name, state, reason, data, self.clock.wall_datetime(at)
            ),
            actions_enabled=lambda name: moto_adaptations.alarm_actions_enabled(account, region, name),
        )
        store = MetricStore(lambda start: moto_adaptations.metric_datums(account, region, start))
        self._sink = AlarmActionSink(aws, sleep=lambda seconds: time.sleep(self.clock.wall_seconds(seconds)))
        clock = self.clock
        self.evaluator = AlarmEvaluator(
            definitions,
            store,
            to_wall=clock.to_wall,
            sink=self._sink,
            account=account,
            region=region,
            hooks=hooks,
            wall_datetime=clock.wall_datetime,
        )
        metric = [d for d in definitions if not d.composite]
        composite = [d for d in definitions if d.composite]
        self.progress.line(
            f"alarm evaluator: {len(metric)} metric alarms and {len(composite)} composite alarms read "
            "from the synthesized templates (moto does not create or evaluate them)"
        )
        for d in composite:
            actions = ", ".join(a.split(":")[2] + ":" + a.rsplit(":", 1)[-1] for a in d.alarm_actions) or "none"
            self.progress.line(f"  {d.name}: {d.rule[:90]}{'...' if len(d.rule or '') > 90 else ''} -> {actions}")

    def _tick(self, now: float, phase: str) -> float:
        """Advance: alarms up to `now`, alerts. Returns now."""
        for t in self.evaluator.run_until(now):
            kind = "composite" if t.composite else "alarm"
            actions = (
                f" -> {', '.join(a.split(':')[2] + ' ' + a.rsplit(':', 1)[-1] for a in t.actions)}" if t.actions else ""
            )
            self.progress.line(f"ALARM {t.alarm}: {t.old} -> {t.new}{actions}", at=t.at)
            self._phase_reactions.append(Reaction(t.at, f"{t.alarm} {t.old} -> {t.new}{actions}", kind))
        self._reconcile(now)
        self._poll_alerts()
        return now

    # --- experiment ------------------------------------------------------------------------------------------

    def _experiment_definition(self) -> dict[str, Any]:
        e = self.scenario.experiment
        assert e is not None
        control, treatment = self.scenario.configurations[e.control], self.scenario.configurations[e.treatment]
        return {
            "id": e.id,
            "description": e.description,
            "hypothesis": e.hypothesis,
            "intents": list(e.intents),
            "unit": "session",
            "traffic": {"default": 1.0},
            "control": e.control,
            "variants": [
                {
                    "id": e.control,
                    "weight": 0.5,
                    "description": control.description or control.model_id,
                    "overrides": control.overrides(),
                },
                {
                    "id": e.treatment,
                    "weight": 0.5,
                    "description": treatment.description or treatment.model_id,
                    "overrides": treatment.overrides(),
                },
            ],
            "primary_metric": e.primary_metric,
            "guardrails": list(e.guardrails),
            "decision": {
                "alpha": e.alpha,
                "power": 0.8,
                "mde": e.mde,
                "method": e.method,
                "planned_n_per_variant": e.planned_n_per_variant,
            },
            "tier": e.tier,
        }

    def _experiment_phase(self) -> None:
        from kanaria_tools.rehearsal.traffic import ExperimentTraffic

        e = self.scenario.experiment
        assert e is not None
        p = self.progress
        self._phase_reactions: list[Reaction] = []
        p.section(f"Experiment {e.id}: {e.control} (control) vs {e.treatment}")
        started = self.clock.now()
        definition = self._experiment_definition()
        experiments = self._function("experiments")
        self.caller.http(experiments, "POST", "/experiments", definition, route_key="POST /experiments")
        self.caller.http(
            experiments,
            "POST",
            f"/experiments/{e.id}/transitions",
            {"action": "start"},
            route_key="POST /experiments/{experiment_id}/transitions",
            path_parameters={"experiment_id": e.id},
        )
        p.line(f"created and started through {experiments} (POST /experiments, POST .../transitions)", at=started)
        observe = self._function("observations") if self._function("observations") in self.functions else None
        analysis = self._function("analysis") if self._function("analysis") in self.functions else None
        if observe is None or analysis is None:
            p.line("the observations/analysis functions are not deployed in this build: assignments only, no decision")
        traffic = ExperimentTraffic(
            self.scenario,
            self.rng,
            self.caller,
            assign_function=self._function("assign"),
            observe_function=observe,
            definition=definition,
        )
        rounds = max(1, math.ceil(e.minutes / e.analysis_every_minutes))
        per_round = max(10, math.ceil(e.max_observations / rounds))
        rows: list[list[Any]] = []
        decision, srm, paused = None, False, False
        reasons: list[str] = []
        fault_minutes = [f.at_minute for f in e.faults]
        for round_index in range(rounds):
            minute = (round_index + 1) * e.analysis_every_minutes
            traffic.run(per_round, minute - e.analysis_every_minutes / 2, datetime.now(timezone.utc))
            outcome = self._analyse(analysis, e.id) if analysis else {}
            previous_decision = decision
            decision = outcome.get("decision") or decision
            reasons = self._analysis_reasons(e.id) if analysis else []
            srm, paused = bool(outcome.get("srm_mismatch")), bool(outcome.get("paused"))
            now = self._tick(self.clock.now(), e.id)
            progress = traffic.progress
            means = {v: (sum(q) / len(q) if q else None) for v, q in progress.quality.items()}
            rows.append(
                [
                    f"{round_index + 1} ({minute:g} min)",
                    progress.assigned.get(e.control, 0),
                    progress.assigned.get(e.treatment, 0),
                    fmt_quality(means.get(e.control)),
                    fmt_quality(means.get(e.treatment)),
                    decision or "-",
                    "MISMATCH" if srm else "ok",
                ]
            )
            p.table(
                f"experiment {e.id} (scheduled analysis every {e.analysis_every_minutes:g} scenario minutes)",
                [
                    "analysis (traffic)",
                    f"units {e.control}",
                    f"units {e.treatment}",
                    f"quality {e.control}",
                    f"quality {e.treatment}",
                    "decision",
                    "SRM",
                ],
                rows[-8:],
                at=now,
            )
            if srm:
                self._phase_reactions.append(
                    Reaction(
                        now,
                        f"analysis: sample-ratio mismatch (experiment {'paused' if paused else 'not paused'})",
                        "srm",
                    )
                )
            if decision != previous_decision:
                p.freeze()
                p.line(
                    f"analysis decision {previous_decision or 'none'} -> {decision}: {'; '.join(reasons)[:300]}", at=now
                )
                self._phase_reactions.append(
                    Reaction(now, f"analysis decision: {decision} ({'; '.join(reasons)})", "decision")
                )
            if srm or (decision and decision not in {"CONTINUE", "NO_DECISION"}):
                break
        p.freeze()
        ended = self.clock.now()
        self._tick(ended, e.id)
        expected = e.expect_decision
        srm_expected = any(f.kind == "srm_assignment_bug" for f in e.faults)
        if srm_expected:
            outcome_text = "srm_detected" if srm else f"decision {decision}"
            ok = srm
            expected_text = "srm_detected"
        else:
            outcome_text = decision or ("no analysis" if analysis is None else "no decision")
            ok = analysis is not None and (not expected or decision in expected)
            expected_text = " or ".join(expected) if expected else None
        p.line(
            f"experiment result: {outcome_text} (expected {expected_text or 'any decision'}) -> "
            f"{'as expected' if ok else 'NOT as expected'}; {traffic.progress.sessions} sessions, "
            f"{sum(traffic.progress.observed.values())} observations recorded, "
            f"{traffic.progress.skipped_assignments} assignment calls skipped by the client bug",
            at=ended,
        )
        if reasons:
            p.line(f"  why: {'; '.join(reasons)[:400]}")
        result = PhaseResult(
            e.id,
            "experiment",
            expected_text,
            outcome_text,
            ok,
            started,
            ended,
            detail={
                "rows": rows,
                "sessions": traffic.progress.sessions,
                "observed": dict(traffic.progress.observed),
                "skipped_assignments": traffic.progress.skipped_assignments,
                "decision": decision,
                "srm": srm,
                "paused": paused,
            },
            reactions=self._phase_reactions,
        )
        if fault_minutes:
            result.fault_at = started + min(fault_minutes) * 60
        self.result.phases.append(result)

    def _analysis_reasons(self, experiment_id: str) -> list[str]:
        """The reasons of the latest stored analysis result (what the decision rests on)."""
        try:
            from kanaria.dal.observations import DynamoAnalysisStore

            latest = DynamoAnalysisStore(names.table_name(self.prefix, "aggregates")).latest_result(experiment_id)
        except Exception:  # noqa: BLE001 - informative only
            return []
        result = (latest or {}).get("result") or {}
        evidence = result.get("evidence") if isinstance(result, dict) else None
        reasons = (evidence or {}).get("reasons") if isinstance(evidence, dict) else None
        return [str(r) for r in reasons] if isinstance(reasons, list) else []

    def _analyse(self, function: str, experiment_id: str) -> dict[str, Any]:
        result = self.caller.invoke(function, scheduled_event(self.account, self.region, function))
        for outcome in (result or {}).get("analysed", []):
            if outcome.get("experiment_id") == experiment_id:
                return outcome
        return {}

    # --- rollouts --------------------------------------------------------------------------------------------

    def _setup_fleet(self, aws: Any) -> None:
        from kanaria_tools.rehearsal.traffic import ChatbotFleet, TargetGroup

        variables = self._steps_environment(aws)
        listener_arn = variables[names.ENV_LISTENER_ARN]
        primary_arn = variables[names.ENV_PRIMARY_TARGET_GROUP_ARN]
        canary_arn = variables[names.ENV_CANARY_TARGET_GROUP_ARN]
        lb_full_name = listener_arn.split(":listener/", 1)[1].rsplit("/", 1)[0]
        first = self.scenario.rollouts[0]
        self.fleet = ChatbotFleet(
            self.scenario,
            self.rng,
            elbv2=aws.client("elbv2"),
            cloudwatch=aws.client("cloudwatch"),
            listener_arn=listener_arn,
            load_balancer_full_name=lb_full_name,
            primary=TargetGroup("primary", primary_arn, primary_arn.split(":", 5)[5], first.baseline),
            canary=TargetGroup("canary", canary_arn, canary_arn.split(":", 5)[5], first.candidate),
            wall_datetime=self.clock.wall_datetime,
        )
        self.progress.line(
            f"chatbot fleet: listener {lb_full_name}, {self.scenario.traffic.requests_per_minute} "
            f"requests per scenario minute, intents {', '.join(self.scenario.traffic.intent_mix)}"
        )
        if any(phase.warmup_requests for phase in self.scenario.rollouts):
            self._warmup_url = self._start_warmup_endpoint()
            self.progress.line(f"warm-up endpoint of the canary target group: {self._warmup_url}")

    def _start_warmup_endpoint(self) -> str:
        """A loopback HTTP endpoint standing for the canary target: each POST is one request the canary serves
        (its cold start fades with them), what the state machine's warm-up step sends before live traffic."""
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        fleet = self.fleet

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
        self._warmup_server = server
        return f"http://localhost:{server.server_address[1]}/canary"

    def _evaluation_config(self, phase: RolloutPhase) -> Any:
        """The candidate as an offline-evaluation configuration: its experiment-variant overrides with the model
        id answered by the offline adapter. Its config_hash is the rollout request's config_hash."""
        from kanaria.evaluation.configs import OFFLINE_PREFIX, is_offline, parse_configuration

        candidate: Configuration = self.scenario.configurations[phase.candidate]
        overrides = candidate.overrides()
        if not is_offline(overrides["model_id"]):
            overrides["model_id"] = OFFLINE_PREFIX + overrides["model_id"]
        return parse_configuration(
            {"name": phase.candidate, "description": candidate.description[:500], "overrides": overrides},
            where=f"rollouts.{phase.name}.offline_evaluation",
        )

    def _offline_evaluation(self, phase: RolloutPhase) -> tuple[str, str, tuple[str, ...] | None]:
        """Stage 0 for real: evaluate the candidate on the golden dataset with the offline adapter and store the
        report and summary where the deployed rollout-steps function's stage 0 reads them. Returns the evaluated
        configuration's (config hash, model id, intents) for the rollout request."""
        from kanaria.dal.evaluations import EvaluationBucket, store_report
        from kanaria.evaluation.dataset import dataset_name, parse_dataset
        from kanaria.evaluation.pipeline import (
            RunSettings,
            assemble_report,
            evaluate_all,
            iso,
            new_run_id,
        )
        from kanaria.evaluation.render import CHART_FILE, render_markdown, render_svg
        from kanaria_tools.offline_model import offline_invoker

        spec = phase.offline_evaluation
        assert spec is not None
        p = self.progress
        at = self.clock.now()
        path = Path(spec.dataset)
        if not path.is_absolute():
            path = self.app_dir / path
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ValidationError(
                f"golden dataset not found: {path}", field=f"rollouts.{phase.name}.offline_evaluation.dataset"
            ) from None
        settings = RunSettings.model_validate({"intents": tuple(spec.intents or ()), "concurrency": 4})
        dataset = parse_dataset(text, dataset_name(path.name)).only(settings.intents)
        configuration = self._evaluation_config(phase)
        now = datetime.now(timezone.utc)
        run_id = new_run_id(now)
        records = evaluate_all(dataset, [configuration], offline_invoker(dataset), settings)
        report = assemble_report(run_id, iso(now), dataset, [configuration], records, settings)
        table = self._steps_environment(self.aws)[names.ENV_EVALUATIONS_TABLE]
        bucket = names.evaluation_bucket_name(self.prefix, self.account, self.region)
        stored = store_report(
            EvaluationBucket(bucket), table, report, records, render_markdown(report, CHART_FILE), render_svg(report)
        )
        digest = configuration.config_hash()
        summary = stored.summaries[digest]
        wanted = list(spec.intents) if spec.intents else sorted(summary.per_intent)
        verdicts = ", ".join(
            f"{intent} {'PASS' if summary.per_intent[intent].passed else 'FAIL'} "
            f"({summary.per_intent[intent].pass_rate:.0%} of {summary.per_intent[intent].n} cases pass, "
            f"{summary.per_intent[intent].min_pass_rate:.0%} required)"
            if intent in summary.per_intent
            else f"{intent} not evaluated"
            for intent in wanted
        )
        line = (
            f"offline evaluation {run_id} of {configuration.name} ({configuration.overrides.model_id}) on "
            f"{dataset.version}, {len(dataset.cases)} cases: {verdicts}; stored in {stored.report_uri} and table "
            f"{table} for config_hash {digest}; stage 0 of the deployed rollout-steps function reads it"
        )
        p.line(line, at=at)
        self._phase_reactions.append(Reaction(at, line, "stage 0"))
        return digest, configuration.overrides.model_id, tuple(spec.intents) if spec.intents else None

    def _request(
        self, phase: RolloutPhase, rollout_id: str, evaluated: tuple[str, str, tuple[str, ...] | None] | None = None
    ) -> dict[str, Any]:
        from kanaria.domain.profiles import config_hash

        candidate: Configuration = self.scenario.configurations[phase.candidate]
        # The deployment's identity: the configuration, and the warm-up step when there is one (a redeploy with a
        # warm-up is a new deployment for the anti-flapping history).
        digest = config_hash(
            {
                "model_id": candidate.model_id,
                **candidate.overrides(),
                "scenario": self.scenario.name,
                "configuration": phase.candidate,
                **({"warmup_requests": phase.warmup_requests} if phase.warmup_requests else {}),
            }
        )
        model_id, intents = candidate.model_id, None
        if evaluated is not None:
            # Stage 0 reads the stored evaluation by this hash: the evaluated configuration's own hash.
            digest, model_id, intents = evaluated
        wall = self.clock.wall_seconds
        # The judge decides; point gates only where the scenario sets them. Its minimum per stage (canary requests).
        gates = {"min_observations": 200, "min_csat_responses": 5, **phase.gates}
        stages = [
            {
                "name": f"canary-{stage.percent}",
                "percent": stage.percent,
                "min_duration_seconds": max(1, round(wall(stage.minutes * 60))),
                "check_interval_seconds": max(1, round(wall(phase.check_minutes * 60))),
                "max_hold_seconds": max(1, round(wall(stage.minutes * 60))),
                "gates": {**gates, **stage.gates},
            }
            for stage in phase.stages
        ]
        return {
            "rollout_id": rollout_id,
            "candidate": {
                "target_group": "default",
                "model_id": model_id,
                "config_id": phase.candidate,
                "config_hash": digest,
                "description": candidate.description[:500],
                **({"intents": list(intents)} if intents else {}),
                **(
                    {"experiment_id": self.scenario.experiment.id, "variant": phase.candidate}
                    if phase.link_experiment and self.scenario.experiment
                    else {}
                ),
            },
            "plan": {
                "stages": stages,
                "approval": {"timeout_seconds": max(2, round(wall(4 * 3600)))},
                "stickiness_seconds": max(1, round(wall(3600))),
                "judge": self._judge_settings(phase),
            },
            # Without an offline_evaluation in the scenario the request claims a pass (nothing is stored for the
            # hash, so stage 0 accepts the claim); with one it claims nothing and stage 0 reads the stored result.
            **(
                {}
                if evaluated is not None
                else {
                    "offline_evaluation": {
                        "passed": True,
                        "report_uri": f"scenarios/{self.scenario.name}.json#configurations.{phase.candidate}",
                        "config_hash": digest,
                    }
                }
            ),
            "requested_by": "kanaria-rehearsal",
            **(
                {
                    "warmup": {
                        "url": self._warmup_url,
                        "requests": phase.warmup_requests,
                        "concurrency": 8,
                        "timeout_seconds": 10,
                        "deadline_seconds": 120,
                    }
                }
                if phase.warmup_requests
                else {}
            ),
        }

    def _judge_settings(self, phase: RolloutPhase) -> dict[str, Any]:
        """The judge on the scenario clock: its period is the CloudWatch period nearest one scenario minute (1 s
        at 60x), read half a period after it ended (the fleet publishes every <= 30 scenario seconds)."""
        minute = self.clock.wall_seconds(60)
        period = min((1, 5, 10, 30, 60), key=lambda p: abs(p - minute))
        return {"period_seconds": period, "settle_seconds": period / 2, **phase.judge}

    def _reset_listener(self, reason: str) -> None:
        """What the deployment pipeline does after a promotion: primary runs the new configuration, 100/0."""
        elbv2 = self.aws.client("elbv2")
        listener = elbv2.describe_listeners(ListenerArns=[self.fleet.listener_arn])["Listeners"][0]
        forward = next(a for a in listener["DefaultActions"] if a["Type"] == "forward")
        config = forward.get("ForwardConfig") or {}
        groups = [
            {"TargetGroupArn": g.arn, "Weight": 100 if g.side == "primary" else 0} for g in self.fleet.groups.values()
        ]
        action = {"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}
        if config.get("TargetGroupStickinessConfig"):
            action["ForwardConfig"]["TargetGroupStickinessConfig"] = config["TargetGroupStickinessConfig"]
        elbv2.modify_listener(ListenerArn=self.fleet.listener_arn, DefaultActions=[action])
        self.progress.line(reason, at=self.clock.now())

    def _rollout_phase(self, phase: RolloutPhase) -> None:  # noqa: C901 - one scenario phase as a polling loop; split with the runner (#12 follow-up)
        from kanaria_tools import rollout_control as rollout_cli

        p = self.progress
        self._phase_reactions = []
        fleet = self.fleet
        p.section(
            f"Rollout {phase.name}: {phase.candidate} over {phase.baseline} "
            f"({' -> '.join(f'{s.percent}%' for s in phase.stages)} -> approval -> 100%)"
        )
        if phase.description:
            p.line(phase.description)
        if fleet.groups["primary"].configuration != phase.baseline:
            fleet.groups["primary"].configuration = phase.baseline
            p.line(f"primary target group now runs {phase.baseline}")
        fleet.groups["canary"].configuration = phase.candidate
        weights = fleet.read_weights(self.clock.now())
        if weights["canary"] or not weights["primary"]:
            self._reset_listener("listener reset to primary 100 / canary 0 (deployment pipeline step)")
        self._wait_for_clean_alarms()
        rollout_id = f"{self.scenario.name}-{phase.name}-{uuid.uuid4().hex[:6]}"[:80]
        evaluated = self._offline_evaluation(phase) if phase.offline_evaluation is not None else None
        request = self._request(phase, rollout_id, evaluated)
        stage_percent = {stage["name"]: stage["percent"] for stage in request["plan"]["stages"]}
        stage_percent["full"] = 100
        started = self.clock.now()
        fleet.start_phase(phase.faults, started)
        with self._lock:
            self._function_faults = [
                [f, started, f.failures or 0] for f in phase.faults if f.kind == "rollback_function_failure"
            ]
        for fault in phase.faults:
            p.line(
                f"fault scheduled at +{fmt_duration(fault.at_minute * 60)}: {fault_text(fault)}"
                + (f" ({fault.description})" if fault.description else ""),
                at=started,
            )
        self._sfn = self.aws.client("stepfunctions")
        try:
            # a request claiming no evaluation is started too: the deployed prepare step's stage 0 decides on the
            # stored one
            answer = rollout_cli.start(self.prefix, request)
        except KanariaError as exc:
            p.line(f"REFUSED by `kanaria rollout start`: {exc}", at=started)
            reaction = Reaction(started, f"rollout refused before any traffic moved: {exc}", "gate")
            self.result.phases.append(
                PhaseResult(
                    phase.name,
                    "rollout",
                    phase.expect,
                    "refused",
                    phase.expect == "refused",
                    started,
                    self.clock.now(),
                    detail={"refused": str(exc)},
                    reactions=sorted([*self._phase_reactions, reaction], key=lambda r: r.at),
                )
            )
            p.line(
                f"rollout result: refused (expected {phase.expect}) -> "
                f"{'as expected' if phase.expect == 'refused' else 'NOT as expected'}"
            )
            return
        p.line(
            f"rollout {rollout_id} started: StartExecution on {names.rollout_state_machine_name(self.prefix)} "
            f"(stages of {', '.join(fmt_duration(s.minutes * 60) for s in phase.stages)}; checks every "
            f"{fmt_duration(phase.check_minutes * 60)})",
            at=started,
        )
        last = started
        fault_times = [started + f.at_minute * 60 for f in phase.faults]
        fault_logged: set[int] = set()
        seen = len(self.invocations)
        status: dict[str, Any] = {}
        stage, decision_seen, approved = None, None, False
        ended_at: float | None = None
        rollback_at: float | None = None
        by: str | None = None  # what restored the listener: the rollback function or the reconciler
        invocations_before = len(self.invocations)
        deadline = started + phase.max_minutes * 60
        while True:
            time.sleep(max(0.05, min(0.5, self.clock.wall_seconds(30))))
            now = self.clock.now()
            fleet.serve(last, now)
            for index, at in enumerate(fault_times):
                if at <= now and index not in fault_logged:
                    fault_logged.add(index)
                    fault = phase.faults[index]
                    p.line(f"FAULT {fault_text(fault)}", at=at)
                    self._phase_reactions.append(Reaction(at, f"fault: {fault_text(fault)}", "fault"))
            self._tick(now, phase.name)
            seen = self._report_safety_net(seen)
            last = now
            try:
                status = rollout_cli.status(self.prefix, rollout_id)
            except KanariaError:
                execution = self._sfn.describe_execution(executionArn=answer["execution_arn"])
                status = {"status": "preparing", "execution_status": execution["status"]}
                if execution["status"] in TERMINAL:
                    status["status"] = "refused"
                    status["refused"] = True
                    status["cause"] = execution.get("cause") or execution.get("error") or ""
                    p.line(
                        f"execution {execution['status']} before the rollout was recorded: {status['cause'][:300]}",
                        at=now,
                    )
                    if phase.offline_evaluation is not None and "stage 0" in status["cause"]:
                        self._phase_reactions.append(
                            Reaction(
                                now,
                                "stage 0 (deployed prepare step) refused the rollout from the stored evaluation",
                                "stage 0",
                            )
                        )
                    break
            if status.get("stage") != stage and status.get("stage"):
                stage = status["stage"]
                fleet.new_stage()
                p.freeze()
                percent = stage_percent.get(stage, status.get("percent"))
                p.line(f"stage {stage}: canary {percent}%", at=now)
                self._phase_reactions.append(Reaction(now, f"stage {stage} ({percent}% canary)", "stage"))
            gate = status.get("gate") or {}
            decision = status.get("decision")
            if decision != decision_seen and decision:
                decision_seen = decision
                if gate.get("outcome") and (decision in {"hold", "rollback"} or gate.get("outcome") == "FAIL"):
                    reasons = "; ".join(
                        c.get("gate", "") + ": " + c.get("reason", "")
                        for c in gate.get("checks", [])
                        if c.get("outcome") != "PASS"
                    )
                    decided = self.invocations.decided_at(invocations_before, rollout_id, decision) or now
                    p.freeze()
                    p.line(f"GATE {gate.get('outcome')} -> {decision}: {reasons[:300]}", at=decided)
                    self._phase_reactions.append(
                        Reaction(decided, f"gate {gate.get('outcome')} -> {decision}: {reasons}", "gate")
                    )
            self._render(phase, status, now)
            rolled = self.invocations.rollback_done(invocations_before)
            if rolled is not None and rollback_at is None:
                rollback_at, by = rolled
                p.freeze()
                p.line(f"{by} finished: listener back to primary 100 / canary 0", at=rollback_at)
                self._phase_reactions.append(Reaction(rollback_at, f"{by} restored primary 100 / canary 0", "rollback"))
            if status.get("awaiting_approval") and not approved:
                approved = True
                p.freeze()
                if phase.approval == "auto":
                    rollout_cli.approve(self.prefix, rollout_id, None, comment="rehearsal: automatic approval")
                    p.line(
                        "approval requested (task token) -> approved automatically (kanaria rollout approve)", at=now
                    )
                    self._phase_reactions.append(Reaction(now, "human approval: approved (automatic)", "gate"))
                else:
                    rollout_cli.reject(self.prefix, rollout_id, None, reason="rehearsal: rejected by scenario")
                    p.line("approval requested -> rejected (kanaria rollout reject)", at=now)
            if status.get("execution_status") in TERMINAL and ended_at is None:
                ended_at = now
            # Keep serving a little after the end so the alarms settle and the alert arrives (and, when the
            # rollback function is broken, until the reconciler pages the invocation Lambda gave up on).
            paged = any(
                a[0] >= started and a[1].startswith("[Kanaria] ROLLBACK INVOCATION FAILED") for a in self.result.alerts
            )
            if (
                ended_at is not None
                and now - ended_at >= 120
                and (phase.expect != "rolled_back" or rollback_at is not None or now - ended_at >= 600)
                and (not self._function_faults or paged or now - ended_at >= 600)
            ):
                break
            if now > deadline:
                p.line(f"giving up after {fmt_duration(phase.max_minutes * 60)} of scenario time", at=now)
                break
        p.freeze()
        final = status.get("status", "unknown")
        execution_status = status.get("execution_status")
        outcome = (
            "completed"
            if execution_status == "SUCCEEDED" and final.lower() == "completed"
            else "refused"
            if status.get("refused")
            else "rolled_back"
            if status.get("rollback") or "roll" in final.lower()
            else f"{final}/{execution_status}"
        )
        weights = fleet.read_weights(self.clock.now())
        if outcome == "rolled_back" and weights["canary"] == 0 and rollback_at is None:
            rollback_at = self._weights_back_at(started)
        ok = outcome == phase.expect
        rollback_alerts = [
            a for a in self.result.alerts if a[0] >= started and a[1].startswith(f"[Kanaria] ROLLBACK {rollout_id} ")
        ]
        if phase.expect == "rolled_back":
            ok = (
                ok
                and weights["canary"] == 0
                and any(self.result.alerts[i][0] >= started for i in range(len(self.result.alerts)))
            )
            if self._function_faults:  # the safety net: one rollback (one record, one alert), the failure paged
                pages = [
                    a
                    for a in self.result.alerts
                    if a[0] >= started and a[1] == f"[Kanaria] ROLLBACK INVOCATION FAILED {rollout_id}"[:100]
                ]
                ok = ok and len(rollback_alerts) == 1 and len(pages) >= 1
        with self._lock:
            self._function_faults = []
        # the incident is the traffic fault; a fault of the rollback function is what the rollback must survive
        incident = [started + f.at_minute * 60 for f in phase.faults if f.kind not in SYSTEM_FAULT_KINDS]
        fault_at = min(incident) if incident else None
        result = PhaseResult(
            phase.name,
            "rollout",
            phase.expect,
            outcome,
            ok,
            started,
            self.clock.now(),
            detail={
                "rollout_id": rollout_id,
                "status": final,
                "execution_status": execution_status,
                "weights_after": weights,
                "rollback": status.get("rollback"),
                "execution_arn": answer.get("execution_arn"),
                "rollback_alerts": len(rollback_alerts),
                "restored_by": by,
            },
            reactions=sorted(self._phase_reactions, key=lambda r: r.at),
            fault_at=fault_at,
            rollback_completed_at=rollback_at if fault_at is not None else None,
        )
        self.result.phases.append(result)
        verdict = "as expected" if ok else "NOT as expected"
        p.line(
            f"rollout result: {outcome} (expected {phase.expect}) -> {verdict}; weights now "
            f"primary {weights['primary']} / canary {weights['canary']}",
            at=self.clock.now(),
        )
        if result.fault_to_rollback is not None:
            p.line(f"time from fault to completed rollback: {fmt_duration(result.fault_to_rollback)} (scenario clock)")
        if outcome == "completed":
            fleet.groups["primary"].configuration = phase.candidate
            self._reset_listener(
                f"promotion done: primary target group redeployed with {phase.candidate}; listener "
                "reset to primary 100 / canary 0 (deployment pipeline step)"
            )
        self.result.samples = list(fleet.samples)
        self.result.weights = list(fleet.weights_history)

    def _wait_for_clean_alarms(self, limit: float = 3600) -> None:
        """As an operator would: no new rollout while the critical composite is still in ALARM from the last one
        (its children keep their breaching datapoints until they leave the evaluation range)."""
        name = names.alarm_name(self.prefix, names.ALARM_CANARY_CRITICAL)
        status = self.evaluator.status.get(name)
        if status is None or status.state != "ALARM":
            return
        started = last = self.clock.now()
        self._phase_reactions = []
        self.progress.line(f"waiting for {name} to return to OK before the next rollout", at=started)
        while status.state == "ALARM" and self.clock.now() - started < limit:
            time.sleep(max(0.05, min(0.5, self.clock.wall_seconds(30))))
            now = self.clock.now()
            self.fleet.serve(last, now)
            self._tick(now, "wait")
            last = now
        self.progress.line(
            f"{name} is {status.state} after {fmt_duration(self.clock.now() - started)}", at=self.clock.now()
        )

    def _steps_environment(self, aws: Any) -> dict[str, str]:
        """The deployed rollout-steps function's environment (listener, target groups, tables)."""
        config = aws.client("lambda").get_function_configuration(FunctionName=self._function("rollout-steps"))
        return config.get("Environment", {}).get("Variables", {})

    def _report_safety_net(self, seen: int) -> int:
        """Progress lines and reactions for failed rollback invocations and what the reconciler did, from the
        in-process invocation log since index `seen`; returns the new index."""
        items, seen = self.invocations.since(seen)
        for at, name, inv in items:
            if name == self._function(names.FUNCTION_ROLLBACK) and inv.error:
                self.progress.line(f"rollback function FAILED: {inv.error[:200]}", at=at)
                self._phase_reactions.append(
                    Reaction(at, f"rollback function failed: {inv.error[:200]}", "rollback failure")
                )
            if name == self._function(names.FUNCTION_RECONCILER) and isinstance(inv.result, dict):
                done, paged = inv.result.get("rolled_back"), inv.result.get("failed_invocations_paged") or []
                if done:
                    self.progress.line(
                        f"RECONCILER found {done['rollout_id']} stranded ({done['found']}): {done['status']}", at=at
                    )
                    self._phase_reactions.append(
                        Reaction(at, f"reconciler: {done['found']} -> {done['status']}", "reconciler")
                    )
                if paged:
                    self.progress.line(
                        f"RECONCILER paged {len(paged)} failed rollback invocation(s) (rollout "
                        f"{', '.join(str(r) for r in paged)})",
                        at=at,
                    )
                    self._phase_reactions.append(
                        Reaction(
                            at,
                            f"reconciler paged {len(paged)} failed rollback invocation(s) from the on-failure queue",
                            "alert",
                        )
                    )
        return seen

    def _weights_back_at(self, since: float) -> float | None:
        for at, percent in self.fleet.weights_history:
            if at >= since and percent == 0:
                return at
        return None

    def _render(self, phase: RolloutPhase, status: dict[str, Any], now: float) -> None:
        fleet = self.fleet
        weights = fleet.weights
        total = weights["primary"] + weights["canary"] or 1
        rows = []
        for side in ("primary", "canary"):
            stats = fleet.stage_totals[side]
            rows.append(
                [
                    side,
                    fleet.groups[side].configuration,
                    f"{round(100 * weights[side] / total)}%",
                    stats.requests,
                    f"{100 * stats.errors / stats.requests:.2f}%" if stats.requests else "-",
                    f"{stats.p99():.0f}" if stats.p99() else "-",
                    fmt_quality(stats.quality()),
                ]
            )
        gate = status.get("gate") or {}
        checks = gate.get("checks") or []
        gate_text = ", ".join(f"{c.get('gate')}={c.get('outcome')}" for c in checks) or "-"
        critical = self.evaluator.status.get(names.alarm_name(self.prefix, names.ALARM_CANARY_CRITICAL))
        warning = self.evaluator.status.get(names.alarm_name(self.prefix, names.ALARM_CANARY_WARNING))
        rows.append(
            [
                "gates",
                status.get("stage") or "-",
                status.get("decision") or "-",
                gate.get("outcome") or "-",
                gate_text[:60],
                "",
                "",
            ]
        )
        rows.append(
            [
                "alarms",
                f"critical {critical.state if critical else '-'}",
                f"warning {warning.state if warning else '-'}",
                "",
                "",
                "",
                "",
            ]
        )
        # Not on a terminal: a new table when something structural changes or every 10 scenario minutes.
        key = (
            status.get("status"),
            status.get("stage"),
            status.get("decision"),
            gate.get("outcome"),
            gate_text,
            critical.state if critical else None,
            warning.state if warning else None,
            tuple(weights.values()),
            int(now // 600),
        )
        self.progress.table(
            f"rollout {phase.name}: {status.get('status', 'starting')} "
            f"(execution {status.get('execution_status', '-')})",
            ["side", "config", "weight", "requests", "errors", "p99 ms", "quality"],
            rows,
            at=now,
            key=key,
        )


__all__ = ["Rehearsal", "RehearsalResult", "PhaseResult", "Reaction", "cdk_context", "fmt"]
