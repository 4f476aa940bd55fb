"""Offline evaluation: golden dataset, model calls (Bedrock, or the offline adapter the tooling passes in), scoring
with an optional LLM grader, report, stage-0 gate.

Pure except `bedrock` (a boto3 bedrock-runtime client is passed in) and `runner` (threads); storage lives in
kanaria.dal.evaluations, the Lambda entry in kanaria.handlers.evaluation, the CLI in kanaria_tools.cli.evaluate and
the offline adapter in kanaria_tools.offline_model.
"""
