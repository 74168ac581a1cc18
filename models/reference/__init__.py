"""The digits reference versions: the demo's and the benchmarks' model, and one user of the
general mechanism like any other. They are trained here and registered through
`mlcanary.models.register`, their networks imported by class path like any user's."""
