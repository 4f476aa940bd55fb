"""Runs one scenario end to end: emulator, real CDK deploy, experiment, canary rollouts, alarms; the result the
report is written from.

The Rehearsal class orchestrates; each concern lives beside it: the on-call subscriber (rehearsal.oncall), the
alarm tick with the reconciler's schedule (rehearsal.alarm_tick), the experiment phase
(rehearsal.experiment_phase), the rollout phases (rehearsal.rollout_phase, with the request in
rehearsal.rollout_request and the progress table in rehearsal.rollout_view), the fleet and its listener
(rehearsal.fleet_setup), the injected rollback-function faults (rehearsal.function_faults).
"""

from __future__ import annotations

import json
import logging
import random
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kanaria import names
from kanaria.errors import KanariaError, OperationalError
from kanaria_tools.paths import repository_root
from kanaria_tools.rehearsal.alarm_tick import AlarmTick, ReconcilerSchedule, start_alarm_evaluator
from kanaria_tools.rehearsal.clock import RehearsalClock, fmt_duration
from kanaria_tools.rehearsal.context import RunContext
from kanaria_tools.rehearsal.experiment_phase import ExperimentPhaseRun
from kanaria_tools.rehearsal.fleet_setup import setup_fleet, start_warmup_endpoint
from kanaria_tools.rehearsal.function_faults import RollbackFunctionFaults
from kanaria_tools.rehearsal.invocation_log import InvocationLog
from kanaria_tools.rehearsal.invoke import FunctionCaller
from kanaria_tools.rehearsal.oncall import OnCall
from kanaria_tools.rehearsal.progress import Progress
from kanaria_tools.rehearsal.results import RehearsalResult
from kanaria_tools.rehearsal.rollout_phase import RolloutPhases
from kanaria_tools.rehearsal.scenario import Scenario

if TYPE_CHECKING:
    from kanaria_tools.rehearsal.deploy import Deployment
    from kanaria_tools.rehearsal.emulator import LocalAws


def cdk_context(app_dir: Path | None = None) -> dict[str, Any]:
    """The app's cdk.json context (prefix, account, region); default: the checkout's."""
    context: dict[str, Any] = json.loads(((app_dir or repository_root()) / "cdk.json").read_text(encoding="utf-8")).get(
        "context", {}
    )
    return context


