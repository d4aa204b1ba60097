"""The pure core: cron expressions, schedules, run policies, prompt templates, durations,
outcome classification, limits, run records and statuses, and the frozen task/daemon specs.

Pure functions of their arguments: no clock, no files, no processes, no database. Imports only
the standard library, croniter and other ``core`` modules; every other package may import it.
"""
