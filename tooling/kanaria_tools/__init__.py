"""Kanaria's tooling: the `kanaria` CLI, the local rehearsal (moto emulator) and the API client they share.

Never deployed: the Lambda code asset is `lambdas/` only (the runtime package `kanaria`). The tooling imports
the runtime; the runtime never imports the tooling (an import-linter contract and an infrastructure test on the
synthesized asset check both).
"""
