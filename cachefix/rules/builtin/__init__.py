"""The built-in rules, one module each: `cachefix.rules.registry` finds every module here, so a
new rule is a new file and nothing else."""
