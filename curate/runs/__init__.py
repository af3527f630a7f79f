"""The curation stages as library calls: each function runs one stage end to end through
`scoreaware.core.stage.run_stage` (resume, refusal of changed options, quarantine, validation,
sidecar) and returns a `StageResult`. The `scoreaware curate …` commands, evaluation,
post-training and the demo all call these; none of them calls a click command."""
