"""Local rehearsal: the real CDK app deployed into an in-process moto server, driven by synthetic traffic.

Every change to the emulator's behaviour lives in kanaria_tools.rehearsal.moto_adaptations (pinned to one moto
version); the rest of this package only talks to the emulator through AWS APIs, plus the alarm evaluator,
which reads moto's stored metric data because moto evaluates no alarms.
"""
