"""The subcommands of `mat-keras` that live in the core: `train` and `evaluate`.

Each module holds one subcommand: its parser (`add_parser`) beside its runner
(`run`). `export` and `zoo` keep theirs beside their features, in
`mat_keras.export.cli` and `mat_keras.zoo.cli`; `mat_keras.cli` only
dispatches.
"""
