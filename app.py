#!/usr/bin/env python3
"""CDK entry point: builds every Kanaria stack with cdk-nag as a validation plugin."""

import aws_cdk as cdk

from infra.app_builder import build_app

app = cdk.App()
build_app(app)
app.synth()