class Rehearsal:
    """One scenario on one emulator: deploy, then the phases, recorded in a RehearsalResult."""

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
        self.invocations = InvocationLog(self.prefix)
        self.function_faults = RollbackFunctionFaults(names.function_name(self.prefix, names.FUNCTION_ROLLBACK))
        self.run_id = f"{scenario.name}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"
        self.run_dir = reports_dir / self.run_id
        self._clock: RehearsalClock | None = None  # the scenario clock starts once the app is deployed

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
        self.invocations.record(self._clock.now() if self._clock else 0.0, invocation)

    def run(self) -> RehearsalResult:
        """The whole rehearsal; never raises for a scenario failure (recorded in the result)."""
        from kanaria_tools.rehearsal import moto_adaptations
        from kanaria_tools.rehearsal.emulator import LocalAws

        started = time.monotonic()
        self._setup_logging()
        self.result.run_dir = self.run_dir
        self._announce()
        hooks = moto_adaptations.Hooks(on_invoke=self._on_invoke, before_invoke=self.function_faults.before_invoke)
        aws = LocalAws.start(account=self.account, region=self.region, port=self.port, hooks=hooks)
        try:
            self.progress.line(
                f"moto {moto_adaptations.MOTO_VERSION} on {aws.endpoint} with {len(moto_adaptations.ADAPTATIONS)} "
                "adaptations (kanaria_tools/rehearsal/moto_adaptations/)"
            )
            deployment = self._deploy(aws)
            self._clock = RehearsalClock(self.speed)
            self._run_phases(self._context(aws, self._clock), deployment)
        except KanariaError as exc:
            self.result.error = str(exc)
            self.progress.line(f"ERROR: {exc}")
        except Exception as exc:  # noqa: BLE001 - reported, the run fails
            self.result.error = f"{type(exc).__name__}: {exc}"
            logging.getLogger("kanaria_tools.rehearsal").exception("rehearsal failed")
            self.progress.line(f"ERROR: {type(exc).__name__}: {exc} (traceback in {self.run_dir / 'emulator.log'})")
        finally:
            aws.stop()
            self.result.wall_seconds = time.monotonic() - started
        return self.result

    def _announce(self) -> None:
        p, s = self.progress, self.scenario
        p.section(f"Rehearsal {s.name}: {s.description}")
        if s.design_note:
            p.line(f"design note: {s.design_note}")
        p.line(
            f"scenario clock: {self.speed:g}x (1 wall second = {fmt_duration(self.speed)} of scenario time); "
            f"report and logs in {self.run_dir}"
        )
        p.section("Local AWS emulator (moto, in process, loopback only)")

    def _deploy(self, aws: LocalAws) -> Deployment:
        """The CDK app deployed into the emulator; what each stack did not create is recorded."""
        from kanaria_tools.rehearsal.deploy import deploy_app

        p = self.progress
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
            context=context,
        )
        self.result.deploy_seconds = deployment.seconds
        for stack in deployment.stacks.values():
            resources = stack.template["Resources"]
            skipped = sorted(
                {
                    resources[r]["Type"]
                    for r in resources
                    if r not in stack.resources and resources[r]["Type"] != "AWS::CDK::Metadata"
                }
            )
            self.result.not_created[stack.name] = skipped
            p.line(
                f"  {stack.name}: {stack.status}, {len(stack.resources)} resources"
                + (f" (not emulated: {', '.join(t.split('::', 1)[1] for t in skipped)})" if skipped else "")
            )
        p.line(f"deployed in {deployment.seconds:.1f}s")
        return deployment

    def _context(self, aws: LocalAws, clock: RehearsalClock) -> RunContext:
        functions = {
            f["FunctionName"]
            for page in aws.client("lambda").get_paginator("list_functions").paginate()
            for f in page["Functions"]
        }
        return RunContext(
            scenario=self.scenario,
            progress=self.progress,
            result=self.result,
            clock=clock,
            aws=aws,
            caller=FunctionCaller(aws.client("lambda")),
            functions=functions,
            invocations=self.invocations,
            rng=self.rng,
            prefix=self.prefix,
            account=self.account,
            region=self.region,
            app_dir=self.app_dir,
        )

    def _run_phases(self, ctx: RunContext, deployment: Deployment) -> None:
        """On-call, alarms and the reconciler's schedule, then the experiment and the rollouts."""
        from kanaria_tools.rehearsal import moto_adaptations

        moto_adaptations.prepare_environment(self.account, self.region)
        oncall = OnCall.subscribe(ctx, f"arn:aws:sns:{self.region}:{self.account}:{self.prefix}-alerts")
        evaluator = start_alarm_evaluator(ctx, deployment)
        tick = AlarmTick(ctx, evaluator, oncall, ReconcilerSchedule.of(ctx))
        if self.scenario.experiment is not None:
            self.result.phases.append(ExperimentPhaseRun(ctx, tick, self.scenario.experiment).run())
        if self.scenario.rollouts:
            if ctx.deployed("rollout-steps") is None:
                raise OperationalError("the rollout stack is not deployed (no rollout-steps function)", field="rollout")
            fleet = setup_fleet(ctx)
            warmup_url = None
            if any(phase.warmup_requests for phase in self.scenario.rollouts):
                warmup_url = start_warmup_endpoint(fleet)
                self.progress.line(f"warm-up endpoint of the canary target group: {warmup_url}")
            rollouts = RolloutPhases(ctx, tick, fleet, self.function_faults, warmup_url)
            for phase in self.scenario.rollouts:
                rollouts.run(phase)
        self.result.alarm_transitions = list(evaluator.transitions)
        self.result.alarm_series = {
            n: list(st.datapoints) for n, st in evaluator.status.items() if not st.definition.composite
        }
        self.result.alarm_thresholds = {n: st.definition.threshold for n, st in evaluator.status.items()}
        self.result.invocations = self.invocations.summary()
