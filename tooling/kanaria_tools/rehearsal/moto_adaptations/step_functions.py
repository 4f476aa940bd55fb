"""Step Functions: what the rollout state machine needs of moto's Step Functions."""

from __future__ import annotations

import uuid
from typing import Any, MutableMapping, cast

from kanaria_tools.rehearsal.moto_adaptations.patching import Patcher


def _adapt_step_functions(patcher: Patcher) -> None:
    from moto.core.config import default_user_config
    from moto.stepfunctions import models as sfn_models
    from moto.stepfunctions.parser import models as parser_models
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service

    # sfn-execute-state-machines
    # moto types its config as a TypedDict; patched as the mutable mapping it is
    config = cast(MutableMapping[str, Any], default_user_config["stepfunctions"])
    patcher.setitem(config, "execute_state_machine", True)
    # sfn-aws-sdk-elbv2
    patcher.setitem(
        state_task_service.StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES, "elasticloadbalancingv2", "elbv2"
    )

    # sfn-unnamed-executions
    original_start = parser_models.StepFunctionsParserBackend.start_execution

    def start_execution(
        self: Any, state_machine_arn: str, name: Any = None, execution_input: Any = None, trace_header: Any = None
    ) -> Any:
        return original_start(self, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header)

    patcher.setattr(parser_models.StepFunctionsParserBackend, "start_execution", start_execution)

    # cfn-step-functions-store: the CloudFormation model looks the backend up by this module-level name.
    patcher.setattr(sfn_models, "stepfunctions_backends", parser_models.stepfunctions_parser_backends)
