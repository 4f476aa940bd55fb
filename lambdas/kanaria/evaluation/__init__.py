"""Offline evaluation: golden dataset, model calls (Bedrock or the offline adapter), scoring, report, stage-0 gate.

Pure except `bedrock` (a boto3 bedrock-runtime client is passed in) and `runner` (threads); storage lives in
kanaria.dal.evaluations, the Lambda entry in kanaria.handlers.evaluation and the CLI in kanaria_tools.cli.evaluate.
"""
