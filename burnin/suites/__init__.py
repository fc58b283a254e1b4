"""Burn-in suites: each module here has run(ctx: SuiteContext) -> SuiteResult (see burnin.runner.SUITES)."""
